"""ONNX Runtime int8 of a tower's ONNX graph: static QDQ calibrated on the task's texts, or dynamic without them.

Static: ``quantize_static`` in QDQ format, int8 weights per output channel, uint8 activations with ranges from
the calibration batches (MinMax), on the MatMuls, Gemms and fused Attention ops; the embedding Gathers are not
quantized. Dynamic: ``quantize_dynamic``, int8 weights per channel, activation ranges computed per batch at run
time. embedkit's ONNX graph uses onnxruntime's contrib ops (fused Attention), which ONNX shape inference cannot
type; their outputs are declared float (``DefaultTensorType``), which they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Optional

import numpy as np

QUANTIZED_OPS = ("MatMul", "Gemm", "Attention")
EMBEDDING_OPS = ("Gather",)
_FLOAT = 1  # onnx.TensorProto.FLOAT


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over padded batches."""

    def __init__(self, batches: Iterable[dict[str, np.ndarray]], names: list[str]):
        self._batches: Iterator[dict[str, np.ndarray]] = iter(list(batches))
        self._names = names

    def get_next(self) -> Optional[dict[str, np.ndarray]]:
        batch = next(self._batches, None)
        return None if batch is None else {name: batch[name] for name in self._names}

    def rewind(self) -> None:  # pragma: no cover - onnxruntime calls it only for some calibration methods
        raise NotImplementedError


def input_names(onnx_file: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(onnx_file), load_external_data=False).graph
    initialisers = {init.name for init in graph.initializer}
    return [i.name for i in graph.input if i.name not in initialisers]


def method(calibrated: bool) -> dict:
    """How `quantize_onnx` quantizes, for the model's quantization record."""
    return {"method": "onnxruntime quantize_static QDQ, MinMax" if calibrated else "onnxruntime quantize_dynamic",
            "ops": list(QUANTIZED_OPS), "per_channel": True, "ignored": list(EMBEDDING_OPS)}


def quantize_onnx(source: Path, target: Path, batches: Optional[Iterable[dict[str, np.ndarray]]]) -> None:
    """Write the int8 graph of ``source`` to ``target``: static with ``batches``, dynamic without."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    options = {"DefaultTensorType": _FLOAT}
    if batches is None:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=list(QUANTIZED_OPS), extra_options=options)
        return
    quantize_static(str(source), str(target), _Batches(batches, input_names(source)), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=list(QUANTIZED_OPS), extra_options=options)


def toolchain() -> dict[str, str]:
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__}

"""OpenVINO: embedkit's ONNX export compiled by OpenVINO's CPU plugin, in bf16 or fp32.

The ONNX graph is the onnx engine's own export (fused contrib ops included, which OpenVINO reads), so nothing is
exported twice. Compiled models are cached in ``$EMBEDKIT_HOME/openvino`` (OpenVINO's CACHE_DIR, keyed by the
graph and the compile settings), so a second run imports the compiled blob instead of compiling again.

Telemetry: OpenVINO sends usage data from its Python model-conversion API (``ovc``), and ``import openvino``
imports ``ovc`` (openvino 2026.4), whose import starts a telemetry session: consent is assumed when no consent
file exists, and the event is sent from a forked process (the fork also makes Hugging Face tokenizers print a
warning on stderr, even at -q). embedkit needs only the runtime (``Core.compile_model`` on the ONNX file), so it
imports openvino with ``openvino_telemetry`` unimportable: ``ovc`` then uses its own no-op stub (`_openvino`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from embedkit import paths
from embedkit.choices import Precision
from embedkit.filenames import OPENVINO_MODEL_FILE
from embedkit.inference.engines import cpu_cores
from embedkit.modeling.encode import BatchForward

# The record of this precision's check against dygraph (the graph itself is the ONNX export's model.onnx).
CHECK_FILE = "check.json"
FILES = (CHECK_FILE,)
INFERENCE_PRECISIONS = {Precision.BF16.value: "bf16", Precision.FP32.value: "f32"}
# LATENCY: one stream using every thread, which is what embedkit's one-request-at-a-time batches need; THROUGHPUT
# splits the cores into streams, and a single synchronous request then runs on one of them
# (benchmarks/README.md, "OpenVINO").
PERFORMANCE_HINT = "LATENCY"


def compile_cache_dir() -> Path:
    return paths.cache_dir("openvino")


def compile_config(precision: str, threads: Optional[int] = None) -> dict[str, object]:
    return {"INFERENCE_PRECISION_HINT": INFERENCE_PRECISIONS[str(precision)], "PERFORMANCE_HINT": PERFORMANCE_HINT,
            "INFERENCE_NUM_THREADS": threads or cpu_cores(), "CACHE_DIR": str(compile_cache_dir())}


def _openvino():
    """The openvino module, imported without its telemetry (see the module docstring)."""
    import sys

    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # None: `import openvino_telemetry` raises ImportError
    import openvino

    return openvino


def toolchain() -> dict[str, str]:
    """What a bf16 check depends on besides the graph: the OpenVINO build and the CPU it compiled for."""
    openvino = _openvino()

    return {"openvino": openvino.get_version(), "cpu": openvino.Core().get_property("CPU", "FULL_DEVICE_NAME")}


def openvino_forward(onnx_file: Path, precision: str, threads: Optional[int] = None) -> BatchForward:
    openvino = _openvino()

    compiled = openvino.Core().compile_model(str(onnx_file), "CPU", compile_config(precision, threads))
    request = compiled.create_infer_request()
    names = [port.get_any_name() for port in compiled.inputs]

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        # infer() copies the outputs out of the request's buffers (share_outputs=False), so they outlive the call.
        return request.infer({name: batch[name] for name in names})[0].astype(np.float32, copy=False)

    return forward


def save_ir(model, out_dir: Path) -> None:
    """``model`` as ``openvino_model.xml``/``.bin`` in ``out_dir``, weights kept as they are (OpenVINO would halve
    fp32 weights to fp16 by default; the engine's precision is chosen when compiling)."""
    import openvino

    openvino.save_model(model, str(out_dir / OPENVINO_MODEL_FILE), compress_to_fp16=False)


def export_ir(graph_file: Path, out_dir: Path) -> None:
    """An ONNX graph (or an IR) as an OpenVINO IR in ``out_dir`` (the runtime's reader: no conversion API, so no
    telemetry)."""
    import openvino

    save_ir(openvino.Core().read_model(str(graph_file)), out_dir)

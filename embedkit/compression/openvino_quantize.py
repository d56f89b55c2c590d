"""NNCF on the OpenVINO model of a tower: int8 post-training quantization, and int8/int4 weight compression.

``int8`` (weights and activations): ``nncf.quantize`` with the transformer preset (MIXED: symmetric weights,
asymmetric activations; SmoothQuant on the MatMuls), calibrated on the task's own tokenised texts. The
embedding tables are left out of it (their Gather has no activation to quantize, and NNCF's int8 lookup tables
cost accuracy); they are then compressed to int8 weights with one scale and zero point per row (weight-only:
``compress_weights`` restricted to Gather), which keeps each token's vector within 1/255 of its range and makes
the model 4x smaller on disk. Measured on all-MiniLM-L6-v2 (64 SciFact passages, 256 tokens): min cosine to fp32
0.9946 with NNCF's default int8 embeddings, 0.9949 with them excluded, 0.9949 excluded then weight-compressed.

``weight_only_int8`` / ``weight_only_int4``: ``compress_weights`` on every MatMul and embedding, int8 asymmetric
per output channel, or int4 symmetric in groups of ``group_size`` input channels (embeddings and the last MatMul
stay int8, NNCF's backup precision for the layers int4 hurts most). Activations stay in the engine's precision.

Telemetry: NNCF sends usage events unless ``NNCF_CI`` (or ``NNCF_DEV``) is set when it is imported, in which case
its telemetry object is a stub (nncf/telemetry/wrapper.py; the variable has no other use in NNCF 3.4), so embedkit
sets it before the import.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from embedkit import console
from embedkit.choices import QuantType
from embedkit.filenames import OPENVINO_MODEL_FILE
from embedkit.inference.openvino import export_ir

# Operation types whose weights PTQ leaves alone (then weight-compressed): the token/position/type embeddings.
EMBEDDING_OPS = ("Gather",)


def _nncf():
    os.environ.setdefault("NNCF_CI", "1")  # telemetry off (see the module docstring)
    import nncf

    return nncf


@contextlib.contextmanager
def _nncf_output() -> Iterator[None]:
    """NNCF logs and draws its progress bars on stdout, where --json output goes: send them to stderr (nowhere at
    -q), and keep its INFO lines (every ignored node, bit-width tables) for -v."""
    from nncf.common.logging.logger import nncf_logger

    out = console.get()
    nncf_logger.setLevel(logging.INFO if out.verbosity > 0 else logging.WARNING)
    streams = [h for h in nncf_logger.handlers
               if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    with contextlib.ExitStack() as stack:
        sink = sys.stderr if out.verbosity >= 0 else stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
        # Its handlers hold the stdout of import time: pointed at the sink for the call only, then given back.
        for handler in streams:
            stack.callback(handler.setStream, handler.setStream(sink) or handler.stream)
        stack.enter_context(contextlib.redirect_stdout(sink))
        yield


def read_graph(graph_file: Path, workdir: Path):
    """The tower's graph as an OpenVINO model NNCF can analyse.

    NNCF's graph builder fails on ops left without a consumer path to an output (paddle2onnx leaves some:
    ``Could not find a node Gather_54 in NNCFGraph``); writing the model as IR and reading it back drops them.
    """
    import openvino

    export_ir(graph_file, workdir)
    return openvino.Core().read_model(str(workdir / OPENVINO_MODEL_FILE))


def method(quant_type: str) -> dict[str, Any]:
    """What `quantize_int8` / `compress_weights` do, for the model's quantization record."""
    if quant_type == QuantType.INT8:
        return {"method": "nncf.quantize (transformer, mixed preset)", "ignored": list(EMBEDDING_OPS),
                "weights_int8_per_row": list(EMBEDDING_OPS)}
    if quant_type == QuantType.WEIGHT_ONLY_INT8:
        return {"method": "nncf.compress_weights int8_asym per channel", "ignored": []}
    return {"method": "nncf.compress_weights int4_sym grouped, int8_asym backup", "ignored": []}


def quantize_int8(model, batches: Iterable[dict[str, np.ndarray]], samples: int):
    """The int8 model: activations and MatMul weights quantized, embeddings kept out, then int8 per row."""
    nncf = _nncf()
    names = [port.get_any_name() for port in model.inputs]
    dataset = nncf.Dataset(list(batches), lambda batch: {name: batch[name] for name in names})
    with _nncf_output():
        quantized = nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER, subset_size=samples,
                                  ignored_scope=nncf.IgnoredScope(types=list(EMBEDDING_OPS)))
        embeddings_only = nncf.IgnoredScope(types=["MatMul"])
        return nncf.compress_weights(quantized, mode=nncf.CompressWeightsMode.INT8_ASYM,
                                     ignored_scope=embeddings_only)


def compress_weights(model, quant_type: str, group_size: int):
    nncf = _nncf()
    with _nncf_output():
        if quant_type == QuantType.WEIGHT_ONLY_INT8:
            return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT4_SYM, group_size=group_size, ratio=1.0)


def toolchain() -> dict[str, str]:
    import openvino

    return {"nncf": _nncf().__version__, "openvino": openvino.get_version()}

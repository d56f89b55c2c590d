"""ONNX: paddle2onnx conversion of the Paddle Inference graph (in a child process), and an ONNX Runtime session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from embedkit.errors import UserError
from embedkit.inference.engines import Device, EngineUnavailableError, cpu_cores
from embedkit.modeling.encode import BatchForward

MODEL_FILE = "model.onnx"
FILES = (MODEL_FILE,)


class OnnxConversionError(EngineUnavailableError):
    """paddle2onnx cannot convert this model (an operator it lacks, typically); Paddle Inference still can."""

    alternative = "paddle-inference"


def convert_to_onnx(model_file: Path, params_file: Path, out_file: Path, opset: int, model_dir: Path) -> None:
    """Convert with paddle2onnx in a child process (see embedkit.inference.onnx_convert for why)."""
    import embedkit

    source_root = str(Path(embedkit.__file__).resolve().parents[1])
    env = {**os.environ, "GLOG_minloglevel": os.environ.get("GLOG_minloglevel", "2"),
           "PYTHONPATH": os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH")) if p)}
    run = subprocess.run([sys.executable, "-m", "embedkit.inference.onnx_convert", str(model_file), str(params_file),
                          str(out_file), "--opset", str(opset)], capture_output=True, text=True, env=env)
    if run.returncode == 0 and out_file.is_file():
        return
    log = (run.stdout + run.stderr).splitlines()
    said = [line.strip() for line in log if "Paddle2ONNX" in line or "ERROR" in line or "refused" in line]
    reason = ("operators it does not support" if any("unsupported operators" in line for line in said)
              else f"exit code {run.returncode}")
    raise OnnxConversionError(f"paddle2onnx cannot convert this model ({reason}); paddle2onnx said: "
                              f"{' | '.join(said[-6:]) or (log[-1] if log else 'nothing')}", model_dir)


def session_options(threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or cpu_cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the converter leaves unused initialisers; ORT warns about each one
    # Idle pool threads sleep instead of spinning: with spinning, MiniLM on 2 shared cores ran 11-27% slower
    # (benchmarks/README.md); the ops here are large, so waking a thread costs little.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def onnx_forward(model_file: Path, device: Device = "cpu", threads: int | None = None) -> BatchForward:
    import onnxruntime as ort

    if device == "gpu":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UserError("engine 'onnx' on GPU needs onnxruntime-gpu (pip install onnxruntime-gpu), "
                            "or use --engine paddle-inference")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(model_file), session_options(threads), providers=providers)
    names = [i.name for i in session.get_inputs()]

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        return session.run(None, {name: batch[name] for name in names})[0].astype(np.float32, copy=False)

    return forward

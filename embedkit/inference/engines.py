"""Which inference engines exist, which one `auto` means, and on which device they run."""

from __future__ import annotations

import importlib.util
import os
from typing import Literal

from embedkit.errors import UserError

Engine = Literal["paddle", "paddle-inference", "onnx"]
Device = Literal["cpu", "gpu"]
ENGINES: tuple[Engine, ...] = ("paddle", "paddle-inference", "onnx")
ENGINE_CHOICES = ("auto", *ENGINES)


class EngineUnavailableError(UserError):
    """An engine cannot run this model; ``alternative`` can (``auto`` falls back to it, saying why)."""

    alternative: Engine

    def __init__(self, reason: str, path=None):
        super().__init__(f"{reason}; use --engine {self.alternative}", path)
        self.reason = reason


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def gpu_available() -> bool:
    import paddle

    return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def resolve_device(device: str = "auto") -> Device:
    if device == "auto":
        return "gpu" if gpu_available() else "cpu"
    if device not in ("cpu", "gpu"):
        raise UserError(f"unknown device {device!r} (auto, cpu or gpu)")
    if device == "gpu" and not gpu_available():
        raise UserError("--device gpu: this Paddle build has no CUDA or no GPU is visible")
    return device


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "paddle2onnx", "onnx"))


def available_engines() -> list[Engine]:
    return [e for e in ENGINES if e != "onnx" or onnx_available()]


def resolve_engine(engine: str = "auto", device: Device = "cpu") -> Engine:
    """The concrete engine for ``engine`` on ``device``.

    ``auto``: ONNX Runtime on CPU, the one engine at or above sentence-transformers' speed in every
    measurement in benchmarks/README.md (Paddle Inference with oneDNN won some document sets and lost
    others); Paddle Inference on GPU (TensorRT-capable, and no onnxruntime-gpu needed).
    """
    if engine == "auto":
        return "onnx" if device == "cpu" and onnx_available() else "paddle-inference"
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r} (choose from {', '.join(ENGINE_CHOICES)})")
    if engine == "onnx" and not onnx_available():
        raise UserError("engine 'onnx' needs onnxruntime, onnx and paddle2onnx: pip install onnxruntime onnx paddle2onnx")
    return engine

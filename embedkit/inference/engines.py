"""Which inference engines exist, which one `auto` means, and on which device they run."""

from __future__ import annotations

import importlib.util
import os

from embedkit.choices import Device, Engine, EngineChoice, Precision
from embedkit.errors import UserError

ENGINES: tuple[str, ...] = Engine.values()
ENGINE_CHOICES: tuple[str, ...] = EngineChoice.values()
# What each engine computes in. Paddle's CPU kernels have no bf16 matmul, and the ONNX and Paddle Inference
# graphs embedkit exports are fp32.
ENGINE_PRECISIONS: dict[str, tuple[str, ...]] = {engine: (Precision.FP32.value,) for engine in ENGINES}


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
    device = str(device)
    if device == "auto":
        return Device.GPU if gpu_available() else Device.CPU
    if device not in Device.values():
        raise UserError(f"unknown device {device!r} (auto, cpu or gpu)")
    if device == Device.GPU and not gpu_available():
        raise UserError("--device gpu: this Paddle build has no CUDA or no GPU is visible")
    return Device(device)


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "paddle2onnx", "onnx"))


def available_engines() -> list[Engine]:
    return [Engine(e) for e in ENGINES if e != Engine.ONNX or onnx_available()]


def resolve_engine(engine: str = "auto", device: Device = "cpu") -> Engine:
    """The concrete engine for ``engine`` on ``device``.

    ``auto``: ONNX Runtime on CPU, the one engine at or above sentence-transformers' speed in every
    measurement in benchmarks/README.md (Paddle Inference with oneDNN won some document sets and lost
    others); Paddle Inference on GPU (TensorRT-capable, and no onnxruntime-gpu needed).
    """
    engine = str(engine)
    if engine == EngineChoice.AUTO:
        return Engine.ONNX if device == Device.CPU and onnx_available() else Engine.PADDLE_INFERENCE
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r} (choose from {', '.join(ENGINE_CHOICES)})")
    if engine == Engine.ONNX and not onnx_available():
        raise UserError("engine 'onnx' needs onnxruntime, onnx and paddle2onnx: pip install onnxruntime onnx paddle2onnx")
    return Engine(engine)


def resolve_precision(engine: Engine, precision: str = "auto") -> Precision:
    """The precision ``engine`` computes in: its first (default) one for ``auto``, else ``precision`` if it can."""
    supported = ENGINE_PRECISIONS[str(engine)]
    if str(precision) == "auto":
        return Precision(supported[0])
    if str(precision) not in supported:
        raise UserError(f"engine {engine} computes in {', '.join(supported)} only, not {precision}", "--precision")
    return Precision(str(precision))

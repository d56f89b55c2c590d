"""Which inference engines exist, which one `auto` means, and on which device they run."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Optional

from embedkit.choices import Device, Engine, EngineChoice, Precision
from embedkit.errors import UserError

ENGINES: tuple[str, ...] = Engine.values()
ENGINE_CHOICES: tuple[str, ...] = EngineChoice.values()
# What each engine computes in, its default first. Paddle's CPU kernels have no bf16 matmul, and the ONNX and
# Paddle Inference graphs embedkit exports are fp32; OpenVINO compiles the ONNX graph for bf16 or fp32
# (INFERENCE_PRECISION_HINT). Its `auto` is bf16 only where the CPU has bf16 (resolve_precision).
ENGINE_PRECISIONS: dict[str, tuple[str, ...]] = {
    **{engine: (Precision.FP32.value,) for engine in ENGINES},
    Engine.OPENVINO.value: (Precision.BF16.value, Precision.FP32.value),
}
# /proc/cpuinfo flags of the instructions OpenVINO's CPU plugin runs bf16 matmuls with (AMX tiles, or
# AVX-512 BF16 dot products). Without either it silently computes in fp32, so bf16 is refused there.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


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


def cpu_flags() -> frozenset[str]:
    """The first CPU's flags in /proc/cpuinfo (empty where there is none: not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def bf16_cpu_flag() -> Optional[str]:
    """The bf16 instruction set this CPU has (amx_bf16 preferred), or None."""
    flags = cpu_flags()
    return next((flag for flag in BF16_CPU_FLAGS if flag in flags), None)


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "paddle2onnx", "onnx"))


def openvino_available() -> bool:
    """OpenVINO compiles embedkit's ONNX export, so it needs the ONNX toolchain too."""
    return importlib.util.find_spec("openvino") is not None and onnx_available()


def available_engines() -> list[Engine]:
    missing = {Engine.ONNX: not onnx_available(), Engine.OPENVINO: not openvino_available()}
    return [Engine(e) for e in ENGINES if not missing.get(Engine(e), False)]


def auto_engine(device: Device = "cpu") -> tuple[Engine, str]:
    """What ``--engine auto`` runs on ``device``, and why (printed at -v).

    CPU: OpenVINO (benchmarks/README.md, "OpenVINO"): in bf16 where the CPU has it (resolve_precision) it was the
    fastest runner in every measurement, 1.5x sentence-transformers' fastest; in fp32 it was ahead of ONNX Runtime
    idle (1.33x) and tied with it under heavy load. ONNX Runtime when OpenVINO is not installed. GPU: Paddle Inference (TensorRT-capable, and no onnxruntime-gpu needed).
    """
    if device == Device.GPU:
        return Engine.PADDLE_INFERENCE, "on GPU Paddle Inference runs CUDA (TensorRT optional)"
    if openvino_available():
        return Engine.OPENVINO, ("OpenVINO bf16 encoded fastest on CPU, and OpenVINO fp32 at or above ONNX Runtime "
                                 "(benchmarks/README.md, \"OpenVINO\")")
    if onnx_available():
        return Engine.ONNX, "openvino is not installed; ONNX Runtime is the fastest of the remaining CPU engines"
    return Engine.PADDLE_INFERENCE, "neither openvino nor onnxruntime is installed"


def resolve_engine(engine: str = "auto", device: Device = "cpu") -> Engine:
    """The concrete engine for ``engine`` on ``device`` (``auto``: see auto_engine)."""
    engine = str(engine)
    if engine == EngineChoice.AUTO:
        return auto_engine(device)[0]
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r} (choose from {', '.join(ENGINE_CHOICES)})")
    if engine == Engine.ONNX and not onnx_available():
        raise UserError("engine 'onnx' needs onnxruntime, onnx and paddle2onnx: pip install onnxruntime onnx paddle2onnx")
    if engine == Engine.OPENVINO:
        if not openvino_available():
            raise UserError("engine 'openvino' needs openvino, onnxruntime, onnx and paddle2onnx: "
                            "pip install openvino onnxruntime onnx paddle2onnx")
        if device != Device.CPU:
            raise UserError("engine 'openvino' runs on CPU only (OpenVINO's CPU plugin); use --device cpu")
    return Engine(engine)


def precision_reason(precision: str) -> str:
    """Why ``precision`` (a resolved one) is what ``--precision auto`` gave, for -v."""
    flag = bf16_cpu_flag()
    if precision == Precision.BF16:
        return f"auto: this CPU has {flag}"
    return "auto: fp32, " + ("this engine has no bf16" if flag else
                             f"this CPU has no bf16 instructions ({' or '.join(BF16_CPU_FLAGS)})")


def resolve_precision(engine: Engine, precision: str = "auto") -> Precision:
    """The precision ``engine`` computes in.

    ``auto``: bf16 for an engine that has it on a CPU that has it, else the engine's fp32. An explicit
    precision the engine lacks, or bf16 on a CPU without bf16 instructions, is refused naming what is missing.
    """
    supported = ENGINE_PRECISIONS[str(engine)]
    if str(precision) == "auto":
        usable = [p for p in supported if p != Precision.BF16 or bf16_cpu_flag() is not None]
        return Precision(usable[0])
    if str(precision) not in supported:
        raise UserError(f"engine {engine} computes in {', '.join(supported)} only, not {precision}", "--precision")
    if precision == Precision.BF16 and bf16_cpu_flag() is None:
        raise UserError(f"bf16 needs a CPU with AMX-BF16 or AVX512-BF16 (cpuinfo flag {' or '.join(BF16_CPU_FLAGS)}); "
                        "this CPU has neither: use --precision fp32", "--precision")
    return Precision(str(precision))

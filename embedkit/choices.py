"""The closed sets of values embedkit's options take, defined once for the CLI, the schemas and the code.

Each is a ``StrEnum``, so a member is its value (``Pooling.MEAN == "mean"``, ``f"{Pooling.MEAN}" == "mean"``),
serialises as that value in JSON, and Typer rejects anything else at parse time, before a model is loaded.
"""

from __future__ import annotations

from enum import StrEnum


class Choice(StrEnum):
    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(member.value for member in cls)


class Pooling(Choice):
    CLS = "cls"
    MEAN = "mean"
    LAST = "last"


class Side(Choice):
    QUERY = "query"
    PASSAGE = "passage"


class PaddingSide(Choice):
    RIGHT = "right"
    LEFT = "left"


class Engine(Choice):
    """A concrete inference engine."""

    PADDLE = "paddle"
    PADDLE_INFERENCE = "paddle-inference"
    ONNX = "onnx"
    OPENVINO = "openvino"


class EngineChoice(Choice):
    """What a user may ask for: a concrete engine, or ``auto`` (the fastest one measured for this device)."""

    AUTO = "auto"
    PADDLE = "paddle"
    PADDLE_INFERENCE = "paddle-inference"
    ONNX = "onnx"
    OPENVINO = "openvino"


class Device(Choice):
    CPU = "cpu"
    GPU = "gpu"


class DeviceChoice(Choice):
    AUTO = "auto"
    CPU = "cpu"
    GPU = "gpu"


class Precision(Choice):
    """Numeric precision an engine computes the embeddings in (part of the embedding identity)."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    INT8 = "int8"


class PrecisionChoice(Choice):
    """What a user may ask for: a precision, or ``auto`` (bf16 where the engine and the CPU have it)."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"


class IndexKind(Choice):
    FLAT = "flat"
    IVF = "ivf"
    HNSW = "hnsw"


class FineTuneType(Choice):
    SFT = "sft"
    LORA = "lora"
    BITFIT = "bitfit"

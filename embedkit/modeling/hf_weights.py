"""Weight files read into numpy: Hugging Face's (torch layout) without torch, and Paddle's.

For the backbones and adapters embedkit maps itself (Qwen3, PEFT LoRA adapters), where PaddleNLP's
``convert_from_torch`` has no name mapping. bfloat16 tensors, which numpy lacks, are widened to float32
(exactly: a bfloat16 is the upper half of a float32).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from embedkit.errors import UserError

_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
                       "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
                       "BOOL": np.bool_}


def _widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        with path.open("rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(header_len))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
        state = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            values = data[start:end].view(_SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
            state[name] = _widen_bfloat16(values) if info["dtype"] == "BF16" else np.array(values)
        return state
    except (OSError, ValueError, KeyError, struct.error) as exc:  # truncated, foreign or exotic-dtype files
        raise UserError(f"unreadable safetensors file: {exc}", path) from None


def read_torch_pickle(path: Path) -> dict[str, np.ndarray]:
    """A ``torch.save`` state dict (``*.bin``), unpickled by PaddleNLP's torch-free reader."""
    import tempfile

    from paddlenlp.utils.serialization import load_torch

    # load_torch recognises the file by its name (pytorch_model.bin), so other names are read through a link.
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "pytorch_model.bin"
        link.symlink_to(path.resolve())
        try:
            state = load_torch(str(link))
        except Exception as exc:  # noqa: BLE001  (a broken pickle fails in many ways)
            raise UserError(f"unreadable torch weights file: {exc}", path) from None
    # Its bfloat16 storages come back as their raw uint16 bits.
    return {k: _widen_bfloat16(v) if v.dtype == np.uint16 else np.asarray(v) for k, v in state.items()}


def read_paddle_pickle(path: Path) -> dict[str, np.ndarray]:
    import paddle

    return {k: np.asarray(v.astype("float32").numpy() if v.dtype == paddle.bfloat16 else v.numpy())
            for k, v in paddle.load(str(path)).items()}


def read_weights(files: Iterable[Path]) -> dict[str, np.ndarray]:
    """One state dict from safetensors, ``*.bin`` and ``*.pdparams`` files (shards of one checkpoint); index
    files are skipped."""
    state: dict[str, np.ndarray] = {}
    for path in files:
        if path.name.endswith(".safetensors"):
            state.update(read_safetensors(path))
        elif path.suffix == ".bin":
            state.update(read_torch_pickle(path))
        elif path.suffix == ".pdparams":
            state.update(read_paddle_pickle(path))
    return state

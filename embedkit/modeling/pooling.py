"""Sentence pooling over token states, correct for right and left padding alike."""

from __future__ import annotations

import paddle
import paddle.nn.functional as F


def pool(hidden: paddle.Tensor, attention_mask: paddle.Tensor, method: str) -> paddle.Tensor:
    """Pool ``hidden`` [B, T, H] under ``attention_mask`` [B, T] (1 = token) into [B, H].

    - ``cls``: the first real token (position of the first 1 in the mask, so left padding works too);
    - ``mean``: the masked mean;
    - ``last``: the last real token (the last 1 in the mask), e.g. EOS for decoder-only embedders.
    """
    mask = attention_mask.astype(hidden.dtype)
    if method == "mean":
        summed = (hidden * mask.unsqueeze(-1)).sum(axis=1)
        return summed / mask.sum(axis=1, keepdim=True).clip(min=1e-9)
    seq_len = attention_mask.shape[1]
    positions = paddle.arange(seq_len, dtype="int64").unsqueeze(0)
    real = (attention_mask > 0).astype("int64")
    # Arithmetic and a one-hot sum instead of hidden[batch, index]: advanced indexing exports through a
    # broadcast_tensors op that paddle2onnx cannot convert (it aborts); this is exact and exports to Mul/ReduceSum.
    if method == "cls":
        index = seq_len - (real * (seq_len - positions)).max(axis=1)
    elif method == "last":
        index = (real * (positions + 1)).max(axis=1) - 1
    else:
        raise ValueError(f"unknown pooling method {method!r} (cls, mean or last)")
    pick = (positions == index.unsqueeze(-1)).astype(hidden.dtype)
    return (hidden * pick.unsqueeze(-1)).sum(axis=1)


def normalize(embeddings: paddle.Tensor) -> paddle.Tensor:
    return F.normalize(embeddings, p=2, axis=-1)

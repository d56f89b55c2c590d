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
    real = attention_mask.astype("int64") > 0
    if method == "cls":
        index = paddle.where(real, positions, paddle.full_like(positions, seq_len)).min(axis=1)
    elif method == "last":
        index = paddle.where(real, positions, paddle.full_like(positions, -1)).max(axis=1)
    else:
        raise ValueError(f"unknown pooling method {method!r} (cls, mean or last)")
    batch = paddle.arange(hidden.shape[0], dtype="int64")
    return hidden[batch, index]


def normalize(embeddings: paddle.Tensor) -> paddle.Tensor:
    return F.normalize(embeddings, p=2, axis=-1)

"""Sentence pooling over token states: one registered function per `Pooling` member.

Every pooling finds real tokens through ``attention_mask`` alone, so right and left padding give the same
vectors. Positions are picked with arithmetic and one-hot sums rather than ``hidden[batch, index]``: advanced
indexing exports through a broadcast_tensors op that paddle2onnx cannot convert (it aborts); masks and sums are
exact and export to Mul/ReduceSum.
"""

from __future__ import annotations

from collections.abc import Callable

import paddle
import paddle.nn.functional as F

from embedkit.choices import Pooling

PoolFunction = Callable[[paddle.Tensor, paddle.Tensor], paddle.Tensor]


def _positions(attention_mask: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor]:
    """(positions [1, T], real [B, T] as int64 0/1)."""
    positions = paddle.arange(attention_mask.shape[1], dtype="int64").unsqueeze(0)
    return positions, (attention_mask > 0).astype("int64")


def _last_index(attention_mask: paddle.Tensor) -> paddle.Tensor:
    """[B]: the position of each row's last real token."""
    positions, real = _positions(attention_mask)
    return (real * (positions + 1)).max(axis=1) - 1


def _masked_mean(hidden: paddle.Tensor, weights: paddle.Tensor) -> paddle.Tensor:
    weights = weights.astype(hidden.dtype)
    summed = (hidden * weights.unsqueeze(-1)).sum(axis=1)
    return summed / weights.sum(axis=1, keepdim=True).clip(min=1e-9)


def _at(hidden: paddle.Tensor, index: paddle.Tensor) -> paddle.Tensor:
    positions = paddle.arange(hidden.shape[1], dtype="int64").unsqueeze(0)
    pick = (positions == index.unsqueeze(-1)).astype(hidden.dtype)
    return (hidden * pick.unsqueeze(-1)).sum(axis=1)


def cls_pool(hidden: paddle.Tensor, attention_mask: paddle.Tensor) -> paddle.Tensor:
    """The first real token (the first 1 in the mask, so left padding works too)."""
    positions, real = _positions(attention_mask)
    seq_len = attention_mask.shape[1]
    return _at(hidden, seq_len - (real * (seq_len - positions)).max(axis=1))


def mean_pool(hidden: paddle.Tensor, attention_mask: paddle.Tensor) -> paddle.Tensor:
    return _masked_mean(hidden, attention_mask)


def last_pool(hidden: paddle.Tensor, attention_mask: paddle.Tensor) -> paddle.Tensor:
    """The last real token: EOS for decoder embedders that append it (RepLLaMA, Qwen3-Embedding)."""
    return _at(hidden, _last_index(attention_mask))


def last_k_pool(k: int) -> PoolFunction:
    """The mean of each text's last ``k`` real tokens (all of them when it has fewer)."""

    def pool_last_k(hidden: paddle.Tensor, attention_mask: paddle.Tensor) -> paddle.Tensor:
        positions, real = _positions(attention_mask)
        window = (positions > (_last_index(attention_mask) - k).unsqueeze(-1)).astype("int64")
        return _masked_mean(hidden, real * window)

    return pool_last_k


# LLARA ends every text with 8 special tokens (<s1>..<s8> or <s9>..<s16>) and embeds it as their mean.
POOLINGS: dict[Pooling, PoolFunction] = {
    Pooling.CLS: cls_pool,
    Pooling.MEAN: mean_pool,
    Pooling.LAST: last_pool,
    Pooling.LAST_8: last_k_pool(8),
}


def pool(hidden: paddle.Tensor, attention_mask: paddle.Tensor, method: str) -> paddle.Tensor:
    """Pool ``hidden`` [B, T, H] under ``attention_mask`` [B, T] (1 = token) into [B, H]."""
    try:
        function = POOLINGS[Pooling(method)]
    except (ValueError, KeyError):
        raise ValueError(f"unknown pooling method {method!r} ({', '.join(POOLINGS)})") from None
    return function(hidden, attention_mask)


def normalize(embeddings: paddle.Tensor) -> paddle.Tensor:
    return F.normalize(embeddings, p=2, axis=-1)

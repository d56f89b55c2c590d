"""Score helpers shared by the contrastive losses: dot products, positive columns, masking."""

from __future__ import annotations

from typing import Optional

import paddle
import paddle.nn.functional as F


def effective_temperature(temperature: float, normalized: bool) -> float:
    """τ for the similarity logits; 1.0 when embeddings are not normalised.

    The original example forces τ = 1 without normalisation: raw dot products are unbounded, and dividing
    them by 0.02 would saturate the softmax. We keep that behaviour.
    """
    return temperature if normalized else 1.0


def dot_scores(q: paddle.Tensor, p: paddle.Tensor) -> paddle.Tensor:
    """Q·Pᵀ [B, N] in float32: the matmul runs in the embeddings' dtype (fast under AMP), the softmax that
    follows does not (logits up to 1/τ = 50 lose precision in fp16)."""
    return paddle.matmul(q, p, transpose_y=True).astype("float32")


def as_tensor(value) -> paddle.Tensor:
    """``value`` as a tensor: collators may hand masks and teacher scores over as numpy arrays."""
    return value if isinstance(value, paddle.Tensor) else paddle.to_tensor(value)


def positive_columns(batch: int, group_size: int) -> paddle.Tensor:
    """int64 [B]: query i's positive sits at column i·G."""
    return paddle.arange(batch, dtype="int64") * group_size


def check_group_layout(q: paddle.Tensor, p: paddle.Tensor, group_size: int) -> None:
    if p.shape[0] != q.shape[0] * group_size:
        raise ValueError(f"{p.shape[0]} passages for {q.shape[0]} queries × group size {group_size}")


def mask_false_negatives(logits: paddle.Tensor, mask: Optional[paddle.Tensor], targets: paddle.Tensor) -> paddle.Tensor:
    """Replace masked logits [B, N] with a value no softmax can pick; the target column is never masked.

    The fill is half the dtype's most negative finite value rather than -inf, so the row-max subtraction
    inside log-softmax cannot overflow and no inf·0 reaches the backward pass. The losses mask float32
    logits (:func:`dot_scores`), so this holds under fp16/bf16 AMP too.
    """
    if mask is None:
        return logits
    mask = as_tensor(mask)
    if list(mask.shape) != list(logits.shape):
        raise ValueError(f"false-negative mask has shape {list(mask.shape)}, scores have {list(logits.shape)}")
    own_positive = F.one_hot(targets, logits.shape[1]).astype("bool")
    mask = paddle.logical_and(mask.astype("bool"), paddle.logical_not(own_positive))
    fill = paddle.full_like(logits, paddle.finfo(logits.dtype).min / 2)
    return paddle.where(mask, fill, logits)

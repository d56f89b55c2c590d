"""Sentence pooling over token states: one registered function per `Pooling` member.

Most poolings are functions of the token states and the mask. ``latent_attention`` (NV-Embed's) has parameters:
a `LatentAttention` block, which lives in the model it pools for (NV-Embed's ``latent_attention_model``, saved
and loaded with the model's weights) and is handed to `pool` as ``block``.

Every pooling finds real tokens through ``attention_mask`` alone, so right and left padding give the same
vectors. ``skip`` leading real tokens (an instruction prefix, NV-Embed's ``is_mask_instruction``) can be left
out of the mean-based poolings (`pool_mask`). Positions are picked with arithmetic and one-hot sums rather than ``hidden[batch, index]``: advanced
indexing exports through a broadcast_tensors op that paddle2onnx cannot convert (it aborts); masks and sums are
exact and export to Mul/ReduceSum. Lengths come from ``paddle.shape`` (a tensor), not ``.shape``: paddle.jit does not
convert the closure `last_k_pool` returns, and there ``.shape[1]`` of a traced tensor is -1 (an empty arange).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import paddle
import paddle.nn.functional as F
from paddle import nn

from embedkit.choices import Pooling

PoolFunction = Callable[[paddle.Tensor, paddle.Tensor], paddle.Tensor]


def _positions(attention_mask: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor]:
    """(positions [1, T], real [B, T] as int64 0/1)."""
    positions = paddle.arange(paddle.shape(attention_mask)[1], dtype="int64").unsqueeze(0)
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
    positions = paddle.arange(paddle.shape(hidden)[1], dtype="int64").unsqueeze(0)
    pick = (positions == index.unsqueeze(-1)).astype(hidden.dtype)
    return (hidden * pick.unsqueeze(-1)).sum(axis=1)


def cls_pool(hidden: paddle.Tensor, attention_mask: paddle.Tensor) -> paddle.Tensor:
    """The first real token (the first 1 in the mask, so left padding works too)."""
    positions, real = _positions(attention_mask)
    seq_len = paddle.shape(attention_mask)[1]
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


def pool_mask(attention_mask: paddle.Tensor, skip: int) -> paddle.Tensor:
    """``attention_mask`` without each row's first ``skip`` real tokens (int64 0/1), whichever side is padded."""
    real = (attention_mask > 0).astype("int64")
    if not skip:
        return real
    return real * (real.cumsum(axis=1) > skip).astype("int64")


class _PreNorm(nn.Layer):
    """LayerNorm before ``fn`` (and over its context), as the NV-Embed checkpoint names them: ``norm``,
    ``norm_context``, ``fn``."""

    def __init__(self, dim: int, fn: nn.Layer, context_dim: Optional[int] = None):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn
        self.norm_context = nn.LayerNorm(context_dim) if context_dim is not None else None


class _CrossAttention(nn.Layer):
    def __init__(self, query_dim: int, context_dim: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.dim_head = heads, dim_head
        self.to_q = nn.Linear(query_dim, inner, bias_attr=False)
        self.to_kv = nn.Linear(context_dim, 2 * inner, bias_attr=False)
        self.to_out = nn.Linear(inner, query_dim, bias_attr=False)

    def forward(self, x: paddle.Tensor, context: paddle.Tensor) -> paddle.Tensor:
        """``x`` [B, T, D] attends to ``context`` [R, C] (the same for every row): [B, T, D]."""
        batch, length = x.shape[0], x.shape[1]
        q = self.to_q(x).reshape([batch, length, self.heads, self.dim_head]).transpose([0, 2, 1, 3])
        k, v = self.to_kv(context).chunk(2, axis=-1)
        k = k.reshape([-1, self.heads, self.dim_head]).transpose([1, 0, 2]).unsqueeze(0)  # [1, heads, R, dh]
        v = v.reshape([-1, self.heads, self.dim_head]).transpose([1, 0, 2]).unsqueeze(0)
        scores = paddle.matmul(q, k, transpose_y=True).astype("float32") * self.dim_head ** -0.5
        out = paddle.matmul(F.softmax(scores, axis=-1).astype(q.dtype), v)  # [B, heads, T, dh]
        return self.to_out(out.transpose([0, 2, 1, 3]).reshape([batch, length, self.heads * self.dim_head]))


class _GEGLUFeedForward(nn.Layer):
    def __init__(self, dim: int, mult: int):
        super().__init__()
        # ``net.0`` and ``net.2``, as the checkpoint names them (``net.1`` is the parameter-free GEGLU).
        self.net = nn.LayerList([nn.Linear(dim, dim * mult * 2), nn.Identity(), nn.Linear(dim * mult, dim)])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        value, gate = self.net[0](x).chunk(2, axis=-1)
        return self.net[2](value * F.gelu(gate))


class LatentAttention(nn.Layer):
    """NV-Embed's latent-attention pooling (Lee et al. 2024, "NV-Embed", section 3.2).

    The token states Q [T, d] are the queries of a multi-head cross-attention whose keys and values are a
    trainable latent array [r, d] (one for all texts); its output, plus Q, goes through a GEGLU MLP with a
    residual, and the result is mean-pooled over the pool mask. Each sublayer is pre-normalised with a
    LayerNorm (the latents too). Sizes and names follow the published checkpoint's ``latent_attention_config``
    (``num_latents_value``, ``latent_dim``, ``hidden_dim``, ``num_cross_heads``, ``cross_dim_head``) and its
    ``latent_attention_model.*`` weights; NV-Embed-v1 has 512 latents and 8 heads of 4096 on a 4096-wide model.
    """

    def __init__(self, num_latents_value: int = 512, latent_dim: int = 4096, hidden_dim: int = 4096,
                 num_cross_heads: int = 8, cross_dim_head: int = 4096, output_normalize: bool = True, mult: int = 4,
                 **_: Any):
        super().__init__()
        self.output_normalize = output_normalize
        self.cross_attend_blocks = nn.LayerList([
            _PreNorm(latent_dim, _CrossAttention(latent_dim, hidden_dim, num_cross_heads, cross_dim_head),
                     context_dim=hidden_dim),
            _PreNorm(latent_dim, _GEGLUFeedForward(latent_dim, mult)),
        ])
        self.latents = self.create_parameter([num_latents_value, latent_dim],
                                             default_initializer=nn.initializer.Normal(0.0, 1.0))

    def forward(self, hidden: paddle.Tensor, mask: paddle.Tensor) -> paddle.Tensor:
        attend, feed_forward = self.cross_attend_blocks
        latents = attend.norm_context(self.latents.astype(hidden.dtype))
        hidden = attend.fn(attend.norm(hidden), latents) + hidden
        hidden = feed_forward.fn(feed_forward.norm(hidden)) + hidden
        pooled = _masked_mean(hidden, mask)
        return normalize(pooled) if self.output_normalize else pooled


# LLARA ends every text with 8 special tokens (<s1>..<s8> or <s9>..<s16>) and embeds it as their mean.
POOLINGS: dict[Pooling, PoolFunction] = {
    Pooling.CLS: cls_pool,
    Pooling.MEAN: mean_pool,
    Pooling.LAST: last_pool,
    Pooling.LAST_8: last_k_pool(8),
    Pooling.LATENT_ATTENTION: None,  # set below: it needs its block
}
# Poolings with parameters: the attribute of the model that holds them.
POOLING_BLOCKS: dict[Pooling, str] = {Pooling.LATENT_ATTENTION: "latent_attention_model"}
# Poolings that average over a mask, which can leave the instruction out.
MASKABLE = frozenset({Pooling.MEAN, Pooling.LATENT_ATTENTION})


def latent_attention_pool(hidden: paddle.Tensor, attention_mask: paddle.Tensor,
                          block: Optional[LatentAttention] = None) -> paddle.Tensor:
    if block is None:
        raise ValueError("latent_attention pooling needs the model's latent-attention block (NV-Embed's "
                         "latent_attention_model); this model has none")
    return block(hidden, attention_mask)


POOLINGS[Pooling.LATENT_ATTENTION] = latent_attention_pool


def pooling_block(model, method: str) -> Optional[nn.Layer]:
    """The parameters pooling ``method`` uses in ``model`` (a backbone, or a LoRA model around one), or None."""
    attribute = POOLING_BLOCKS.get(Pooling(method))
    return getattr(model, attribute, None) if attribute else None


def pool(hidden: paddle.Tensor, attention_mask: paddle.Tensor, method: str, block: Optional[nn.Layer] = None,
         skip: int = 0) -> paddle.Tensor:
    """Pool ``hidden`` [B, T, H] under ``attention_mask`` [B, T] (1 = token) into [B, H].

    ``block``: the parameters of a pooling that has them (`pooling_block`). ``skip``: leading real tokens the
    mean-based poolings leave out (NV-Embed's instruction masking); refused for the position-based ones.
    """
    try:
        method = Pooling(method)
        function = POOLINGS[method]
    except (ValueError, KeyError):
        raise ValueError(f"unknown pooling method {method!r} ({', '.join(POOLINGS)})") from None
    if skip and method not in MASKABLE:
        raise ValueError(f"{method} pooling cannot leave instruction tokens out (only {', '.join(sorted(MASKABLE))})")
    mask = pool_mask(attention_mask, skip) if skip else attention_mask
    if method in POOLING_BLOCKS:
        return function(hidden, mask, block)
    return function(hidden, mask)


def normalize(embeddings: paddle.Tensor) -> paddle.Tensor:
    return F.normalize(embeddings, p=2, axis=-1)

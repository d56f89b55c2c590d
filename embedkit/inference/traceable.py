"""What PaddleNLP's LLaMA and Qwen2 need to trace with batch and length dynamic, applied only while exporting.

PaddleNLP 3.0.0b4's decoders compute shapes in Python from ``tensor.shape``: ``reshape([bsz, q_len, ...])``,
``paddle.arange(seq_length)``, ``cos_cached[:, :kv_seq_len]``, ``if input_shape[-1] > 1: <causal mask>``.
Under ``paddle.jit.to_static`` with [None, None] inputs those dims are unknown (-1): a reshape with two of them is
refused ("Only one dimension value of 'shape' in reshape can be -1"), and the rest would bake a wrong shape or
branch into the graph. `traceable` swaps the helpers involved for ones computing the same values from tensor
shapes, on the layer being exported and only while it is traced: the dygraph model (training, the paddle engine,
parity with transformers) keeps running PaddleNLP's own code, and the graph is checked against it before first
use (`embedkit.inference.export.check_against_dygraph`, fp32 within 1e-4).

Replaced, for LLaMA and Qwen2 (the same layout: states [B, T, heads, D]):

- ``repeat_kv`` (module function): the same tile, reshaped with the batch and length dims copied (0);
- ``apply_rotary_pos_emb`` (module function): the same rotation at PaddleNLP's default positions, 0..T-1 per row
  whatever the padding, gathered by ``paddle.arange(paddle.shape(q)[1])`` from one cos/sin table shared by the
  layers (each layer's rotary embedding, which sliced its cache by ``kv_seq_len``, returns nothing meanwhile);
- the attention's ``attn_func`` (PaddleNLP's non-flash ``scaled_dot_product_attention``): the same scaling,
  matmuls, additive mask and float32 softmax, without reshapes to Python-int shapes;
- the model's ``_prepare_decoder_attention_mask``: the same additive [B, 1, T, T] mask (causal, padded keys
  hidden, ``finfo(dtype).min``), shaped from the mask tensor;
- the fused ``swiglu`` (LLaMA's module function, Qwen2's MLP ``act_fn``): ``silu(x) * y``, since paddle2onnx has
  no converter for the fused op.

The module functions (``repeat_kv``, ``apply_rotary_pos_emb``, LLaMA's ``swiglu``) are replaced process-wide while
an export is traced (a second or so for a tiny model): a dygraph forward of another LLaMA or Qwen2 running in
another thread at that moment would use them, and the shared rotary table of the model being exported.

Anything else (flash attention, sequence or tensor parallelism, ALiBi, a KV cache, fused QKV) keeps PaddleNLP's
code, and an export that then fails to trace is refused as before (ExportUnsupportedError; `auto` uses dygraph).
Mistral's attention computes its shapes inline in ``MistralAttention.forward``: making it traceable means
rewriting that forward, which is not done here.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import types
from collections.abc import Iterator

import paddle
import paddle.nn.functional as F

# module -> (attention, MLP and model classes, whether the query is scaled by a reciprocal (LLaMA) or divided (Qwen2))
_FAMILIES = {
    "paddlenlp.transformers.llama.modeling": ("LlamaAttention", "LlamaMLP", "LlamaModel", True),
    "paddlenlp.transformers.qwen2.modeling": ("Qwen2Attention", "Qwen2MLP", "Qwen2Model", False),
}


def _repeat_kv(hidden_states: paddle.Tensor, n_rep: int) -> paddle.Tensor:
    """[B, T, kv, D] -> [B, T, kv * n_rep, D], each key/value head repeated in place (PaddleNLP's tile)."""
    if n_rep == 1:
        return hidden_states
    kv_heads, head_dim = hidden_states.shape[2], hidden_states.shape[3]
    return hidden_states.unsqueeze(-2).tile([1, 1, 1, n_rep, 1]).reshape([0, 0, kv_heads * n_rep, head_dim])


def _attention(original, reciprocal: bool):
    """PaddleNLP's non-flash ``scaled_dot_product_attention`` of [B, T, heads, D] inputs, traceable."""

    def attention(query_states, config, key_states, value_states, attention_mask, output_attentions, *args,
                  **kwargs):
        unusual = (config.use_flash_attention or output_attentions or attention_mask is None or args
                   or kwargs.get("sequence_parallel") or kwargs.get("training") or kwargs.get("npu_is_casual")
                   or any(kwargs.get(name) is not None
                          for name in ("alibi", "reshard_layer", "attn_mask_startend_row_indices")))
        if unusual:
            return original(query_states, config, key_states, value_states, attention_mask, output_attentions,
                            *args, **kwargs)
        heads, head_dim = query_states.shape[2], query_states.shape[3]
        query = query_states.transpose([0, 2, 1, 3])
        key, value = key_states.transpose([0, 2, 1, 3]), value_states.transpose([0, 2, 1, 3])
        query = query * (1 / math.sqrt(head_dim)) if reciprocal else query / math.sqrt(head_dim)
        weights = paddle.matmul(query, key.transpose([0, 1, 3, 2])) + attention_mask  # mask: [B, 1, T, T]
        weights = F.softmax(weights.astype("float32"), axis=-1).astype(query_states.dtype)
        out = paddle.matmul(weights, value).transpose([0, 2, 1, 3])
        return out.reshape([0, 0, heads * head_dim])

    return attention


def _decoder_mask(attention_mask, input_shape, past_key_values_length, dtype):
    """PaddleNLP's additive [B, 1, T, T] decoder mask of a [B, T] padding mask: keys up to the query, not padded."""
    if attention_mask is None or len(attention_mask.shape) != 2 or past_key_values_length:
        raise NotImplementedError("a traced decoder takes a [batch, length] attention mask and no KV cache")
    positions = paddle.arange(paddle.shape(attention_mask)[1], dtype="int64")
    causal = positions.unsqueeze(0) <= positions.unsqueeze(1)  # [query, key]
    allowed = causal.unsqueeze([0, 1]) & attention_mask.astype("bool").unsqueeze([1, 2])
    return paddle.where(allowed, 0.0, paddle.finfo(dtype).min).astype(dtype)


def _swiglu(x, y=None):
    """silu(x) * y (of the two halves of x without y): PaddleNLP's fused swiglu, which paddle2onnx cannot convert."""
    if y is None:
        x, y = paddle.chunk(x, chunks=2, axis=-1)
    return F.silu(x) * y


def _rotary_at_default_positions(rotary):
    """PaddleNLP's ``apply_rotary_pos_emb`` for [B, T, heads, D] states at its default positions, 0..T-1 per row.

    The exported layer never passes ``position_ids``, so the defaults are the only positions a graph runs at.
    cos and sin come from one table per model, the first half of ``rotary``'s cache (PaddleNLP's cache is
    ``concat([freqs, freqs])``: both halves are equal), instead of every layer's own full cache: each would be a
    constant of the graph, [max_position_embeddings, head_dim] floats twice per layer (Qwen2-1.5B: 3.7 GB).
    """
    def apply_rotary_pos_emb(q, k, cos, sin, position_ids):
        positions = paddle.arange(paddle.shape(q)[1], dtype="int64")

        def at_positions(table):
            rows = paddle.gather(table, positions)  # [T, D/2]
            return paddle.concat([rows, rows], axis=-1).unsqueeze([0, 2]).astype(q.dtype)  # [1, T, 1, D]

        # Buffers of ``rotary`` (set by `traceable`): a tensor the traced code reaches only through a closure has
        # no place in the saved program (jit.save: KeyError 'eager_tmp_6').
        cos, sin = at_positions(rotary.embedkit_cos_half), at_positions(rotary.embedkit_sin_half)
        return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin

    return apply_rotary_pos_emb


def _rotate_half(x):
    first, second = x.chunk(2, axis=-1)
    return paddle.concat([-second, first], axis=-1)


def _no_cache(self, x, seq_len=None):
    """A rotary embedding's forward while traced: nothing (`_rotary_at_default_positions` reads one shared table)."""
    return None, None


def _same_rotary(first, other) -> bool:
    return (first.cos_cached.shape == other.cos_cached.shape
            and bool((first.cos_cached == other.cos_cached).all()) and bool((first.sin_cached == other.sin_cached).all()))


class _Patches:
    def __init__(self):
        self._undo = []

    def set(self, owner, name: str, value) -> None:
        """``owner.name = value`` until `undo` (a Tensor set on a Layer becomes one of its buffers meanwhile)."""
        had = name in vars(owner)
        previous = vars(owner).get(name)
        setattr(owner, name, value)
        self._undo.append((owner, name, had, previous))

    def undo(self) -> None:
        for owner, name, had, previous in reversed(self._undo):
            if had:
                setattr(owner, name, previous)
            else:
                delattr(owner, name)
        self._undo.clear()


@contextlib.contextmanager
def traceable(layer: paddle.nn.Layer) -> Iterator[None]:
    """``layer``'s PaddleNLP LLaMA/Qwen2 sublayers made traceable until the block ends (see the module docstring)."""
    patches = _Patches()
    try:
        for module_name, (attention_class, mlp_class, model_class, reciprocal) in _FAMILIES.items():
            module = importlib.import_module(module_name)
            rotaries = []
            for sublayer in layer.sublayers(include_self=True):
                if type(sublayer).__name__ == attention_class and not getattr(sublayer, "fuse_attention_qkv", False):
                    patches.set(sublayer, "attn_func", _attention(module.scaled_dot_product_attention, reciprocal))
                    rotaries.append(sublayer.rotary_emb)
                    patches.set(sublayer.rotary_emb, "forward", types.MethodType(_no_cache, sublayer.rotary_emb))
                elif type(sublayer).__name__ == mlp_class and getattr(sublayer, "fuse_swiglu", False):
                    patches.set(sublayer, "act_fn", _swiglu)  # Qwen2
                elif type(sublayer).__name__ == model_class:
                    patches.set(sublayer, "_prepare_decoder_attention_mask", _decoder_mask)
            if not rotaries:
                continue
            if not all(_same_rotary(rotaries[0], other) for other in rotaries[1:]):
                raise NotImplementedError("the exported layer's rotary embeddings differ (towers of other configs)")
            patches.set(module, "repeat_kv", _repeat_kv)
            first, half = rotaries[0], rotaries[0].cos_cached.shape[-1] // 2
            patches.set(first, "embedkit_cos_half", first.cos_cached[0, :, 0, :half].astype("float32"))  # [P, D/2]
            patches.set(first, "embedkit_sin_half", first.sin_cached[0, :, 0, :half].astype("float32"))
            patches.set(module, "apply_rotary_pos_emb", _rotary_at_default_positions(first))
            if hasattr(module, "swiglu"):  # LLaMA's MLP calls the module's
                patches.set(module, "swiglu", _swiglu)
        yield
    finally:
        patches.undo()

"""Qwen3, the backbone of Qwen3-Embedding, in Paddle: PaddleNLP 3.0.0b4 has no Qwen3 model class.

Qwen3 is Qwen2 without the q/k/v biases and with an RMSNorm over each head's query and key (before the rotary
embedding); ``head_dim`` is explicit (Qwen3-0.6B: 16 heads of 128 on a 1024-wide model), key/value heads are
grouped, and positions are 0..T-1 whatever the padding, as in Hugging Face's implementation, so left padding
(Qwen3-Embedding's) only shifts every position of a text by the same amount, which rotary embeddings cancel.

Sublayer names are Hugging Face's, so a Hugging Face checkpoint maps onto this model as `hf_decoder` says. The
LM head is not part of the backbone: a checkpoint's ``lm_head.weight`` (absent when the config ties it to the
embeddings) is not read.
"""

from __future__ import annotations

from pathlib import Path

import paddle
import paddle.nn.functional as F
from paddle import nn
from paddlenlp.transformers.configuration_utils import PretrainedConfig
from paddlenlp.transformers.model_outputs import BaseModelOutputWithPast
from paddlenlp.transformers.model_utils import PretrainedModel

from embedkit.errors import UserError
from embedkit.filenames import MODEL_CONFIG_FILE
from embedkit.modeling.hf_decoder import build, read_config

# Added to the scores of masked keys. Finite, so a left-padding row that sees no key stays a number, not NaN.
_MASKED = -1e9


class Qwen3Config(PretrainedConfig):
    model_type = "qwen3"

    def __init__(self, vocab_size=151936, hidden_size=4096, intermediate_size=22016, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=None, head_dim=None, hidden_act="silu",
                 max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
                 attention_bias=False, attention_dropout=0.0, use_sliding_window=False, initializer_range=0.02,
                 tie_word_embeddings=False, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads or num_attention_heads
        self.head_dim = head_dim or hidden_size // num_attention_heads
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.rms_norm_eps = rms_norm_eps
        self.rope_theta = rope_theta
        self.rope_scaling = rope_scaling
        self.attention_bias = attention_bias
        self.attention_dropout = attention_dropout
        self.use_sliding_window = use_sliding_window
        self.initializer_range = initializer_range
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)


class Qwen3RMSNorm(nn.Layer):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = self.create_parameter([size], default_initializer=nn.initializer.Constant(1.0))
        self.eps = eps

    def forward(self, x):
        # In float32 whatever the weights' dtype, as the reference does: bf16 squares lose too much.
        h = x.astype("float32")
        h = h * paddle.rsqrt(h.pow(2).mean(axis=-1, keepdim=True) + self.eps)
        return self.weight * h.astype(x.dtype)


def _rotate_half(x):
    first, second = x.chunk(2, axis=-1)
    return paddle.concat([-second, first], axis=-1)


class Qwen3Attention(nn.Layer):
    def __init__(self, config: Qwen3Config):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = config.num_attention_heads, config.num_key_value_heads, config.head_dim
        bias = config.attention_bias
        self.q_proj = nn.Linear(config.hidden_size, self.heads * self.head_dim, bias_attr=bias)
        self.k_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias_attr=bias)
        self.v_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias_attr=bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, config.hidden_size, bias_attr=bias)
        self.q_norm = Qwen3RMSNorm(self.head_dim, config.rms_norm_eps)
        self.k_norm = Qwen3RMSNorm(self.head_dim, config.rms_norm_eps)
        self.dropout = config.attention_dropout

    def forward(self, hidden, cos, sin, mask):
        # Reshapes copy the batch and length dims (0) instead of naming them, so paddle.jit can trace the layer
        # with both dynamic: an ONNX/OpenVINO export, and with it `embedkit quantize`.
        def heads(projected, count, norm=None):
            states = projected.reshape([0, 0, count, self.head_dim])
            return (norm(states) if norm is not None else states).transpose([0, 2, 1, 3])

        q = heads(self.q_proj(hidden), self.heads, self.q_norm)
        k = heads(self.k_proj(hidden), self.kv_heads, self.k_norm)
        v = heads(self.v_proj(hidden), self.kv_heads)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        k, v = self._repeat_kv(k), self._repeat_kv(v)
        scores = paddle.matmul(q, k, transpose_y=True).astype("float32") * self.head_dim ** -0.5 + mask
        probs = F.dropout(F.softmax(scores, axis=-1).astype(q.dtype), self.dropout, training=self.training)
        out = paddle.matmul(probs, v).transpose([0, 2, 1, 3]).reshape([0, 0, self.heads * self.head_dim])
        return self.o_proj(out)


    def _repeat_kv(self, states):
        """[B, kv_heads, T, D] -> [B, heads, T, D], each key/value head serving its consecutive query heads.

        The same copies as ``repeat_interleave(groups, axis=1)``, written as tile and reshape: paddle2onnx 2.1
        converts repeat_interleave on a traced [B, kv, T, D] into a Tile over the wrong axis (keys came out
        [B, heads, groups * T, D], and ONNX Runtime failed on the mask add: "broadcast ... 128 by 256").
        """
        groups = self.heads // self.kv_heads  # query heads per key/value head, consecutive
        if groups == 1:
            return states
        tiled = states.unsqueeze(2).tile([1, 1, groups, 1, 1])  # [B, kv, groups, T, D]
        return tiled.reshape([0, self.heads, -1, self.head_dim])


class Qwen3MLP(nn.Layer):
    def __init__(self, config: Qwen3Config):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias_attr=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias_attr=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias_attr=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Qwen3DecoderLayer(nn.Layer):
    def __init__(self, config: Qwen3Config):
        super().__init__()
        self.self_attn = Qwen3Attention(config)
        self.mlp = Qwen3MLP(config)
        self.input_layernorm = Qwen3RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = Qwen3RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, hidden, cos, sin, mask):
        hidden = hidden + self.self_attn(self.input_layernorm(hidden), cos, sin, mask)
        return hidden + self.mlp(self.post_attention_layernorm(hidden))


class Qwen3PretrainedModel(PretrainedModel):
    config_class = Qwen3Config
    base_model_prefix = "qwen3"

    def _init_weights(self, layer):
        if isinstance(layer, (nn.Linear, nn.Embedding)):
            layer.weight.set_value(paddle.normal(0.0, self.config.initializer_range, layer.weight.shape)
                                   .astype(layer.weight.dtype))
            if getattr(layer, "bias", None) is not None:
                layer.bias.set_value(paddle.zeros_like(layer.bias))


class Qwen3Model(Qwen3PretrainedModel):
    def __init__(self, config: Qwen3Config):
        super().__init__(config)
        _check_supported(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.LayerList([Qwen3DecoderLayer(config) for _ in range(config.num_hidden_layers)])
        self.norm = Qwen3RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.enable_recompute = False  # PaddleNLP's Trainer sets it under `recompute: true`
        # cos and sin of every position's rotary angles, [max_position_embeddings, head_dim / 2] float32, looked
        # up by position. Computed here rather than per forward so an exported graph holds them as constants: in
        # the graph, a bf16 engine (OpenVINO) computed the angles in bf16, and at position 500 that is an error of
        # about a radian (a left-padded short text sits at the end of the batch's positions; cosine to dygraph
        # 0.978). Not persistable: no checkpoint has them, and none is written with them.
        cos, sin = _rotary_table(config)
        self.register_buffer("rotary_cos", cos, persistable=False)
        self.register_buffer("rotary_sin", sin, persistable=False)

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def _rotary(self, position_ids, dtype):
        """(cos, sin), each [B, 1, T, head_dim] in ``dtype``, shared by the heads."""

        def at_positions(table):
            half = F.embedding(position_ids, table.astype("float32"))  # [B, T, dim/2]: rows of the table
            return paddle.concat([half, half], axis=-1).unsqueeze(1).astype(dtype)

        return at_positions(self.rotary_cos), at_positions(self.rotary_sin)

    @staticmethod
    def _mask(attention_mask, positions):
        """[B, 1, T, T] additive float32: causal, and padded keys hidden (``positions``: [T], 0..T-1)."""
        causal = positions.unsqueeze(0) <= positions.unsqueeze(1)  # [query, key]: keys up to the query
        if attention_mask is None:
            allowed = causal.unsqueeze([0, 1])
        else:
            allowed = causal.unsqueeze([0, 1]) & (attention_mask > 0).unsqueeze([1, 2])
        return paddle.where(allowed, paddle.zeros([], "float32"), paddle.full([], _MASKED, "float32"))

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                output_hidden_states=False, return_dict=True, **_):
        hidden = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        # paddle.shape: a tensor, so the length stays dynamic when traced (hidden.shape would be -1 there).
        positions = paddle.arange(paddle.shape(hidden)[1], dtype="int64")
        if position_ids is None:
            position_ids = paddle.zeros_like(hidden[:, :, 0], dtype="int64") + positions.unsqueeze(0)
        cos, sin = self._rotary(position_ids, hidden.dtype)
        mask = self._mask(attention_mask, positions)
        states = [hidden] if output_hidden_states else None
        for layer in self.layers:
            if self.enable_recompute and self.training:
                from paddle.distributed.fleet.utils import recompute

                hidden = recompute(layer, hidden, cos, sin, mask)
            else:
                hidden = layer(hidden, cos, sin, mask)
            if states is not None:
                states.append(hidden)
        hidden = self.norm(hidden)
        if states is not None:
            states[-1] = hidden  # the last state is after the final norm, as in Hugging Face
        if not return_dict:
            return (hidden, None, tuple(states) if states is not None else None)
        return BaseModelOutputWithPast(last_hidden_state=hidden, hidden_states=tuple(states) if states else None)


def _rotary_table(config: Qwen3Config):
    """(cos, sin) of the rotary angles of positions 0..max_position_embeddings-1, [P, head_dim / 2] float32."""
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (paddle.arange(0, dim, 2, dtype="float32") / dim))
    angles = paddle.arange(config.max_position_embeddings, dtype="float32").unsqueeze(-1) * inv_freq
    return angles.cos(), angles.sin()


def _check_supported(config: Qwen3Config) -> None:
    unsupported = {"rope_scaling": config.rope_scaling, "use_sliding_window": config.use_sliding_window or None,
                   "hidden_act": None if config.hidden_act == "silu" else config.hidden_act}
    named = {key: value for key, value in unsupported.items() if value is not None}
    if named:
        raise UserError(f"this Qwen3 implementation supports neither of {named} (Qwen3-Embedding uses none: "
                        "rope_scaling null, use_sliding_window false, hidden_act silu)", MODEL_CONFIG_FILE)


def from_state(model_dir: Path, state: dict, dtype: str, torch_layout: bool) -> Qwen3Model:
    """The Qwen3Model of ``model_dir``'s config.json holding ``state`` (numpy arrays, checked to fit exactly)."""
    config = Qwen3Config(**{**read_config(model_dir), "dtype": dtype})
    return build(Qwen3Model, config, model_dir, state, dtype, torch_layout)

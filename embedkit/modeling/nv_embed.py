"""NV-Embed-v1 (nvidia/NV-Embed-v1) in Paddle: a Mistral run without the causal mask, plus the latent-attention
pooling block, loaded from and saved in the published checkpoint's layout.

That layout is one ``config.json`` with ``model_type`` ``nvembed``, a ``text_config`` (the Mistral backbone;
``model_type`` ``bidir_mistral`` in the published file) and a ``latent_attention_config`` (the pooling block's
sizes), and weights ``embedding_model.*`` (the Mistral) and ``latent_attention_model.*`` (latents,
cross-attention, GEGLU MLP, their LayerNorms). `NVEmbedModel` has those two sublayers under those names, so a
Hugging Face checkpoint maps onto it by transposing its Linear weights, and ``save_pretrained`` writes the same
layout back (the original example's ``NVEncodeModel.save_pretrained`` referenced ``self.model``, which it did not
have).

The backbone's forward returns the Mistral's token states, as every backbone does; the latent block is applied by
the ``latent_attention`` pooling (`embedkit.modeling.pooling`), which finds it as ``latent_attention_model``.

Attention is bidirectional: every real token attends to every real token, padded keys stay masked (NV-Embed's
``_prepare_4d_attention_mask``). Mistral's sliding window is not applied, as neither NV-Embed's bidirectional mask
nor PaddleNLP's Mistral applies it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional

import paddle
from paddlenlp.transformers import MistralConfig, MistralModel
from paddlenlp.transformers.configuration_utils import PretrainedConfig
from paddlenlp.transformers.model_utils import PretrainedModel

from embedkit.errors import UserError
from embedkit.filenames import MODEL_CONFIG_FILE
from embedkit.modeling.hf_decoder import build, read_config
from embedkit.modeling.pooling import LatentAttention

# NV-Embed-v1's latent_attention_config is {"model_type": "latent_attention"}: every size is the default.
LATENT_DEFAULTS = {"num_latents_value": 512, "num_cross_heads": 8, "output_normalize": True, "hidden_dim": 4096,
                   "latent_dim": 4096, "cross_dim_head": 4096}
_TEXT_MODEL_TYPES = ("bidir_mistral", "mistral")


class NVEmbedConfig(PretrainedConfig):
    """``text_config`` and ``latent_attention_config`` are kept as the dicts ``config.json`` holds; the backbone's
    sizes (``hidden_size``, ``num_hidden_layers``, ...) are read from and written to ``text_config``."""

    model_type = "nvembed"
    # The backbone's fields; given flat (as a plain Mistral config has them) they go to text_config.
    _TEXT_FIELDS = ("hidden_size", "num_hidden_layers", "vocab_size", "num_attention_heads", "num_key_value_heads",
                    "intermediate_size", "max_position_embeddings", "head_dim", "rms_norm_eps", "rope_theta")

    def __init__(self, text_config: Optional[dict] = None, latent_attention_config: Optional[dict] = None,
                 padding_side: str = "right", add_pad_token: bool = True, is_mask_instruction: bool = True,
                 add_eos: bool = True, mask_type: str = "b", **kwargs):
        text = dict(text_config or {})
        for name in self._TEXT_FIELDS:  # flat sizes (as a plain Mistral config gives them) go to the backbone
            if name in kwargs:
                text[name] = kwargs.pop(name)
        self.__dict__["text_config"] = text
        self.latent_attention_config = {"model_type": "latent_attention", **(latent_attention_config or {})}
        self.padding_side = padding_side
        self.add_pad_token = add_pad_token
        self.is_mask_instruction = is_mask_instruction
        self.add_eos = add_eos
        self.mask_type = mask_type
        super().__init__(**kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._TEXT_FIELDS and "text_config" in self.__dict__:
            self.__dict__["text_config"][name] = value
            return
        super().__setattr__(name, value)

    def __getattribute__(self, name: str) -> Any:
        if name in type(self)._TEXT_FIELDS:
            text = object.__getattribute__(self, "__dict__").get("text_config", {})
            if name in text:
                return text[name]
        return super().__getattribute__(name)

    def to_dict(self, *args, **kwargs) -> dict:
        """As config.json holds it; ``hidden_size`` is at the top level too, as in the published file."""
        data = super().to_dict(*args, **kwargs)
        if "hidden_size" in self.text_config:
            data["hidden_size"] = self.text_config["hidden_size"]
        return data

    def mistral_config(self, dtype: Optional[str] = None) -> MistralConfig:
        text = {k: v for k, v in self.text_config.items() if k not in ("model_type", "architectures", "_name_or_path",
                                                                       "auto_map", "torch_dtype")}
        if dtype is not None:
            text["dtype"] = dtype
        elif getattr(self, "dtype", None):
            text["dtype"] = self.dtype
        return MistralConfig(**text)

    def latent_sizes(self) -> dict:
        """The latent block's sizes: NV-Embed's defaults where the config is silent (v1's is), except that the
        widths default to the backbone's (4096 in NV-Embed-v1, where the two agree)."""
        given = {k: v for k, v in self.latent_attention_config.items() if k != "model_type"}
        widths = {"hidden_dim": self.hidden_size, "latent_dim": self.hidden_size} if "hidden_size" in self.text_config else {}
        return {**LATENT_DEFAULTS, **widths, **given}


class BidirectionalMistralModel(MistralModel):
    """PaddleNLP's MistralModel with the causal part of its attention mask removed; padded keys stay masked."""

    def _prepare_decoder_attention_mask(self, attention_mask, input_shape, inputs_embeds, past_key_values_length):
        batch, length = input_shape
        if attention_mask is None:  # an all-zero additive mask, never None (None means causal under flash attention)
            return paddle.zeros([batch, 1, length, length + past_key_values_length], dtype=inputs_embeds.dtype)
        keys = (attention_mask > 0).reshape([batch, 1, 1, -1]).expand([batch, 1, length, attention_mask.shape[-1]])
        masked = paddle.full([], paddle.finfo(inputs_embeds.dtype).min, dtype=inputs_embeds.dtype)
        return paddle.where(keys, paddle.zeros([], dtype=inputs_embeds.dtype), masked)


class NVEmbedPretrainedModel(PretrainedModel):
    config_class = NVEmbedConfig
    base_model_prefix = "nvembed"

    def _init_weights(self, layer):
        pass  # the Mistral initialises itself; the latent block keeps its own initialisers


class NVEmbedModel(NVEmbedPretrainedModel):
    def __init__(self, config: NVEmbedConfig):
        super().__init__(config)
        mistral = config.mistral_config()
        _check_supported(mistral, config)
        self.embedding_model = BidirectionalMistralModel(mistral)
        self.latent_attention_model = LatentAttention(**config.latent_sizes())

    @property
    def enable_recompute(self) -> bool:
        return self.embedding_model.enable_recompute

    @enable_recompute.setter
    def enable_recompute(self, value: bool) -> None:  # PaddleNLP's Trainer sets it under `recompute: true`
        if "embedding_model" in self._sub_layers:
            self.embedding_model.enable_recompute = value

    def get_input_embeddings(self):
        return self.embedding_model.embed_tokens

    def set_input_embeddings(self, value):
        self.embedding_model.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                output_hidden_states=None, return_dict=True, **_):
        """The Mistral's outputs: token states (the latent block runs as the pooling)."""
        return self.embedding_model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                    inputs_embeds=inputs_embeds, output_hidden_states=output_hidden_states,
                                    use_cache=False, return_dict=return_dict)


def _check_supported(mistral: MistralConfig, config: NVEmbedConfig) -> None:
    head_dim = mistral.to_dict().get("head_dim")
    if head_dim is not None and head_dim * mistral.num_attention_heads != mistral.hidden_size:
        raise UserError(f"text_config.head_dim {head_dim} is not hidden_size / num_attention_heads: PaddleNLP's "
                        "Mistral cannot build it", MODEL_CONFIG_FILE)
    sizes = config.latent_sizes()
    if sizes["latent_dim"] != mistral.hidden_size or sizes["hidden_dim"] != mistral.hidden_size:
        raise UserError(f"latent_attention_config latent_dim {sizes['latent_dim']} and hidden_dim "
                        f"{sizes['hidden_dim']} must be the backbone's hidden_size {mistral.hidden_size}: the block "
                        "adds its output to the token states", MODEL_CONFIG_FILE)


def _linear_weights(model: NVEmbedModel) -> set[str]:
    from paddle import nn

    return {f"{name}.weight" for name, layer in model.named_sublayers() if isinstance(layer, nn.Linear)}


def from_state(model_dir: Path, state: dict, dtype: str, torch_layout: bool) -> NVEmbedModel:
    """The NVEmbedModel of ``model_dir``'s config.json holding ``state`` (numpy arrays, checked to fit exactly);
    a torch-layout state (the published checkpoint) has its Linear weights transposed."""
    raw = read_config(model_dir)
    text = raw.get("text_config") or {}
    if text.get("model_type", "mistral") not in _TEXT_MODEL_TYPES:
        raise UserError(f"NV-Embed's text_config has model_type {text.get('model_type')!r}; embedkit runs its "
                        f"Mistral backbone ({', '.join(_TEXT_MODEL_TYPES)})", model_dir / MODEL_CONFIG_FILE)
    config = NVEmbedConfig(**{**copy.deepcopy(raw), "dtype": dtype})
    if torch_layout:
        with paddle.LazyGuard():
            linear = _linear_weights(NVEmbedModel(config))
        state = {key: value.T if key in linear else value for key, value in state.items()}
    return build(NVEmbedModel, config, model_dir, state, dtype, torch_layout=False)

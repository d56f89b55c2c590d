"""The model families embedkit runs, and what each one's PaddleNLP backbone looks like inside.

One `Architecture` per family says how the family is recognised (``model_type`` in ``config.json``, or the
PaddleNLP class named in ``architectures`` when a legacy config has no ``model_type``; never the model's path),
whether it is a causal decoder, where its layer list lives, which Linear layers LoRA adapts, and which norm runs
after the last layer. The functions below work for every entry: `layer_list`, `hidden_states` (per-layer states,
for pruning scores) and `keep_layers` / `with_layers` (the model rebuilt from a subset of its layers).

Adding a family is one entry in `ARCHITECTURES`: build a tiny model of it, read ``backbone.named_sublayers()`` for
the layer list's path and the projection names, check that ``output_hidden_states=True`` returns L+1 states, and
add the family to the table in ``tests/modeling/test_architectures.py``, which checks all of that. A family
PaddleNLP does not implement or cannot load from Hugging Face weights names the module that does in its entry's
``implementation`` (Qwen3: `embedkit.modeling.qwen3`, Mistral: `embedkit.modeling.mistral`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from embedkit.errors import UserError
from embedkit.filenames import MODEL_CONFIG_FILE
from embedkit.modeling.model_config import read_model_config


@dataclass(frozen=True)
class Architecture:
    name: str
    model_types: tuple[str, ...]  # config.json's model_type
    backbone_classes: tuple[str, ...]  # the PaddleNLP classes AutoModel builds for it
    decoder: bool  # causal self-attention: only the last position has seen the whole text
    layers: str  # dotted path of the nn.LayerList in the backbone; also its layers' state-dict key prefix
    lora_targets: tuple[str, ...]  # full-match regexes over sublayer names (paddlenlp.peft target_modules)
    final_norm: str | None = None  # applied after the last layer, so part of last_hidden_state
    # A backbone PaddleNLP cannot load (no class, or no weight conversion): the module whose from_state builds it.
    implementation: str | None = None
    # Parameters (full-match regexes over state-dict names) that LoRA leaves fully trainable, and saves with the
    # adapter: NV-Embed's latent-attention pooling block, which has no pretrained value to fall back on.
    lora_trainable: tuple[str, ...] = ()
    # A family that is one embedder (NV-Embed): its `embedkit.modeling.prompts` preset is the spec of a model dir
    # without embedkit.json, as published (pooling, prompts, EOS), rather than a guess from other files.
    preset: str | None = None

    def layer_key_prefix(self, index: int) -> str:
        return f"{self.layers}.{index}."


# BERT, ERNIE and RoBERTa attend through paddle.nn.MultiHeadAttention: its q/k/v and output projections are
# adapted, the FFN (linear1/linear2) and the pooler are not.
_MULTIHEAD_ATTENTION = (r".*\.self_attn\.(q_proj|k_proj|v_proj|out_proj)",)
# Attention and MLP projections, as the original example and FlagEmbedding adapt decoders. qkv_proj and
# gate_up_fused_proj are what PaddleNLP builds instead under fuse_attention_qkv / fuse_attention_ffn.
_FUSABLE_DECODER = (r".*\.self_attn\.(q_proj|k_proj|v_proj|qkv_proj|o_proj)",
                    r".*\.mlp\.(gate_proj|up_proj|gate_up_fused_proj|down_proj)")
_DECODER = (r".*\.self_attn\.(q_proj|k_proj|v_proj|o_proj)", r".*\.mlp\.(gate_proj|up_proj|down_proj)")

ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("BERT", ("bert",), ("BertModel",), decoder=False, layers="encoder.layers",
                 lora_targets=_MULTIHEAD_ATTENTION),
    Architecture("ERNIE", ("ernie",), ("ErnieModel",), decoder=False, layers="encoder.layers",
                 lora_targets=_MULTIHEAD_ATTENTION),
    Architecture("RoBERTa", ("roberta",), ("RobertaModel",), decoder=False, layers="encoder.layers",
                 lora_targets=_MULTIHEAD_ATTENTION),
    # PaddleNLP ports XLM-RoBERTa with Hugging Face's module layout.
    Architecture("XLM-RoBERTa", ("xlm-roberta",), ("XLMRobertaModel",), decoder=False, layers="encoder.layer",
                 lora_targets=(r".*\.attention\.self\.(query|key|value)", r".*\.attention\.output\.dense")),
    Architecture("LLaMA", ("llama",), ("LlamaModel",), decoder=True, layers="layers",
                 lora_targets=_FUSABLE_DECODER, final_norm="norm"),
    # PaddleNLP builds Mistral but cannot convert its Hugging Face weights: embedkit maps them.
    Architecture("Mistral", ("mistral",), ("MistralModel",), decoder=True, layers="layers",
                 lora_targets=_DECODER, final_norm="norm", implementation="embedkit.modeling.mistral"),
    Architecture("Qwen2", ("qwen2",), ("Qwen2Model",), decoder=True, layers="layers",
                 lora_targets=_FUSABLE_DECODER, final_norm="norm"),
    # Qwen3-Embedding's backbone. Its per-head q_norm/k_norm are RMSNorms, not Linear layers: LoRA leaves them be.
    Architecture("Qwen3", ("qwen3",), ("Qwen3Model",), decoder=True, layers="layers",
                 lora_targets=_DECODER, final_norm="norm", implementation="embedkit.modeling.qwen3"),
    # NV-Embed-v1: a Mistral without the causal mask (so not a decoder here: every token sees the whole text)
    # under ``embedding_model``, and the latent-attention pooling block under ``latent_attention_model``, which
    # LoRA trains in full. The projection regexes match the Mistral's layers only.
    Architecture("NV-Embed", ("nvembed",), ("NVEmbedModel",), decoder=False, layers="embedding_model.layers",
                 lora_targets=_DECODER, final_norm="embedding_model.norm", implementation="embedkit.modeling.nv_embed",
                 lora_trainable=(r"latent_attention_model\..*",), preset="nv-embed"),
)


def find_architecture(model_type: str | None, architectures: Sequence[str] | None) -> Architecture:
    """The entry for a config's ``model_type`` (authoritative when present) or, without one, its ``architectures``."""
    if model_type:
        found = [entry for entry in ARCHITECTURES if model_type in entry.model_types]
    else:
        found = [entry for entry in ARCHITECTURES if set(architectures or ()) & set(entry.backbone_classes)]
    if found:
        return found[0]
    known = ", ".join(f"{entry.name} ({'/'.join(entry.model_types)})" for entry in ARCHITECTURES)
    raise UserError(f"no architecture entry for model_type {model_type!r} (architectures {list(architectures or [])}); "
                    f"embedkit runs {known}")


def read_architecture(model_dir: str | Path) -> Architecture:
    """The family of the model in ``model_dir``, from its ``config.json`` alone (no weights are read)."""
    path = Path(model_dir) / MODEL_CONFIG_FILE
    config = read_model_config(model_dir)
    try:
        return find_architecture(config.get("model_type"), config.get("architectures"))
    except UserError as exc:
        raise UserError(exc.message, path) from None


def config_layer_count(config: Mapping) -> int:
    """``num_hidden_layers`` of a parsed config.json: top level, or its ``text_config`` (NV-Embed's); KeyError
    when neither has it."""
    if "num_hidden_layers" in config:
        return config["num_hidden_layers"]
    return (config.get("text_config") or {})["num_hidden_layers"]


def architecture_of(backbone) -> Architecture:
    """The family of a loaded backbone, from its config (whose class fixes ``model_type``)."""
    config = getattr(backbone, "config", None)
    return find_architecture(getattr(config, "model_type", None), [type(backbone).__name__])


def layer_list(backbone, architecture: Architecture | None = None):
    """The backbone's ``nn.LayerList`` of transformer layers, in order."""
    layers = backbone
    for attribute in (architecture or architecture_of(backbone)).layers.split("."):
        layers = getattr(layers, attribute)
    return layers


def hidden_states(backbone, input_ids, attention_mask, token_type_ids=None) -> list:
    """The L+1 hidden states [B, T, H] of a batch: the embeddings' output, then the output of each of the L layers.

    The last one is the backbone's ``last_hidden_state``: for decoders, the last layer's output after the final
    norm (PaddleNLP's and Hugging Face's ``output_hidden_states`` convention, the one the original ShortGPT scores
    were computed with), so a score between states L-1 and L includes that norm. Padded positions get states
    too; mask them out with ``attention_mask``. Runs without gradients and with dropout off, as an analysis does.
    """
    import paddle

    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        inputs["token_type_ids"] = token_type_ids
    was_training = backbone.training
    backbone.eval()
    try:
        with paddle.no_grad():
            outputs = backbone(**inputs, output_hidden_states=True, return_dict=True)
    finally:
        if was_training:
            backbone.train()
    states = list(outputs.hidden_states)
    expected = len(layer_list(backbone)) + 1
    if len(states) != expected:  # e.g. BERT's GPU-only fused layers leave out the embeddings' output
        raise RuntimeError(f"{type(backbone).__name__} returned {len(states)} hidden states, expected {expected}")
    return states


def keep_layers(state_dict: Mapping, config, keep: Sequence[int]):
    """(config, state dict) of the model made of layers ``keep`` (0-based) of a PaddleNLP backbone's.

    The kept layers stay in their order and are renumbered 0..len(keep)-1; ``num_hidden_layers`` follows. Keys
    outside the layer list (embeddings, final norm, pooler) are kept as they are; tensors are shared, not copied.
    ``state_dict`` is in the backbone's own key layout (``backbone.state_dict()``, or what ``save_pretrained``
    wrote), not a Hugging Face checkpoint's.
    """
    architecture = find_architecture(config.model_type, config.architectures)
    kept = _checked_keep(keep, config.num_hidden_layers)
    new_index = {old: new for new, old in enumerate(kept)}
    layer_key = re.compile(rf"{re.escape(architecture.layers)}\.(\d+)\.(.+)")
    renumbered, found = {}, set()
    for key, value in state_dict.items():
        match = layer_key.fullmatch(key)
        if match is None:
            renumbered[key] = value
            continue
        old = int(match.group(1))
        found.add(old)
        if old in new_index:
            renumbered[architecture.layer_key_prefix(new_index[old]) + match.group(2)] = value
    if found != set(range(config.num_hidden_layers)):
        raise ValueError(f"state dict has layers {sorted(found)} under {architecture.layers!r}, expected "
                         f"0..{config.num_hidden_layers - 1} (the key layout of a PaddleNLP {architecture.name} backbone)")
    new_config = copy.deepcopy(config)
    new_config.num_hidden_layers = len(kept)
    return new_config, renumbered


def with_layers(backbone, keep: Sequence[int]):
    """A new backbone of the same class made of layers ``keep`` of ``backbone``, which stays as it is.

    Save it with ``save_pretrained``; `embedkit.modeling.loading.load_backbone` loads the result.
    """
    from paddlenlp.transformers.model_utils import dtype_guard, no_init_weights

    config, state = keep_layers(backbone.state_dict(), backbone.config, keep)
    with dtype_guard(getattr(config, "dtype", None) or "float32"), no_init_weights():
        rebuilt = type(backbone)(config)
    missing, unexpected = rebuilt.set_state_dict(state)
    if missing or unexpected:
        raise RuntimeError(f"rebuilt {type(backbone).__name__} does not match its weights: missing {missing}, "
                           f"unexpected {unexpected}")
    if not backbone.training:
        rebuilt.eval()
    return rebuilt


def _checked_keep(keep: Sequence[int], num_layers: int) -> list[int]:
    kept = sorted(keep)
    if not kept:
        raise UserError(f"at least one of the model's {num_layers} layers must be kept")
    if len(set(kept)) != len(kept):
        raise UserError(f"layers to keep are listed more than once: {list(keep)}")
    outside = [index for index in kept if not 0 <= index < num_layers]
    if outside:
        raise UserError(f"layer(s) {outside} do not exist: the model has {num_layers} layers (0-{num_layers - 1})")
    return kept

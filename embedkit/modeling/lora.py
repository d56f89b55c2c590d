"""LoRA adapters on embedding backbones through ``paddlenlp.peft``.

Target modules come from the architecture's own layer names — the Linear sublayers the backbone really has —
never from substrings of the model path (the original example raised ValueError for any path it did not know,
RocketQA included). An adapter directory follows PaddleNLP's convention (``lora_config.json``,
``lora_model_state.pdparams``, the base model's ``config.json``); ``lora_config.json`` names the base model,
so `load_adapter_backbone` rebuilds the merged encoder from the directory alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from embedkit.errors import UserError

LORA_CONFIG_FILE = "lora_config.json"

# Architecture families by the leaf names of their Linear layers: when a family's marker names are present, its
# projection names are the targets. Decoder LLMs come first (their q/k/v_proj overlap paddle's MultiHeadAttention);
# they also get their MLP projections, as in the original example and FlagEmbedding.
_FAMILIES: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    (frozenset({"o_proj", "gate_proj", "up_proj", "down_proj"}),  # LLaMA, Qwen, Mistral
     frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})),
    (frozenset({"out_proj"}), frozenset({"q_proj", "k_proj", "v_proj", "out_proj"})),  # BERT/ERNIE: paddle.nn.MultiHeadAttention
    (frozenset({"query"}), frozenset({"query", "key", "value"})),  # Hugging Face style BERT attention
    (frozenset({"q_proj"}), frozenset({"q_proj", "k_proj", "v_proj"})),
)


def linear_layer_names(backbone) -> list[str]:
    from paddle import nn

    return [name for name, layer in backbone.named_sublayers() if isinstance(layer, nn.Linear)]


def default_target_modules(backbone) -> list[str]:
    """Full-match regexes (PaddleNLP's ``target_modules`` syntax) for the backbone's attention projections."""
    linear = linear_layer_names(backbone)
    leaves = {name.rsplit(".", 1)[-1] for name in linear}
    for marker, projections in _FAMILIES:
        if marker & leaves:
            return [rf".*\.{leaf}" for leaf in sorted(projections & leaves)]
    sample = ", ".join(linear[:8]) or "none"
    raise UserError(
        "cannot choose LoRA target modules: no Linear layers named like attention projections "
        f"(q_proj/k_proj/v_proj/o_proj/out_proj or query/key/value); Linear layers found: {sample}. "
        "Set lora.target_modules in the recipe"
    )


def apply_lora(backbone, r: int, alpha: int, dropout: float, target_modules: list[str] | None, base_model: str):
    """Wrap ``backbone`` in a `LoRAModel` whose only trainable parameters are the adapters."""
    from paddlenlp.peft import LoRAConfig, LoRAModel

    targets = list(target_modules) if target_modules else default_target_modules(backbone)
    linear = linear_layer_names(backbone)
    for pattern in targets:
        if not any(re.fullmatch(pattern, name) for name in linear):
            raise UserError(
                f"lora.target_modules: {pattern!r} matches no Linear layer of this model "
                f"(patterns are full-match regexes over names such as {linear[0] if linear else '?'})"
            )
    config = LoRAConfig(
        target_modules=targets, r=r, lora_alpha=alpha, lora_dropout=dropout,
        base_model_name_or_path=base_model, dtype=getattr(backbone.config, "dtype", None) or "float32",
        tensor_parallel_degree=getattr(backbone.config, "tensor_parallel_degree", -1),
    )
    return LoRAModel(backbone, config)


def is_adapter_dir(model_dir: str | Path) -> bool:
    return (Path(model_dir) / LORA_CONFIG_FILE).is_file()


def merged_backbone(lora_model):
    """The plain backbone with every adapter folded into its weights (the LoRA model is consumed)."""
    lora_model.merge()
    return lora_model.restore_original_model()


def load_adapter_backbone(adapter_dir: str | Path, dtype: str = "float32"):
    """Base model (named in ``lora_config.json``) + adapter, merged into a plain backbone."""
    from paddlenlp.peft import LoRAConfig, LoRAModel

    from embedkit.modeling.loading import load_backbone

    adapter_dir = Path(adapter_dir)
    config = LoRAConfig.from_pretrained(str(adapter_dir))
    base = config.base_model_name_or_path
    if not base or not Path(base).is_dir():
        raise UserError(f"LoRA adapter's base model {base!r} (base_model_name_or_path in {LORA_CONFIG_FILE}) is not a directory", adapter_dir)
    lora_model = LoRAModel.from_pretrained(load_backbone(base, dtype=dtype), str(adapter_dir), lora_config=config)
    return merged_backbone(lora_model)

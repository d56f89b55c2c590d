"""LoRA adapters on embedding backbones through ``paddlenlp.peft``.

Target modules are the architecture registry's (`embedkit.modeling.architectures`) for the backbone's family,
recognised from its config, never from substrings of the model path (the original example raised ValueError for
any path it did not know, RocketQA included). An adapter directory follows PaddleNLP's convention
(``lora_config.json``, ``lora_model_state.pdparams``, the base model's ``config.json``); ``lora_config.json`` names
the base model, so `embedkit.modeling.loading.load_backbone` rebuilds the merged encoder from the directory alone.
A family whose registry entry names ``lora_trainable`` parameters (NV-Embed's latent-attention block) trains
those in full beside the adapters; PaddleNLP's ``trainable_modules`` saves them in the adapter file and loads them
back with it.
"""

from __future__ import annotations

import re
from pathlib import Path

from embedkit.errors import UserError
from embedkit.filenames import LORA_CONFIG_FILE
from embedkit.modeling.architectures import architecture_of


def linear_layer_names(backbone) -> list[str]:
    from paddle import nn

    return [name for name, layer in backbone.named_sublayers() if isinstance(layer, nn.Linear)]


def default_target_modules(backbone) -> list[str]:
    """Full-match regexes (PaddleNLP's ``target_modules`` syntax) for the projections of the backbone's family."""
    try:
        return list(architecture_of(backbone).lora_targets)
    except UserError as exc:
        sample = ", ".join(linear_layer_names(backbone)[:8]) or "none"
        raise UserError(f"cannot choose LoRA target modules: {exc.message}. Linear layers found: {sample}. "
                        "Set lora.target_modules in the recipe") from None


def fully_trained(backbone) -> tuple[str, ...]:
    """Parameters LoRA leaves trainable in full for the backbone's family (NV-Embed's latent block), saved in the
    adapter file with the adapters; none for a family the registry does not know."""
    try:
        return architecture_of(backbone).lora_trainable
    except UserError:
        return ()


def apply_lora(backbone, r: int, alpha: int, dropout: float, target_modules: list[str] | None, base_model: str):
    """Wrap ``backbone`` in a `LoRAModel` whose only trainable parameters are the adapters."""
    from paddlenlp.peft import LoRAConfig, LoRAModel

    targets = list(target_modules) if target_modules else default_target_modules(backbone)
    _check_targets(backbone, targets)
    config = LoRAConfig(
        target_modules=targets, r=r, lora_alpha=alpha, lora_dropout=dropout,
        trainable_modules=list(fully_trained(backbone)) or None,
        base_model_name_or_path=base_model, dtype=getattr(backbone.config, "dtype", None) or "float32",
        tensor_parallel_degree=getattr(backbone.config, "tensor_parallel_degree", -1),
    )
    return LoRAModel(backbone, config)


def _check_targets(backbone, targets: list[str]) -> None:
    from paddle import nn

    sublayers = dict(backbone.named_sublayers())
    for pattern in targets:
        matched = [name for name in sublayers if re.fullmatch(pattern, name)]
        if not any(isinstance(sublayers[name], nn.Linear) for name in matched):
            example = next(iter(linear_layer_names(backbone)), "?")
            raise UserError(f"lora.target_modules: {pattern!r} matches no Linear layer of this model "
                            f"(patterns are full-match regexes over names such as {example})")
        # paddlenlp.peft adapts Linear layers only, and fails with a bare ValueError on anything else it matches.
        other = [name for name in matched if not isinstance(sublayers[name], nn.Linear)]
        if other:
            raise UserError(f"lora.target_modules: {pattern!r} also matches {other[0]}, which is not a Linear layer")


def is_adapter_dir(model_dir: str | Path) -> bool:
    return (Path(model_dir) / LORA_CONFIG_FILE).is_file()


def adapter_config(adapter_dir: str | Path):
    """(``LoRAConfig``, base model dir) of an adapter directory; a UserError when the base is not a directory."""
    from paddlenlp.peft import LoRAConfig

    config = LoRAConfig.from_pretrained(str(adapter_dir))
    base = config.base_model_name_or_path
    if not base or not Path(base).is_dir():
        raise UserError(f"LoRA adapter's base model {base!r} (base_model_name_or_path in {LORA_CONFIG_FILE}) "
                        "is not a directory", adapter_dir)
    return config, Path(base)


def merged_backbone(lora_model):
    """The plain backbone with every adapter folded into its weights (the LoRA model is consumed).

    PaddleNLP's restore rebuilds each adapted layer as ``nn.Linear(in, out)``, which gives bias-free projections
    (every decoder's) a zero bias that the family's model class does not have; those are removed again.
    """
    from paddlenlp.peft.lora import LoRALinear

    bias_free = [name for name, layer in lora_model.model.named_sublayers()
                 if isinstance(layer, LoRALinear) and layer.bias is None]
    lora_model.merge()
    backbone = lora_model.restore_original_model()
    layers = dict(backbone.named_sublayers())
    for name in bias_free:
        layers[name].bias = None
    return backbone

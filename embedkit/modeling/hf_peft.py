"""Hugging Face PEFT LoRA adapters (RepLLaMA's published layout), merged into their base backbone on load.

A PEFT adapter directory holds ``adapter_config.json`` (``peft_type: LORA``, ``r``, ``lora_alpha``,
``target_modules``, ``base_model_name_or_path``, ...) and ``adapter_model.safetensors`` or ``.bin``, whose keys
are the base model's module names under ``base_model.model.`` with ``.lora_A.weight`` / ``.lora_B.weight``
(an adapter name such as ``.default`` may sit between). Each adapted Linear becomes W + (alpha / r) * B @ A
(``alpha / sqrt(r)`` under ``use_rslora``), written into the Paddle weight, which is that product transposed.

The base model is, in this order: the directory the caller names, ``base_model_name_or_path`` when it is a
directory (absolute, or relative to the adapter), or the model ``embedkit download`` stores for that Hugging
Face repo (``$EMBEDKIT_HOME/models/<repo name, lower-cased>``, e.g. ``llama-2-7b-hf`` for RepLLaMA's
``meta-llama/Llama-2-7b-hf``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from embedkit import paths
from embedkit.config.validation import read_json
from embedkit.errors import UserError
from embedkit.filenames import MODEL_CONFIG_FILE, PEFT_CONFIG_FILE, PEFT_WEIGHT_FILES
from embedkit.modeling.hf_weights import read_weights

_LORA_KEY = re.compile(r"(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[^.]+)?\.weight")
_PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class PeftLora:
    directory: Path
    base: Path
    scale: float  # alpha / r (alpha / sqrt(r) under rsLoRA)
    pairs: dict[str, tuple[np.ndarray, np.ndarray]]  # module name in the base -> (A [r, in], B [out, r])


def is_peft_dir(model_dir: str | Path) -> bool:
    return (Path(model_dir) / PEFT_CONFIG_FILE).is_file()


def read_peft_lora(adapter_dir: str | Path, base_dir: Optional[str | Path] = None) -> PeftLora:
    adapter_dir = Path(adapter_dir)
    config_path = adapter_dir / PEFT_CONFIG_FILE
    config, _ = read_json(config_path)
    if not isinstance(config, dict):
        raise UserError("expected a JSON object", config_path, 1)
    _check_supported(config, config_path)
    r, alpha = config["r"], config["lora_alpha"]
    scale = alpha / (r ** 0.5 if config.get("use_rslora") else r)
    files = [adapter_dir / name for name in PEFT_WEIGHT_FILES if (adapter_dir / name).is_file()][:1]
    if not files:
        raise UserError(f"PEFT adapter without weights: expected {' or '.join(PEFT_WEIGHT_FILES)}", adapter_dir)
    return PeftLora(adapter_dir, peft_base_dir(adapter_dir, config, base_dir), scale,
                    _pairs(read_weights(files), r, files[0]))


def _check_supported(config: dict, config_path: Path) -> None:
    problems = {
        "peft_type": config.get("peft_type") not in ("LORA", None),
        "r": not isinstance(config.get("r"), int) or config["r"] < 1,
        "lora_alpha": not isinstance(config.get("lora_alpha"), (int, float)),
        "fan_in_fan_out": bool(config.get("fan_in_fan_out")),  # GPT-2 style Conv1D weights: not a LLaMA's
        "bias": config.get("bias", "none") != "none",
        "modules_to_save": bool(config.get("modules_to_save")),
        "use_dora": bool(config.get("use_dora")),
    }
    wrong = [key for key, bad in problems.items() if bad]
    if wrong:
        shown = ", ".join(f"{key}: {config.get(key)!r}" for key in wrong)
        raise UserError(f"unsupported PEFT adapter ({shown}): embedkit merges plain LoRA adapters (peft_type LORA, "
                        "integer r, numeric lora_alpha, no fan_in_fan_out, bias none, no modules_to_save, no DoRA)",
                        config_path)


def peft_base_dir(adapter_dir: Path, config: dict, base_dir: Optional[str | Path] = None) -> Path:
    named = config.get("base_model_name_or_path") or ""
    candidates = [Path(base_dir)] if base_dir is not None else []
    if named:
        candidates += [adapter_dir / Path(named).expanduser(), Path(named)]  # an absolute name stays as it is
        candidates.append(paths.home() / "models" / named.rstrip("/").rsplit("/", 1)[-1].lower())
    for candidate in candidates:
        if (candidate / MODEL_CONFIG_FILE).is_file():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates) or "nothing"
    raise UserError(f"the PEFT adapter's base model {named!r} (base_model_name_or_path in {PEFT_CONFIG_FILE}) is not "
                    f"a local model directory (tried {tried}); download it, or name the base directory explicitly",
                    adapter_dir)


def architecture_config_file(model_dir: str | Path) -> Path:
    """The config.json describing the model in ``model_dir``: its own, or a PEFT adapter's base model's (a PEFT
    dir has none of its own; RepLLaMA's has adapter files and a README only)."""
    model_dir = Path(model_dir)
    if is_peft_dir(model_dir) and not (model_dir / MODEL_CONFIG_FILE).is_file():
        config, _ = read_json(model_dir / PEFT_CONFIG_FILE)
        return peft_base_dir(model_dir, config if isinstance(config, dict) else {}) / MODEL_CONFIG_FILE
    return model_dir / MODEL_CONFIG_FILE


def _pairs(state: dict[str, np.ndarray], r: int, weights_file: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    parts: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        match = _LORA_KEY.fullmatch(key.removeprefix(_PEFT_PREFIX))
        if match is None:
            raise UserError(f"unexpected tensor {key!r} in a LoRA adapter (expected *.lora_A.weight and "
                            "*.lora_B.weight only)", weights_file)
        parts.setdefault(match["module"], {})[match["part"]] = value.astype(np.float32)
    pairs = {}
    for module, found in parts.items():
        if set(found) != {"A", "B"} or found["A"].shape[0] != r or found["B"].shape[1] != r:
            shapes = {part: list(value.shape) for part, value in found.items()}
            raise UserError(f"LoRA weights of {module} are not an A [r, in], B [out, r] pair with r {r}: {shapes}",
                            weights_file)
        pairs[module] = (found["A"], found["B"])
    if not pairs:
        raise UserError("the LoRA adapter holds no weights", weights_file)
    return pairs


def merge_peft_lora(backbone, lora: PeftLora):
    """``backbone`` (the adapter's base, loaded) with every adapted Linear's weight replaced by W + scale * B @ A."""
    import paddle

    params = dict(backbone.named_parameters())
    names = {module: _backbone_name(module, params) for module in lora.pairs}
    missing = sorted(module for module, name in names.items() if name is None)
    if missing:
        raise UserError(f"the LoRA adapter adapts modules its base model does not have: {missing[:3]} (base "
                        f"{lora.base})", lora.directory)
    with paddle.no_grad():
        for module, (a, b) in lora.pairs.items():
            weight = params[names[module]]  # Paddle's Linear weight is [in, out]: the transpose of torch's
            if weight.shape != [a.shape[1], b.shape[0]]:
                raise UserError(f"LoRA weights of {module} ({b.shape[0]}x{a.shape[1]}) do not fit the base model's "
                                f"{weight.shape[1]}x{weight.shape[0]}", lora.directory)
            merged = weight.astype("float32").numpy() + lora.scale * (a.T @ b.T)
            weight.set_value(paddle.to_tensor(merged).astype(weight.dtype))
    return backbone


def _backbone_name(module: str, params: dict) -> Optional[str]:
    """The parameter name of ``module``'s weight: adapters trained on a ``*ForCausalLM`` carry its ``model.``."""
    for name in (module, module.removeprefix("model.")):
        if f"{name}.weight" in params:
            return f"{name}.weight"
    return None

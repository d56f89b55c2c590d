"""Decoder backbones built from a config and a state dict embedkit maps itself, checked to fit exactly.

For the families PaddleNLP 3.0.0b4 cannot load from Hugging Face checkpoints: Qwen3 (no model class) and
Mistral (a model class, but ``convert_from_torch`` has no name mapping for it, so Linear weights arrive
untransposed: non-square ones are refused, square ones, q_proj and o_proj, would load silently wrong). In these
families, Hugging Face's sublayer names are PaddleNLP's, so the mapping is: drop the ``model.`` prefix of a
``*ForCausalLM`` checkpoint, drop the LM head (tied or not, an embedder does not use it), transpose the
projections (torch stores [out, in], Paddle [in, out]).
"""

from __future__ import annotations

import json
from pathlib import Path

from embedkit.errors import UserError
from embedkit.filenames import MODEL_CONFIG_FILE


def read_config(model_dir: Path) -> dict:
    return json.loads((model_dir / MODEL_CONFIG_FILE).read_text(encoding="utf-8"))


def paddle_layout(state: dict) -> dict:
    """A Hugging Face decoder state dict (numpy arrays) in the PaddleNLP backbone's layout."""
    converted = {}
    for key, value in state.items():
        name = key.removeprefix("model.")
        if name == "lm_head.weight":
            continue
        converted[name] = value.T if name.endswith("_proj.weight") else value
    return converted


def build(model_class, config, model_dir: Path, state: dict, dtype: str, torch_layout: bool):
    """``model_class(config)`` holding ``state``, which must fit it exactly: PaddleNLP's own loading only warns
    about missing or unexpected weights, and a model with some left random would embed without complaint."""
    import paddle
    from paddlenlp.transformers.model_utils import dtype_guard, no_init_weights

    try:
        with dtype_guard(dtype), no_init_weights():
            model = model_class(config)
    except UserError as exc:
        raise UserError(exc.message, model_dir / MODEL_CONFIG_FILE) from None
    converted = paddle_layout(state) if torch_layout else state
    expected = model.state_dict()
    problems = {
        "missing": sorted(set(expected) - set(converted)),
        "unexpected": sorted(set(converted) - set(expected)),
        "shape differs": sorted(k for k in set(expected) & set(converted)
                                if list(converted[k].shape) != expected[k].shape),
    }
    if any(problems.values()):
        shown = {kind: names[:5] for kind, names in problems.items() if names}
        raise UserError(f"weights do not fit a {config.model_type} model of this config.json: {shown}", model_dir)
    model.set_state_dict({k: paddle.to_tensor(v).astype(dtype) for k, v in converted.items()})
    return model

"""Mistral (bge-en-icl's and NV-Embed's backbone) from Hugging Face checkpoints: PaddleNLP's MistralModel, with
the weights mapped by `embedkit.modeling.hf_decoder`, since PaddleNLP 3.0.0b4 has no torch name mapping for it."""

from __future__ import annotations

from pathlib import Path

from embedkit.errors import UserError
from embedkit.filenames import MODEL_CONFIG_FILE
from embedkit.modeling.hf_decoder import build, read_config


def from_state(model_dir: Path, state: dict, dtype: str, torch_layout: bool):
    from paddlenlp.transformers import MistralConfig, MistralModel

    raw = read_config(model_dir)
    head_dim = raw.get("head_dim")
    if head_dim is not None and head_dim * raw["num_attention_heads"] != raw["hidden_size"]:
        # PaddleNLP's Mistral derives head_dim from hidden_size; Mistral-7B's (128) is that.
        raise UserError(f"head_dim {head_dim} is not hidden_size / num_attention_heads: PaddleNLP's Mistral cannot "
                        "build it", model_dir / MODEL_CONFIG_FILE)
    return build(MistralModel, MistralConfig(**{**raw, "dtype": dtype}), model_dir, state, dtype, torch_layout)

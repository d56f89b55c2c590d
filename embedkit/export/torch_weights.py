"""PaddleNLP backbone -> Hugging Face (torch) weights and config: PaddleNLP's own torch->Paddle mapping, inverted.

PaddleNLP converts Hugging Face checkpoints with each model class's ``_get_name_mappings(config)``: pairs of
(torch name, Paddle name) and an action, ``transpose`` for Linear weights (Paddle stores them [in, out], torch
[out, in]). Running those pairs backwards gives the torch layout, so every family PaddleNLP can import is
exported the same way, and nothing here has to know BERT's or Qwen2's key names.
"""

from __future__ import annotations

import numpy as np

from embedkit.errors import UserError

# Written by PaddleNLP into config.json, meaningless to transformers (and machine-specific for some).
_PADDLE_CONFIG_KEYS = ("paddlenlp_version", "dtype", "fuse", "use_flash_attention", "fuse_attention_qkv",
                       "fuse_attention_ffn", "tensor_parallel_degree", "tensor_parallel_output")


def torch_state_dict(backbone) -> dict[str, np.ndarray]:
    """The backbone's weights under Hugging Face's names and in torch's layout, as float32 numpy arrays."""
    paddle_state = {name: tensor.astype("float32").numpy() for name, tensor in backbone.state_dict().items()}
    try:
        mappings = type(backbone)._get_name_mappings(backbone.config)
    except NotImplementedError:
        raise UserError(f"PaddleNLP has no torch name mapping for {type(backbone).__name__}, so its weights cannot "
                        "be written in the Hugging Face layout") from None
    torch_state = {}
    for mapping in mappings:
        if mapping.target_name not in paddle_state:
            continue  # e.g. rotary inv_freq buffers, which PaddleNLP recomputes rather than stores
        value = paddle_state.pop(mapping.target_name)
        if mapping.action == "transpose":
            value = value.T
        elif mapping.action is not None:
            raise UserError(f"{type(backbone).__name__}: cannot invert PaddleNLP's {mapping.action!r} conversion of "
                            f"{mapping.source_name}")
        torch_state[mapping.source_name] = np.ascontiguousarray(value)
    if paddle_state:  # a weight left behind would be randomly initialised by transformers: refuse instead
        raise UserError(f"{type(backbone).__name__}: no Hugging Face name for {', '.join(sorted(paddle_state)[:5])}")
    return torch_state


def hf_config(backbone) -> dict:
    """config.json for transformers: PaddleNLP's config without its Paddle-only keys."""
    config = backbone.config.to_diff_dict()
    for key in _PADDLE_CONFIG_KEYS:
        config.pop(key, None)
    config["architectures"] = [type(backbone).__name__]
    config["torch_dtype"] = "float32"
    return config

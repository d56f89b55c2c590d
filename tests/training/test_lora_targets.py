"""LoRA target modules come from the layer names a model really has, never from its path."""

from __future__ import annotations

import re

import pytest
from paddle import nn

from embedkit.errors import UserError
from embedkit.modeling.lora import default_target_modules


def _model(**blocks: list[str]) -> nn.Layer:
    """A layer tree whose Linear sublayers have the given names: block name -> Linear leaf names."""
    root = nn.Layer()
    layers = nn.LayerList()
    for block_name, leaves in blocks.items():
        block = nn.Layer()
        inner = nn.Layer()
        for leaf in leaves:
            inner.add_sublayer(leaf, nn.Linear(4, 4))
        block.add_sublayer(block_name, inner)
        layers.append(block)
    root.add_sublayer("layers", layers)
    return root


def _targeted(model: nn.Layer) -> set[str]:
    patterns = default_target_modules(model)
    return {name for name, layer in model.named_sublayers()
            if isinstance(layer, nn.Linear) and any(re.fullmatch(p, name) for p in patterns)}


def test_decoder_llm_gets_attention_and_mlp_projections():
    model = _model(self_attn=["q_proj", "k_proj", "v_proj", "o_proj"], mlp=["gate_proj", "up_proj", "down_proj"])
    assert {name.rsplit(".", 1)[-1] for name in _targeted(model)} == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_paddle_multihead_attention_bert_gets_qkv_and_out_proj(tmp_path):
    from embedkit.modeling.loading import load_backbone
    from embedkit.modeling.tiny import build_tiny_bert

    bert = load_backbone(build_tiny_bert(tmp_path / "tiny", ["a few words"]))
    targeted = _targeted(bert)
    assert {name.rsplit(".", 1)[-1] for name in targeted} == {"q_proj", "k_proj", "v_proj", "out_proj"}
    assert len(targeted) == 4 * bert.config.num_hidden_layers  # not the FFN (linear1/2) nor the pooler


def test_hugging_face_style_attention_gets_query_key_value():
    model = _model(attention=["query", "key", "value"], output=["dense"])
    assert {name.rsplit(".", 1)[-1] for name in _targeted(model)} == {"query", "key", "value"}


def test_no_projection_names_is_a_user_error_listing_the_layers():
    with pytest.raises(UserError, match="lora.target_modules") as err:
        default_target_modules(_model(ffn=["fc1", "fc2"]))
    assert "layers.0.ffn.fc1" in str(err.value)


def test_target_modules_that_match_nothing_are_refused(tmp_path):
    from embedkit.modeling.loading import load_backbone
    from embedkit.modeling.lora import apply_lora
    from embedkit.modeling.tiny import build_tiny_bert

    bert = load_backbone(build_tiny_bert(tmp_path / "tiny", ["a few words"]))
    with pytest.raises(UserError, match="matches no Linear layer"):
        apply_lora(bert, 4, 8, 0.0, [r".*\.q_proj", r".*\.c_attn"], str(tmp_path / "tiny"))
    lora = apply_lora(bert, 4, 8, 0.0, [r".*\.linear1"], str(tmp_path / "tiny"))  # an explicit choice is honoured
    trainable = [n for n, p in lora.named_parameters() if not p.stop_gradient]
    assert trainable and all(".linear1.lora_" in n for n in trainable)

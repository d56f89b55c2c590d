"""LoRA target modules come from the architecture registry's entry for the model's family, never from its path."""

from __future__ import annotations

import re

import paddle
import paddlenlp.transformers as T
import pytest
from paddle import nn

from embedkit.errors import UserError
from embedkit.modeling.loading import load_backbone
from embedkit.modeling.lora import apply_lora, default_target_modules
from embedkit.modeling.tiny import build_tiny_bert

_TINY = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             max_position_embeddings=32)


def _targeted(model: nn.Layer) -> set[str]:
    patterns = default_target_modules(model)
    return {name for name, layer in model.named_sublayers()
            if isinstance(layer, nn.Linear) and any(re.fullmatch(p, name) for p in patterns)}


def _leaves(names: set[str]) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name in names}


def test_decoder_llm_gets_attention_and_mlp_projections():
    paddle.seed(0)
    assert _leaves(_targeted(T.Qwen2Model(T.Qwen2Config(**_TINY, num_key_value_heads=1)))) == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_paddle_multihead_attention_bert_gets_qkv_and_out_proj(tmp_path):
    # A path naming another family changes nothing: the config says BERT.
    bert = load_backbone(build_tiny_bert(tmp_path / "llama-7b", ["a few words"]))
    targeted = _targeted(bert)
    assert _leaves(targeted) == {"q_proj", "k_proj", "v_proj", "out_proj"}
    assert len(targeted) == 4 * bert.config.num_hidden_layers  # not the FFN (linear1/2) nor the pooler


def test_xlm_roberta_gets_query_key_value_and_the_attention_output_projection():
    # Its Hugging Face layout names the attention output and the FFN output both "dense": only the first is adapted.
    targeted = _targeted(T.XLMRobertaModel(T.XLMRobertaConfig(**_TINY)))
    assert {".".join(name.split(".")[-3:]) for name in targeted} == {
        "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}
    assert len(targeted) == 4 * _TINY["num_hidden_layers"]


def test_an_unregistered_family_is_a_user_error_naming_its_model_type_and_listing_the_layers():
    gpt = T.GPTModel(T.GPTConfig(**_TINY))  # q/k/v_proj like BERT's, but no registry entry says what to adapt
    with pytest.raises(UserError, match="lora.target_modules") as err:
        default_target_modules(gpt)
    assert "model_type 'gpt'" in str(err.value) and "decoder.layers.0.self_attn.q_proj" in str(err.value)
    lora = apply_lora(gpt, 4, 8, 0.0, [r".*\.self_attn\.q_proj"], "gpt")  # the documented way out works
    assert any(".q_proj.lora_" in n for n, p in lora.named_parameters() if not p.stop_gradient)


def test_target_modules_that_match_nothing_or_more_than_linear_layers_are_refused(tmp_path):
    bert = load_backbone(build_tiny_bert(tmp_path / "tiny", ["a few words"]))
    with pytest.raises(UserError, match="matches no Linear layer"):
        apply_lora(bert, 4, 8, 0.0, [r".*\.q_proj", r".*\.c_attn"], str(tmp_path / "tiny"))
    with pytest.raises(UserError, match=r"also matches encoder\.layers\.0\.self_attn, which is not a Linear layer"):
        apply_lora(bert, 4, 8, 0.0, [r".*\.self_attn.*"], str(tmp_path / "tiny"))
    lora = apply_lora(bert, 4, 8, 0.0, [r".*\.linear1"], str(tmp_path / "tiny"))  # an explicit choice is honoured
    trainable = [n for n, p in lora.named_parameters() if not p.stop_gradient]
    assert trainable and all(".linear1.lora_" in n for n in trainable)

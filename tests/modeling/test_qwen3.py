"""Qwen3 (Qwen3-Embedding's backbone), implemented in Paddle, against transformers' Qwen3 on the same checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from llm_checkpoints import MIXED_TEXTS, hf_token_lists, reference_last_token, save_hf_qwen3

from embedkit.modeling.architectures import architecture_of, layer_list, read_architecture
from embedkit.modeling.embedder import load_embedder
from embedkit.modeling.encode import dygraph_forward, encode_texts
from embedkit.modeling.loading import load_backbone
from embedkit.modeling.qwen3 import Qwen3Model

QUERY_PROMPT = "Instruct: Given a claim, retrieve documents that support or refute it\nQuery:"


def _hf_reference(model_dir, texts, prompt=""):
    import transformers

    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    return reference_last_token(model, hf_token_lists(model_dir, texts, prompt), model.config.pad_token_id)


def _embedkit(model_dir, texts, prompt="", **spec):
    embedder, tokenizer = load_embedder(model_dir, {"pooling": "last", "padding_side": "left", **spec})
    embedder.eval()
    return encode_texts(texts, tokenizer, dygraph_forward(embedder, "query"), max_len=512, instruction=prompt,
                        batch_size=len(texts), padding_side="left", append_eos=embedder.spec.appends_eos())


@pytest.mark.parametrize("layout", ["Qwen3Model, tied", "Qwen3ForCausalLM, untied"])
def test_embeddings_match_transformers_qwen3_on_left_padded_mixed_lengths(layout, tmp_path):
    causal_lm = layout.startswith("Qwen3ForCausalLM")
    model_dir = save_hf_qwen3(tmp_path / "qwen3", tied=not causal_lm, causal_lm=causal_lm)
    keys = set(json.loads((model_dir / "config.json").read_text())["architectures"])
    assert keys == {layout.split(",")[0]}
    for prompt in ("", QUERY_PROMPT):
        ours = _embedkit(model_dir, MIXED_TEXTS, prompt)
        reference = _hf_reference(model_dir, MIXED_TEXTS, prompt)
        assert np.abs(ours - reference).max() <= 1e-4, np.abs(ours - reference).max()
    assert np.abs(_embedkit(model_dir, MIXED_TEXTS) - _embedkit(model_dir, MIXED_TEXTS, QUERY_PROMPT)).max() > 1e-2


def test_a_qwen3_checkpoint_is_recognised_from_config_json_and_loads_as_the_paddle_qwen3(tmp_path):
    model_dir = save_hf_qwen3(tmp_path / "any-name")
    assert read_architecture(model_dir).name == "Qwen3"
    backbone = load_backbone(model_dir)
    assert isinstance(backbone, Qwen3Model) and architecture_of(backbone).name == "Qwen3"
    assert len(layer_list(backbone)) == 2
    config = backbone.config
    assert (config.num_key_value_heads, config.num_attention_heads, config.head_dim) == (2, 4, 32)
    assert backbone.layers[0].self_attn.q_proj.bias is None  # Qwen3 has no q/k/v biases


def test_a_saved_paddle_qwen3_reloads_to_the_same_embeddings(tmp_path):
    model_dir = save_hf_qwen3(tmp_path / "hf")
    embedder, tokenizer = load_embedder(model_dir, {"pooling": "last", "padding_side": "left"})
    embedder.save_pretrained(tmp_path / "saved", tokenizer)
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["model_type"] == "qwen3"
    np.testing.assert_allclose(_embedkit(tmp_path / "saved", MIXED_TEXTS), _embedkit(model_dir, MIXED_TEXTS),
                               atol=1e-6)


def test_unsupported_qwen3_options_are_refused_naming_config_json(tmp_path):
    from embedkit.errors import UserError

    model_dir = save_hf_qwen3(tmp_path / "hf")
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "rope_scaling": {"type": "yarn", "factor": 4.0}}))
    with pytest.raises(UserError, match="rope_scaling") as err:
        load_backbone(model_dir)
    assert err.value.path == str(model_dir / "config.json")


def test_weights_of_another_family_under_a_qwen3_config_are_refused_not_half_loaded(tmp_path):
    import paddlenlp.transformers as T

    from embedkit.errors import UserError

    model_dir = tmp_path / "qwen2-weights"
    T.Qwen2Model(T.Qwen2Config(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               num_key_value_heads=2, intermediate_size=64)).save_pretrained(str(model_dir),
                                                                                           safe_serialization=True)
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "model_type": "qwen3"}))
    with pytest.raises(UserError, match="weights do not fit a qwen3 model") as err:
        load_backbone(model_dir)
    assert "q_norm" in err.value.message and "q_proj.bias" in err.value.message

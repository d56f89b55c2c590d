"""RepLLaMA: a Hugging Face PEFT LoRA adapter dir in castorini/repllama-v1-7b-lora-passage's layout, merged into its
LLaMA base on load, against transformers' LlamaModel with the merge computed independently in torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from llm_checkpoints import (
    MIXED_TEXTS,
    REPLLAMA_ADAPTER_CONFIG,
    hf_token_lists,
    merged_llama,
    reference_last_token,
    save_hf_llama,
    save_peft_adapter,
)

from embedkit.errors import UserError
from embedkit.modeling.embedder import load_embedder
from embedkit.modeling.encode import dygraph_forward, encode_texts
from embedkit.modeling.loading import load_backbone, model_fingerprint
from embedkit.modeling.prompts import preset_fields

SCALE = REPLLAMA_ADAPTER_CONFIG["lora_alpha"] / REPLLAMA_ADAPTER_CONFIG["r"]


@pytest.fixture
def downloaded(embedkit_home):
    """The base where `embedkit download` puts it: the adapter names only its Hugging Face repo id."""
    return save_hf_llama(embedkit_home / "models" / "llama-2-7b-hf")


def _encode(model_dir, texts, side, **load):
    embedder, tokenizer = load_embedder(model_dir, preset_fields("repllama"), **load)
    embedder.eval()
    spec = embedder.spec
    instruction = spec.query_instruction if side == "query" else spec.passage_instruction
    return encode_texts(texts, tokenizer, dygraph_forward(embedder, side), max_len=512, instruction=instruction,
                        batch_size=len(texts), padding_side=spec.padding_side, append_eos=spec.appends_eos())


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_repllama_adapter_merges_onto_its_base_and_matches_transformers(fmt, downloaded, tmp_path):
    adapter = tmp_path / "repllama-v1-7b-lora-passage"
    pairs = save_peft_adapter(adapter, downloaded, fmt=fmt)
    assert len(pairs) == 7 * 2  # every projection of both layers
    reference_model = merged_llama(downloaded, pairs, SCALE)
    for side, prefix in (("query", "query: "), ("passage", "passage: ")):
        ours = _encode(adapter, MIXED_TEXTS, side)
        tokens = hf_token_lists(downloaded, MIXED_TEXTS, prefix)  # BOS, prefix + text, EOS
        reference = reference_last_token(reference_model, tokens, pad_id=0, side="right")
        assert np.abs(ours - reference).max() <= 1e-4, (side, np.abs(ours - reference).max())
    base_only = _encode(downloaded, MIXED_TEXTS, "query")
    assert np.abs(base_only - _encode(adapter, MIXED_TEXTS, "query")).max() > 1e-2  # the adapter did change things


def test_an_explicit_base_dir_overrides_the_one_the_adapter_names(tmp_path):
    base = save_hf_llama(tmp_path / "elsewhere" / "llama")
    adapter = tmp_path / "adapter"
    pairs = save_peft_adapter(adapter, base)
    merged = load_backbone(adapter, base_dir=base)
    expected = merged_llama(base, pairs, SCALE).state_dict()["layers.1.mlp.down_proj.weight"].numpy()
    np.testing.assert_allclose(merged.state_dict()["layers.1.mlp.down_proj.weight"].numpy().T, expected, atol=1e-6)


def test_a_missing_base_model_is_a_user_error_naming_where_it_looked(tmp_path, embedkit_home):
    base = save_hf_llama(tmp_path / "base")
    save_peft_adapter(tmp_path / "adapter", base)
    with pytest.raises(UserError, match="meta-llama/Llama-2-7b-hf") as err:
        load_backbone(tmp_path / "adapter")
    assert str(embedkit_home / "models" / "llama-2-7b-hf") in err.value.message


@pytest.mark.parametrize("change, named", [({"fan_in_fan_out": True}, "fan_in_fan_out"),
                                           ({"peft_type": "IA3"}, "peft_type"), ({"use_dora": True}, "use_dora")])
def test_adapters_embedkit_cannot_merge_exactly_are_refused_naming_the_key(change, named, downloaded, tmp_path):
    save_peft_adapter(tmp_path / "adapter", downloaded, **change)
    with pytest.raises(UserError, match=named) as err:
        load_backbone(tmp_path / "adapter")
    assert err.value.path == str(tmp_path / "adapter" / "adapter_config.json")


def test_the_adapter_weights_are_part_of_the_fingerprint(downloaded, tmp_path):
    save_peft_adapter(tmp_path / "one", downloaded, seed=1)
    save_peft_adapter(tmp_path / "two", downloaded, seed=2)
    assert model_fingerprint(tmp_path / "one") != model_fingerprint(tmp_path / "two")
    assert json.loads((tmp_path / "one" / "adapter_config.json").read_text()).keys() == REPLLAMA_ADAPTER_CONFIG.keys()

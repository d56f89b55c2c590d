"""LLARA-passage: LLaMA with its <s1>..<s16> prompt templates and last_8 pooling, against transformers' LlamaModel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from llm_checkpoints import MIXED_TEXTS, hf_token_lists, reference_states, save_hf_llama

from embedkit.modeling.embedder import load_embedder
from embedkit.modeling.encode import dygraph_forward, encode_texts
from embedkit.modeling.loading import load_tokenizer
from embedkit.modeling.prompts import LLARA_SPECIAL_TOKENS, PRESETS, preset_fields, split_template
from embedkit.modeling.tokenize import tokenize


@pytest.fixture(scope="module")
def llara(tmp_path_factory):
    return save_hf_llama(tmp_path_factory.mktemp("llara") / "LLARA-passage", extra_special=LLARA_SPECIAL_TOKENS)


def _encode(model_dir, texts, side, max_len=512, **overrides):
    embedder, tokenizer = load_embedder(model_dir, {**preset_fields("llara"), **overrides})
    embedder.eval()
    spec = embedder.spec
    instruction = spec.query_instruction if side == "query" else spec.passage_instruction
    return encode_texts(texts, tokenizer, dygraph_forward(embedder, side), max_len=max_len, instruction=instruction,
                        batch_size=len(texts), padding_side=spec.padding_side, append_eos=spec.appends_eos())


@pytest.mark.parametrize("side", ["query", "passage"])
def test_llara_embeddings_match_transformers_mean_of_the_eight_prompt_tokens(side, llara):
    import transformers

    ours = _encode(llara, MIXED_TEXTS, side)
    template = getattr(PRESETS["llara"], f"{side}_instruction")
    prefix, suffix = split_template(template)
    tokens = hf_token_lists(llara, MIXED_TEXTS, prefix, suffix, eos=False)  # BOS, '"' + text, suffix; no EOS
    model = transformers.LlamaModel.from_pretrained(llara).eval()
    hidden, _ = reference_states(model, tokens, pad_id=0, side="left")
    # Left padding puts every text's eight <sN> tokens in the batch's last eight positions (FlagEmbedding's pooling).
    reference = torch.nn.functional.normalize(hidden[:, -8:].mean(dim=1), dim=-1).numpy()
    assert np.abs(ours - reference).max() <= 1e-4, np.abs(ours - reference).max()


def test_the_eight_prompt_tokens_survive_truncation(llara):
    tokenizer = load_tokenizer(llara)
    special = tokenizer.convert_tokens_to_ids(list(LLARA_SPECIAL_TOKENS[:8]))
    features = tokenize(tokenizer, [MIXED_TEXTS[-1]], 40, PRESETS["llara"].passage_instruction)
    assert len(features[0]["input_ids"]) == 40 and features[0]["input_ids"][-8:] == special


def test_either_padding_side_pools_the_same_tokens(llara):
    """The original trained LLARA left-padded and pooled the last 8 positions as if right-padded (padding, for short
    texts); here pooling follows the mask, so the padding side cannot change what is pooled."""
    left = _encode(llara, MIXED_TEXTS, "query", padding_side="left")
    right = _encode(llara, MIXED_TEXTS, "query", padding_side="right")
    assert np.abs(left - right).max() <= 1e-5

"""bge-en-icl: Mistral, last-token pooling, queries in the <instruct>/<query>/<response> frame with optional
in-context examples, against transformers' MistralModel."""

from __future__ import annotations

import numpy as np
import pytest
from llm_checkpoints import MIXED_TEXTS, hf_token_lists, reference_last_token, save_hf_llama

from embedkit.modeling.embedder import load_embedder
from embedkit.modeling.encode import dygraph_forward, encode_texts
from embedkit.modeling.loading import load_tokenizer
from embedkit.modeling.prompts import DEFAULT_TASK, icl_instruction, preset_fields, split_template
from embedkit.modeling.tokenize import tokenize

TASK = "Given a scientific claim, retrieve documents that support or refute the claim"
EXAMPLES = [("what do cells need", "Cells need energy, which mitochondria supply."),
            ("how do vaccines work", "Vaccines train the immune system to recognise a pathogen.")]


@pytest.fixture(scope="module")
def mistral(tmp_path_factory):
    return save_hf_llama(tmp_path_factory.mktemp("icl") / "bge-en-icl", family="mistral")


def _encode(model_dir, texts, instruction, max_len=512):
    embedder, tokenizer = load_embedder(model_dir, {**preset_fields("bge-en-icl"), "query_instruction": instruction})
    embedder.eval()
    spec = embedder.spec
    return encode_texts(texts, tokenizer, dygraph_forward(embedder, "query"), max_len=max_len, instruction=instruction,
                        batch_size=len(texts), padding_side=spec.padding_side, append_eos=spec.appends_eos())


@pytest.mark.parametrize("shots", [0, 2])
def test_icl_queries_match_transformers_mistral_last_token(shots, mistral):
    import transformers

    instruction = icl_instruction(TASK, EXAMPLES[:shots])
    ours = _encode(mistral, MIXED_TEXTS, instruction)
    prefix, suffix = split_template(instruction)
    tokens = hf_token_lists(mistral, MIXED_TEXTS, prefix, suffix, eos=False)
    model = transformers.MistralModel.from_pretrained(mistral).eval()
    reference = reference_last_token(model, tokens, pad_id=0, side="left")
    assert np.abs(ours - reference).max() <= 1e-4, np.abs(ours - reference).max()


def test_the_icl_prompt_is_the_model_cards_format():
    assert icl_instruction(TASK, []) == f"<instruct>{TASK}\n<query>{{text}}\n<response>"
    assert icl_instruction(TASK, EXAMPLES[:1]) == (f"<instruct>{TASK}\n<query>{EXAMPLES[0][0]}\n<response>"
                                                   f"{EXAMPLES[0][1]}\n\n<instruct>{TASK}\n<query>{{text}}\n<response>")
    assert preset_fields("bge-en-icl")["query_instruction"] == icl_instruction(DEFAULT_TASK, [])


def test_a_long_query_is_truncated_before_the_response_marker(mistral):
    tokenizer = load_tokenizer(mistral)
    instruction = icl_instruction(TASK, [])
    marker = tokenizer("\n<response>", add_special_tokens=False)["input_ids"]
    features = tokenize(tokenizer, [MIXED_TEXTS[-1]], 48, instruction)
    assert len(features[0]["input_ids"]) == 48 and features[0]["input_ids"][-len(marker):] == marker


def test_mistral_projections_are_transposed_not_loaded_as_stored(mistral):
    """PaddleNLP's converter has no Mistral mapping: its square q_proj/o_proj would load untransposed."""
    import transformers

    from embedkit.modeling.loading import load_backbone

    ours = load_backbone(mistral).state_dict()
    theirs = transformers.MistralModel.from_pretrained(mistral).state_dict()
    for name in ("layers.0.self_attn.q_proj.weight", "layers.1.self_attn.o_proj.weight", "layers.0.mlp.up_proj.weight"):
        np.testing.assert_array_equal(ours[name].numpy(), theirs[name].numpy().T)

"""The LLM embedder layouts through the commands: a RepLLaMA-style PEFT adapter dir evaluates and encodes as it
is, and the embedding identity (cache keys, fingerprints) changes with prompts and pooling."""

from __future__ import annotations

import json

import numpy as np
from llm_checkpoints import DEMO_DATA, MIXED_TEXTS

from embedkit.inference import Encoder
from embedkit.inference.identity import EmbeddingIdentity
from embedkit.modeling.hf_peft import architecture_config_file
from embedkit.modeling.limits import model_limits
from embedkit.modeling.spec import EmbedderSpec
from embedkit.modeling.tiny import build_tiny_repllama


def test_a_peft_adapter_dir_evaluates_and_encodes_from_the_command_line(run_cli, tmp_path):
    adapter = build_tiny_repllama(tmp_path / "tiny", MIXED_TEXTS)
    result = run_cli("eval", adapter, "--data", DEMO_DATA, "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    # A LLaMA: exported (embedkit.inference.traceable), so `auto` runs it on OpenVINO.
    assert payload["engine"] == "openvino" and 0.0 <= payload["datasets"][0]["metrics"]["ndcg_at_10"] <= 1.0

    encoder = Encoder.from_model_dir(adapter, engine="paddle", device="cpu")
    assert encoder.spec.query_instruction == "query: " and encoder.spec.pooling == "last"
    queries, passages = encoder.encode_queries(MIXED_TEXTS[:3]), encoder.encode_passages(MIXED_TEXTS[:3])
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    assert np.abs(queries - passages).max() > 1e-3  # "query: " and "passage: " make them differ


def test_a_peft_adapter_dir_is_described_by_its_base_models_config(tmp_path):
    adapter = build_tiny_repllama(tmp_path / "tiny", MIXED_TEXTS)
    assert architecture_config_file(adapter) == tmp_path / "tiny" / "base" / "config.json"
    assert model_limits(adapter).max_sequence_length == 1024


def test_the_identity_covers_prompt_templates_and_every_pooling():
    def digest(**fields):
        return EmbeddingIdentity.of({"shared": "w"}, EmbedderSpec(**fields), "paddle", "fp32").digest

    template = '"{text}", summarize the above passage within eight words: <s1><s2><s3><s4><s5><s6><s7><s8>'
    assert digest(passage_instruction=template) != digest(passage_instruction=template.replace("<s8>", "<s9>"))
    assert len({digest(pooling=p) for p in ("cls", "mean", "last", "last_8")}) == 4

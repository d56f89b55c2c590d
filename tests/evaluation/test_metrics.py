"""embedkit's retrieval metrics equal MTEB 2.26's evaluator functions and pytrec_eval on the same run file."""

from __future__ import annotations

import math
import random

import pytest

from embedkit.evaluation.metrics import HEADLINE, K_VALUES, ndcg_at_10_by_query, reciprocal_ranks, score_run
from embedkit.retrieval.runs import write_trec


def read_trec(path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, {})[doc] = float(score)
    return run


def tied_graded_case(seed: int = 7):
    """40 queries over 300 docs; scores on a coarse grid (many ties, also across the relevant/irrelevant line),
    graded qrels 0-3, some queries whose only judgments are 0."""
    rng = random.Random(seed)
    docs = [f"doc{i:03d}" for i in range(300)]
    qrels, run = {}, {}
    for q in range(40):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 6))
        qrels[qid] = {d: rng.choice([0, 1, 2, 3]) if q % 9 else 0 for d in judged}
        retrieved = rng.sample(docs, 120) + judged[: rng.randint(0, len(judged))]
        run[qid] = {d: rng.choice([0.25, 0.5, 0.5, 0.75, 0.8125, 1.0]) for d in retrieved}
    return qrels, run


def test_equals_mteb_and_pytrec_eval_on_run_file_with_ties_and_graded_qrels(tmp_path):
    import pytrec_eval
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores, make_score_dict

    qrels, in_memory = tied_graded_case()
    path = tmp_path / "run.trec"
    write_trec(path, in_memory)
    from_file = read_trec(path)
    assert from_file == in_memory  # the run file round-trips scores exactly
    # Insertion order must not matter: shuffle each query's documents so only the tie-breaking rule decides.
    rng = random.Random(1)
    run = {q: dict(rng.sample(list(docs.items()), len(docs))) for q, docs in from_file.items()}

    ours = score_run(qrels, run)

    mteb = calculate_retrieval_scores(run, qrels, list(K_VALUES))
    mteb_scores = make_score_dict(ndcg=mteb.ndcg, _map=mteb.map, recall=mteb.recall, precision=mteb.precision,
                                  mrr=mteb.mrr, naucs={}, naucs_mrr={}, hit_rate=mteb.hit_rate, task_scores={})
    for key in HEADLINE:
        # MTEB rounds the pytrec_eval means to 5 decimals before reporting; MRR it leaves unrounded.
        expected = mteb_scores[key]
        got = ours[key] if key.startswith("mrr") else round(ours[key], 5)
        assert got == pytest.approx(expected, abs=1e-6), key
    # ...and before that rounding, per query, MTEB's numbers are pytrec_eval's: compare the unrounded means.
    n = len(mteb.all_scores)
    assert ours["ndcg_at_10"] == pytest.approx(sum(s["ndcg_cut_10"] for s in mteb.all_scores.values()) / n, abs=1e-9)

    measures = {"ndcg_cut.1,3,5,10,100", "map_cut.10,100", "recall.1,5,10,100,1000", "P.1,10", "recip_rank"}
    trec = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    mean = {m: sum(v[m] for v in trec.values()) / len(trec) for m in next(iter(trec.values()))}
    pairs = {"ndcg_at_1": "ndcg_cut_1", "ndcg_at_3": "ndcg_cut_3", "ndcg_at_5": "ndcg_cut_5",
             "ndcg_at_10": "ndcg_cut_10", "ndcg_at_100": "ndcg_cut_100", "map_at_10": "map_cut_10",
             "map_at_100": "map_cut_100", "recall_at_1": "recall_1", "recall_at_5": "recall_5",
             "recall_at_10": "recall_10", "recall_at_100": "recall_100", "recall_at_1000": "recall_1000",
             "precision_at_1": "P_1", "precision_at_10": "P_10",
             # MRR over the whole ranking is trec_eval's recip_rank, ties ranked the same way.
             "mrr_at_1000": "recip_rank"}
    for ours_key, trec_key in pairs.items():
        assert ours[ours_key] == pytest.approx(mean[trec_key], abs=1e-6), ours_key


def test_mrr_breaks_ties_by_doc_id_descending():
    # All three documents tie; pytrec_eval (and MTEB since #5092) rank c, b, a.
    docs = {"a": 0.5, "b": 0.5, "c": 0.5}
    assert reciprocal_ranks({"b": 1}, docs, (1, 10))["mrr_at_10"] == pytest.approx(1 / 2)
    assert reciprocal_ranks({"a": 1}, docs, (1, 10)) == {"mrr_at_1": 0.0, "mrr_at_10": pytest.approx(1 / 3)}
    # A graded judgment of 0 is not relevant.
    assert reciprocal_ranks({"c": 0, "a": 2}, docs, (10,))["mrr_at_10"] == pytest.approx(1 / 3)


def test_graded_relevance_changes_ndcg_but_not_recall():
    run = {"q": {"x": 0.9, "y": 0.8}}
    high_first = score_run({"q": {"x": 3, "y": 1}}, run)
    low_first = score_run({"q": {"x": 1, "y": 3}}, run)
    assert high_first["ndcg_at_10"] == pytest.approx(1.0)
    assert low_first["ndcg_at_10"] < 0.9
    assert high_first["recall_at_10"] == low_first["recall_at_10"] == 1.0


def test_ndcg_at_10_by_query_holds_each_query_and_averages_to_the_run_score():
    qrels = {"hit": {"x": 1}, "second": {"y": 1}, "miss": {"z": 1}}
    run = {"hit": {"x": 0.9, "y": 0.1}, "second": {"x": 0.9, "y": 0.8}, "miss": {"x": 0.9}}
    by_query = ndcg_at_10_by_query(qrels, run)
    assert by_query == {"hit": pytest.approx(1.0), "second": pytest.approx(1 / math.log2(3)), "miss": 0.0}
    assert sum(by_query.values()) / 3 == pytest.approx(score_run(qrels, run)["ndcg_at_10"])

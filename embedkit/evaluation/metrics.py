"""Retrieval metrics computed exactly as MTEB 2.x computes them.

NDCG, MAP, Recall, Precision and hit rate come from pytrec_eval (trec_eval's definitions, graded qrels);
MRR is MTEB's own loop, which ranks ties by document id descending the way pytrec_eval does (mteb #5092).
Means are over the queries pytrec_eval evaluates, as in ``mteb/_evaluators/retrieval_metrics.py``; unlike
MTEB they are not rounded to 5 decimals, so results keep full precision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from embedkit.retrieval.runs import Run

Qrels = Mapping[str, Mapping[str, int]]

# MTEB's AbsTaskRetrieval.k_values.
K_VALUES: tuple[int, ...] = (1, 3, 5, 10, 20, 100, 1000)
MAIN_SCORE = "ndcg_at_10"
# The metrics shown in tables; results.json and --json carry every metric at every k.
HEADLINE = (
    "ndcg_at_1", "ndcg_at_3", "ndcg_at_5", "ndcg_at_10", "ndcg_at_100",
    "mrr_at_10", "mrr_at_100",
    "recall_at_1", "recall_at_5", "recall_at_10", "recall_at_100", "recall_at_1000",
    "map_at_10", "map_at_100",
    "precision_at_1", "precision_at_10",
)  # fmt: skip

# pytrec_eval measure -> MTEB key prefix.
_TREC_MEASURES = {"ndcg_cut": "ndcg_at", "map_cut": "map_at", "recall": "recall_at", "P": "precision_at", "success": "hit_rate_at"}


def per_query_scores(qrels: Qrels, run: Run, k_values: Sequence[int] = K_VALUES) -> dict[str, dict[str, float]]:
    """Every metric for every query pytrec_eval evaluates (queries in both qrels and run), keyed as MTEB names them."""
    import pytrec_eval

    ks = ",".join(str(k) for k in k_values)
    evaluator = pytrec_eval.RelevanceEvaluator(
        {q: dict(docs) for q, docs in qrels.items()}, {f"{measure}.{ks}" for measure in _TREC_MEASURES}
    )
    trec = evaluator.evaluate({q: dict(docs) for q, docs in run.items()})
    scores = {}
    for qid, values in trec.items():
        row = {f"{prefix}_{k}": values[f"{measure}_{k}"] for measure, prefix in _TREC_MEASURES.items() for k in k_values}
        row.update(reciprocal_ranks(qrels[qid], run[qid], k_values))
        scores[qid] = row
    return scores


def reciprocal_ranks(relevance: Mapping[str, int], docs: Mapping[str, float], k_values: Sequence[int]) -> dict[str, float]:
    """MRR@k for one query as MTEB's ``mrr`` computes it: rank by (score, doc id) descending, relevant means > 0."""
    relevant = {doc for doc, grade in relevance.items() if grade > 0}
    ranked = sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)[: max(k_values)]
    first = next((rank for rank, (doc, _) in enumerate(ranked, start=1) if doc in relevant), None)
    return {f"mrr_at_{k}": (1.0 / first if first is not None and first <= k else 0.0) for k in k_values}


def mean_scores(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    if not per_query:
        return {}
    keys = next(iter(per_query.values())).keys()
    return {key: sum(row[key] for row in per_query.values()) / len(per_query) for key in keys}


def score_run(qrels: Qrels, run: Run, k_values: Sequence[int] = K_VALUES) -> dict[str, float]:
    """Mean of every metric over the evaluated queries (MTEB's keys: ``ndcg_at_10``, ``mrr_at_10``, ...)."""
    return mean_scores(per_query_scores(qrels, run, k_values))


def ndcg_at_10_by_query(qrels: Qrels, run: Run) -> dict[str, float]:
    """NDCG@10 of each evaluated query: what a paired comparison of two runs on the same queries is made of."""
    return {query: row["ndcg_at_10"] for query, row in per_query_scores(qrels, run, (10,)).items()}


def mean_over_datasets(results: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Unweighted mean per metric across datasets (each dataset counts once, as in MTEB averages)."""
    if not results:
        return {}
    keys = [k for k in results[0] if all(k in r for r in results)]
    return {k: sum(r[k] for r in results) / len(results) for k in keys}

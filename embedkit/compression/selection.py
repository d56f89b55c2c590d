"""Which layers to remove: the N lowest scores (ShortGPT), greedy by retrieval quality, or a list given."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from embedkit.data import RetrievalData
from embedkit.errors import UserError


def by_score(scores: Sequence[float]) -> list[int]:
    """Layer indices from the lowest score up (ties: the earlier layer first)."""
    return sorted(range(len(scores)), key=lambda i: (scores[i], i))


def lowest(scores: Sequence[float], n: int) -> list[int]:
    """ShortGPT's choice: the ``n`` layers with the lowest scores."""
    return sorted(by_score(scores)[:n])


def explicit(layers: Sequence[int], num_layers: int) -> list[int]:
    """``--layers`` checked against the model: 0-based, distinct, leaving at least one layer."""
    chosen = sorted(layers)
    if len(set(chosen)) != len(chosen):
        raise UserError(f"--layers lists a layer more than once: {','.join(map(str, layers))}")
    outside = [i for i in chosen if not 0 <= i < num_layers]
    if outside:
        raise UserError(f"--layers: layer(s) {outside} do not exist: the model has {num_layers} layers "
                        f"(0-{num_layers - 1})")
    if len(chosen) >= num_layers:
        raise UserError(f"--layers would remove all {num_layers} layers: keep at least one")
    return chosen


# How many standard errors of the paired per-query difference make one trial better than another: 1.96 is a
# two-sided 95 % normal interval. Measured on SciFact (MiniLM, 809 train claims), one removal's trials lay within
# one standard error of each other while train and test disagreed on their order (benchmarks/README.md, "Layer
# pruning"): a margin the select split cannot resolve should not outvote the layer scores.
DEFAULT_SELECT_Z = 1.96

QueryScores = Mapping[str, float]  # query id -> NDCG@10 of one trial


@dataclass
class Round:
    """One greedy round: NDCG@10 with each candidate removed (on top of the earlier rounds' choices).

    ``best`` has the highest mean; ``tied`` are the candidates the select split cannot tell from it (``best``
    included), ``chosen`` the lowest-scoring layer among them; ``standard_errors`` of each candidate's paired
    per-query difference from ``best``.
    """

    trials: dict[int, float]
    chosen: int
    best: int
    tied: list[int]
    standard_errors: dict[int, float]
    queries: int
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"chosen": self.chosen, "best": self.best, "tied": self.tied, "queries": self.queries,
                "ndcg_at_10": {str(k): v for k, v in self.trials.items()},
                "standard_error": {str(k): v for k, v in self.standard_errors.items()}, "seconds": self.seconds}


@dataclass
class Greedy:
    removed: list[int]
    rounds: list[Round] = field(default_factory=list)


def paired_standard_error(a: QueryScores, b: QueryScores) -> float:
    """Standard error of mean(a - b) over the queries both score (0 for fewer than two)."""
    differences = [a[q] - b[q] for q in a.keys() & b.keys()]
    n = len(differences)
    if n < 2:
        return 0.0
    mean = sum(differences) / n
    return math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1) / n)


def mean(scores: QueryScores) -> float:
    return sum(scores.values()) / len(scores) if scores else 0.0


def greedy(n: int, scores: Sequence[float], score_without: Callable[[list[int]], QueryScores],
           candidates: Optional[int] = None, z: float = DEFAULT_SELECT_Z) -> Greedy:
    """Remove ``n`` layers one round at a time, each round the one whose removal keeps NDCG@10 best.

    ``score_without(layers)`` is the per-query NDCG@10 of the model with ``layers`` removed. A candidate whose
    mean is within ``z`` standard errors of the paired difference from the best mean is tied with it; of the tied
    ones the layer with the lowest score is removed (``z=0``: the best mean, ties in it to the lower score).
    ``candidates``: try only that many of the remaining layers, the lowest-scoring ones.
    """
    result = Greedy([])
    for _ in range(n):
        started = time.perf_counter()
        pool = [i for i in by_score(scores) if i not in result.removed][:candidates]
        per_query = {layer: score_without(sorted([*result.removed, layer])) for layer in pool}
        trials = {layer: mean(values) for layer, values in per_query.items()}
        best = max(pool, key=lambda layer: trials[layer])  # max keeps the first of equals: the lower score
        errors = {layer: paired_standard_error(per_query[best], per_query[layer]) for layer in pool}
        tied = [layer for layer in pool if trials[best] - trials[layer] <= z * errors[layer]]
        chosen = tied[0]  # the pool is in score order
        result.removed.append(chosen)
        result.rounds.append(Round(trials, chosen, best, tied, errors, len(per_query[best]),
                                   time.perf_counter() - started))
    result.removed.sort()
    return result


def corpus_subset(data: RetrievalData, size: Optional[int], seed: int = 42) -> RetrievalData:
    """``data`` with its corpus cut to ``size`` documents: every judged one, then a seeded sample of the rest.

    Scores on the subset are higher than on the full corpus (fewer distractors) but rank pruning choices alike,
    at a fraction of the encoding time; None keeps the whole corpus.
    """
    if size is None or size >= len(data.corpus):
        return data
    judged = {doc_id for docs in data.qrels.values() for doc_id in docs}
    others = [doc_id for doc_id in data.corpus if doc_id not in judged]
    extra = random.Random(seed).sample(others, max(0, min(len(others), size - len(judged))))
    keep = judged | set(extra)
    corpus = {doc_id: doc for doc_id, doc in data.corpus.items() if doc_id in keep}
    return RetrievalData(corpus, data.queries, data.qrels, data.split, data.source, data.format)

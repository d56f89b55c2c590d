"""Which layers to remove: the N lowest scores (ShortGPT), greedy by retrieval quality, or a list given."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
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


@dataclass
class Round:
    """One greedy round: NDCG@10 with each candidate removed (on top of the earlier rounds' choices)."""

    trials: dict[int, float]
    chosen: int
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"chosen": self.chosen, "ndcg_at_10": {str(k): v for k, v in self.trials.items()},
                "seconds": self.seconds}


@dataclass
class Greedy:
    removed: list[int]
    rounds: list[Round] = field(default_factory=list)


def greedy(n: int, scores: Sequence[float], score_without: Callable[[list[int]], float],
           candidates: Optional[int] = None) -> Greedy:
    """Remove ``n`` layers one round at a time, each round the one whose removal keeps the best NDCG@10.

    ``score_without(layers)`` is NDCG@10 of the model with ``layers`` removed. ``candidates``: try only that many
    of the remaining layers, the lowest-scoring ones (ties in NDCG@10 also go to the lower score).
    """
    result = Greedy([])
    for _ in range(n):
        started = time.perf_counter()
        pool = [i for i in by_score(scores) if i not in result.removed][:candidates]
        trials = {layer: score_without(sorted([*result.removed, layer])) for layer in pool}
        chosen = max(pool, key=lambda layer: trials[layer])  # max keeps the first of equals: the lower score
        result.removed.append(chosen)
        result.rounds.append(Round(trials, chosen, time.perf_counter() - started))
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

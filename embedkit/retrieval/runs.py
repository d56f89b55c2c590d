"""Runs: the ranked documents per query that search produces, metrics read, and TREC run files hold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from embedkit.fsutil import atomic_path

Run = dict[str, dict[str, float]]


def build_run(query_ids: Sequence[str], doc_ids: Sequence[str], scores: np.ndarray, indices: np.ndarray,
              drop_identical_ids: bool = False) -> Run:
    """{query id: {doc id: score}} from search output ([Q, k] scores and corpus row indices, -1 = no hit).

    ``drop_identical_ids`` removes a query's own id from its results after the top-k cut, which is what
    MTEB does for tasks with ``ignore_identical_ids`` (ArguAna, Quora, MSMARCO...): such a query keeps k-1 hits.
    """
    run: Run = {}
    for row, qid in enumerate(query_ids):
        hits = {}
        for idx, score in zip(indices[row].tolist(), scores[row].tolist(), strict=True):
            if idx < 0:
                continue
            doc = doc_ids[idx]
            if drop_identical_ids and doc == qid:
                continue
            hits[doc] = score
        run[qid] = hits
    return run


def ranked(docs: Mapping[str, float]) -> list[tuple[str, float]]:
    """Documents best first, ties by doc id descending: the order pytrec_eval and MTEB's MRR use."""
    return sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)


def write_trec(path: str | Path, run: Mapping[str, Mapping[str, float]], run_name: str = "embedkit", depth: int = 1000) -> None:
    """TREC run file ``qid Q0 docid rank score run_name``, ``depth`` lines per query at most.

    Scores are written with 9 significant digits, which round-trips float32 exactly, so re-scoring the file
    (trec_eval, pytrec_eval, MTEB) ranks ties the same way as the in-memory run.
    """
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as out:
        for qid, docs in run.items():
            for rank, (doc, score) in enumerate(ranked(docs)[:depth], start=1):
                out.write(f"{qid} Q0 {doc} {rank} {score:.9g} {run_name}\n")


"""faiss search: exact results equal brute force, sharding changes nothing, approximate indexes find the neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from embedkit.errors import UserError
from embedkit.evaluation.matryoshka import truncation
from embedkit.retrieval.runs import build_run
from embedkit.retrieval.search import SearchSettings, search


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def vectors():
    return unit_rows(37, 24, 0), unit_rows(1500, 24, 1)


def brute_force(queries, corpus, k):
    scores = queries @ corpus.T
    idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, idx, axis=1), idx


def test_flat_equals_brute_force(vectors):
    queries, corpus = vectors
    scores, ids = search(queries, corpus, top_k=50)
    want_scores, want_ids = brute_force(queries, corpus, 50)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert (ids == want_ids).mean() > 0.99  # only exact float ties may swap


def test_sharded_flat_equals_single_index(vectors):
    queries, corpus = vectors
    progress = []
    whole = search(queries, corpus, top_k=100)
    sharded = search(queries, corpus, top_k=100, settings=SearchSettings(shard_size=128, query_block=10),
                     on_progress=progress.append)
    np.testing.assert_allclose(sharded[0], whole[0], atol=1e-6)
    assert (sharded[1] == whole[1]).all()
    assert sum(progress) == len(queries) * 12  # 12 shards of <=128 rows, every query searched in each


def test_k_larger_than_corpus_returns_every_document(vectors):
    queries, corpus = vectors
    scores, ids = search(queries, corpus[:7], top_k=1000)
    assert ids.shape == (len(queries), 7)
    assert sorted(ids[0].tolist()) == list(range(7))


def clustered_rows(n: int, dim: int, seed: int, clusters: int = 30) -> np.ndarray:
    """Points around a few centres, as real embeddings are (uniform random data is IVF's worst case)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_approximate_indexes_find_most_exact_neighbours(index):
    queries, corpus = clustered_rows(37, 24, 0), clustered_rows(1500, 24, 1)
    _, exact = search(queries, corpus, top_k=10)
    _, approx = search(queries, corpus, top_k=10, settings=SearchSettings(index=index, nprobe=8))
    overlap = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx.tolist(), exact.tolist(), strict=True)])
    assert overlap > 0.9


def test_unknown_index_is_a_user_error(vectors):
    with pytest.raises(UserError, match="unknown index 'annoy'"):
        search(*vectors, top_k=5, settings=SearchSettings(index="annoy"))


def test_transform_truncates_and_renormalises_per_shard(vectors):
    queries, corpus = vectors
    cut = truncation(8, normalized=True)
    scores, ids = search(queries, corpus, top_k=20, settings=SearchSettings(shard_size=100), transform=cut)
    want_scores, _ = brute_force(cut(queries), cut(corpus), 20)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert np.allclose(np.linalg.norm(cut(corpus), axis=1), 1.0, atol=1e-5)


def test_build_run_drops_identical_ids_after_the_cut_and_skips_missing_hits():
    scores = np.array([[0.9, 0.8, 0.1]], dtype=np.float32)
    ids = np.array([[1, 0, -1]])
    doc_ids = ["a", "q1"]
    assert build_run(["q1"], doc_ids, scores, ids) == {"q1": {"q1": pytest.approx(0.9), "a": pytest.approx(0.8)}}
    assert build_run(["q1"], doc_ids, scores, ids, drop_identical_ids=True) == {"q1": {"a": pytest.approx(0.8)}}

"""Quantized indexes: rankings close to exact search, bytes as the dtype implies, rescoring, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from eval_support import DEMO_DATA, WordHashEncoder

from embedkit.errors import UserError
from embedkit.evaluation.matryoshka import truncation
from embedkit.evaluation.options import EvalOptions
from embedkit.evaluation.pipeline import evaluate_encoder
from embedkit.retrieval.quantized_index import Int8Ranges
from embedkit.retrieval.search import SearchSettings, search, search_with_stats

DIM, DOCS = 128, 3000


def clustered(n: int, dim: int, seed: int, clusters: int = 40, noise: float = 0.5) -> np.ndarray:
    """Unit rows around shared centres, so neighbours are close and sign bits alone confuse them."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    queries, corpus = clustered(60, DIM, 0), clustered(DOCS, DIM, 1)
    _, exact = search(queries, corpus, top_k=10)
    return queries, corpus, exact


def overlap_at_10(ids: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a[:10]) & set(e)) / 10 for a, e in zip(ids.tolist(), exact.tolist(), strict=True)]))


def quantized(queries, corpus, dtype, rescore=None, top_k=1000, **settings):
    return search_with_stats(queries, corpus, top_k, SearchSettings(dtype=dtype, rescore=rescore, **settings))


@pytest.mark.parametrize(("dtype", "least"), [("float16", 0.99), ("int8", 0.95)])
def test_scalar_quantized_rankings_follow_exact_search(data, dtype, least):
    queries, corpus, exact = data
    scores, ids, _ = quantized(queries, corpus, dtype)
    assert overlap_at_10(ids, exact) >= least
    # Scores stay inner products: the float query against decoded documents.
    np.testing.assert_allclose(scores[:, 0], np.einsum("qd,qd->q", queries, corpus[ids[:, 0]]), atol=0.02)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_binary_alone_loses_neighbours_that_int8_rescoring_recovers(data):
    queries, corpus, exact = data
    binary_scores, binary, _ = quantized(queries, corpus, "binary")
    _, rescored, _ = quantized(queries, corpus, "binary", rescore=100)
    assert overlap_at_10(binary, exact) < 0.6
    assert overlap_at_10(rescored, exact) >= 0.95
    # The binary score is the ±1 sign vectors' inner product over d: 1 - 2·hamming/d.
    signs = np.where(queries > 0, 1.0, -1.0) @ np.where(corpus[binary[:, 0]] > 0, 1.0, -1.0).T / DIM
    np.testing.assert_allclose(binary_scores[:, 0], np.diag(signs), atol=1e-6)


@pytest.mark.parametrize(("dtype", "per_value"), [("float32", 4), ("float16", 2), ("int8", 1), ("binary", 1 / 8)])
def test_index_bytes_are_what_the_dtype_implies(data, dtype, per_value):
    queries, corpus, _ = data
    _, _, stats = search_with_stats(queries, corpus, 10, SearchSettings(dtype=dtype))
    assert stats.dtype == dtype and stats.index_bytes == int(per_value * DIM * DOCS)
    assert stats.rescore is None and stats.rescore_bytes is None
    if dtype != "float32":
        _, _, rescored = quantized(queries, corpus, dtype, rescore=50, top_k=10)
        assert (rescored.index_bytes, rescored.rescore, rescored.rescore_bytes) == (stats.index_bytes, 50, DIM * DOCS)


def test_rescored_run_holds_the_rescored_candidates_only(data):
    queries, corpus, _ = data
    scores, ids, _ = quantized(queries, corpus, "binary", rescore=100, top_k=1000)
    assert ids.shape == (len(queries), 100)
    deeper, _, _ = quantized(queries, corpus, "binary", rescore=500, top_k=20)
    assert deeper.shape == (len(queries), 20)
    # Re-ranked scores approximate exact inner products within the int8 bound Σ|q_j|·w_j/510.
    width = corpus.max(axis=0) - corpus.min(axis=0)
    bound = np.abs(queries) @ width / 510 + 1e-5
    exact = np.einsum("qd,qkd->qk", queries, corpus[ids])
    assert (np.abs(scores - exact) <= bound[:, None]).all()


def test_int8_codes_and_ranges_are_faiss_qt8bit_trained_on_the_whole_corpus(data):
    import faiss

    _, corpus, _ = data
    ranges = Int8Ranges.of_corpus(corpus, shard_size=700, prepare=lambda block: np.asarray(block, np.float32))
    np.testing.assert_array_equal(ranges.low, corpus.min(axis=0))
    np.testing.assert_array_equal(ranges.high, corpus.max(axis=0))
    index = faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    index.train(corpus)  # faiss's own min/max training on every row
    theirs = index.sa_encode(corpus).astype(np.int16) - 128
    ours = ranges.quantize(corpus).astype(np.int16)
    assert (ours == theirs).mean() > 0.999 and np.abs(ours - theirs).max() <= 1  # float rounding at code edges
    np.testing.assert_allclose(ranges.decode(ours.astype(np.int8)), index.sa_decode(index.sa_encode(corpus)), atol=0.02)


def test_sharded_memmap_corpus_gives_the_same_results(data, tmp_path):
    queries, corpus, _ = data
    path = tmp_path / "corpus.npy"
    np.save(path, corpus)
    mapped = np.load(path, mmap_mode="r")
    for dtype, rescore in (("int8", None), ("binary", 100), ("float16", None)):
        whole = quantized(queries, corpus, dtype, rescore)
        progress = []
        sharded = search_with_stats(queries, mapped, 1000, SearchSettings(dtype=dtype, rescore=rescore, shard_size=256,
                                                                          query_block=16), progress.append)
        np.testing.assert_array_equal(sharded[0], whole[0])
        np.testing.assert_array_equal(sharded[1], whole[1])
        assert sharded[2] == whole[2] and sum(progress) == len(queries)


def test_transform_truncates_before_quantizing(data):
    queries, corpus, _ = data
    cut = truncation(64, normalized=True)
    _, exact = search(cut(queries), cut(corpus), top_k=10)
    _, ids, stats = search_with_stats(queries, corpus, 100, SearchSettings(dtype="binary", rescore=100), transform=cut)
    assert stats.index_bytes == 64 // 8 * DOCS and stats.rescore_bytes == 64 * DOCS
    assert overlap_at_10(ids, exact) >= 0.9
    with pytest.raises(UserError, match="multiple of 8, got 60"):
        search(queries, corpus, 10, SearchSettings(dtype="binary"), transform=truncation(60, normalized=True))


@pytest.mark.parametrize(("settings", "flag", "message"), [
    (dict(dtype="int8", index="hnsw"), "--index-dtype", "use it with --index flat, not --index hnsw"),
    (dict(dtype="float16", index="ivf"), "--index-dtype", "--index flat"),
    (dict(rescore=100), "--rescore", "give --index-dtype float16, int8, binary"),
    (dict(dtype="binary", rescore=0), "--rescore", "at least 1"),
    (dict(dtype="int4"), "--index-dtype", "unknown index dtype 'int4'"),
])
def test_impossible_settings_are_user_errors_naming_the_flag(data, settings, flag, message):
    queries, corpus, _ = data
    with pytest.raises(UserError, match=message) as caught:
        search(queries, corpus, 10, SearchSettings(**settings))
    assert caught.value.path == flag


def test_rescore_shorter_than_the_metrics_is_refused_before_encoding(topic_data):
    encoder = WordHashEncoder()
    with pytest.raises(UserError, match="fewer than the 100 documents the metrics at 100") as caught:
        evaluate_encoder(encoder, topic_data, EvalOptions(search=SearchSettings(dtype="binary", rescore=99)))
    assert caught.value.path == "--rescore"
    with pytest.raises(UserError, match="fewer than the 20 documents --top-k rank"):
        evaluate_encoder(encoder, topic_data, EvalOptions(top_k=20, search=SearchSettings(dtype="binary", rescore=10)))
    with pytest.raises(UserError, match="multiple of 8, got 60"):
        evaluate_encoder(WordHashEncoder(dim=60), topic_data, EvalOptions(search=SearchSettings(dtype="binary")))
    assert encoder.calls == {"query": 0, "passage": 0}


def test_eval_records_the_index(topic_data):
    encoder = WordHashEncoder()
    exact = evaluate_encoder(encoder, topic_data)
    assert (exact.index_dtype, exact.index_bytes, exact.rescore, exact.rescore_bytes, exact.depth) == (
        "float32", 8 * 64 * 4, None, None, 8)
    binary = evaluate_encoder(encoder, topic_data, EvalOptions(search=SearchSettings(dtype="binary", rescore=100),
                                                               dims=[32]))
    assert (binary.index_dtype, binary.index_bytes, binary.rescore, binary.rescore_bytes, binary.depth) == (
        "binary", 8 * 64 // 8, 100, 8 * 64, 8)
    assert binary.metrics["mrr_at_10"] == pytest.approx(1.0)  # rescoring restores the word-overlap ranking
    assert set(binary.by_dim) == {32}
    payload = binary.to_dict()
    assert payload["index_dtype"] == "binary" and payload["rescore_bytes"] == 512


FAST = ("--engine", "paddle", "--batch-size", "64")


@pytest.mark.parametrize(("args", "named"), [
    (("--index-dtype", "int4"), "--index-dtype"),
    (("--index-dtype", "int8", "--index", "ivf"), "--index-dtype"),
    (("--rescore", "100"), "--rescore"),
    (("--index-dtype", "binary", "--rescore", "0"), "--rescore"),
    (("--index-dtype", "binary", "--rescore", "50"), "--rescore"),
    (("--index-dtype", "binary", "--dims", "12"), "--index-dtype"),
    (("--index-dtype", "float16", "--mteb", "SciFact"), "--index-dtype"),
])
def test_cli_refuses_impossible_index_settings(run_cli, tiny_model, args, named):
    result = run_cli("eval", tiny_model, "--data", DEMO_DATA, *args, *FAST)
    assert result.exit_code == 2, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr


def test_cli_eval_round_trip_with_binary_rescoring(run_cli, tiny_model, tmp_path):
    exact = run_cli("eval", tiny_model, "--data", DEMO_DATA, *FAST, "--json")
    assert exact.exit_code == 0, exact.stderr
    run = run_cli("eval", tiny_model, "--data", DEMO_DATA, *FAST, "--index-dtype", "binary", "--rescore", "100",
                  "--output", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    base, dataset = json.loads(exact.stdout)["datasets"][0], json.loads(run.stdout)["datasets"][0]
    dim = json.loads(run.stdout)["dim"]
    assert (base["index_dtype"], base["index_bytes"], base["rescore"], base["depth"]) == ("float32", 800 * dim * 4, None, 800)
    assert (dataset["index_dtype"], dataset["index_bytes"], dataset["rescore"], dataset["rescore_bytes"],
            dataset["depth"]) == ("binary", 800 * dim // 8, 100, 800 * dim, 100)
    assert dataset["timings"]["search_s"] > 0
    assert abs(dataset["metrics"]["ndcg_at_10"] - base["metrics"]["ndcg_at_10"]) < 0.05
    saved = json.loads((tmp_path / "out" / "results.json").read_text())["datasets"][0]
    assert saved["index_dtype"] == "binary" and saved["rescore_bytes"] == 800 * dim
    assert len((tmp_path / "out" / "run.trec").read_text().splitlines()) == 100 * 100

    human = run_cli("eval", tiny_model, "--data", DEMO_DATA, *FAST, "--index-dtype", "int8", "--rescore", "100")
    assert human.exit_code == 0, human.stderr
    for text in ("flat int8", "100 (int8 ", "the run holds the top 100"):
        assert text in human.stderr

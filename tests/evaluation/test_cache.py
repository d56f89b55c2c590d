"""The embedding cache: a second evaluation does not encode again; anything that changes vectors changes the key."""

from __future__ import annotations

import numpy as np
import pytest

from embedkit.evaluation.pipeline import evaluate_encoder
from embedkit.retrieval import cache as cache_module
from embedkit.retrieval.cache import EmbeddingCache
from embedkit.retrieval.embed import embed

TEXTS = ["alpha beta", "gamma delta epsilon", "zeta"]


def test_second_evaluation_reads_the_cache(word_encoder, topic_data, embedkit_home):
    cache = EmbeddingCache()
    first = evaluate_encoder(word_encoder, topic_data, cache=cache)
    encoded = dict(word_encoder.calls)
    second = evaluate_encoder(word_encoder, topic_data, cache=cache)

    assert encoded == {"query": 8, "passage": 8}
    assert word_encoder.calls == encoded  # nothing encoded the second time
    assert first.cached == {"queries": False, "corpus": False}
    assert second.cached == {"queries": True, "corpus": True}
    assert second.timings.docs_per_s is None and first.timings.docs_per_s > 0
    assert second.metrics == first.metrics
    entries = list((embedkit_home / "embeddings").iterdir())
    assert len(entries) == 2 and all((e / "embeddings.npy").is_file() and (e / "meta.json").is_file() for e in entries)
    # .npy written with allow_pickle=False semantics: a plain float32 array.
    assert np.load(entries[0] / "embeddings.npy", allow_pickle=False).dtype == np.float32


def test_without_cache_nothing_is_stored(word_encoder, topic_data, embedkit_home):
    evaluate_encoder(word_encoder, topic_data, cache=None)
    evaluate_encoder(word_encoder, topic_data, cache=None)
    assert word_encoder.calls == {"query": 16, "passage": 16}
    assert not (embedkit_home / "embeddings").exists()


@pytest.mark.parametrize("change", [
    {"query_instruction": "query: "}, {"query_max_len": 16}, {"pooling": "cls"}, {"normalized": False},
    {"padding_side": "left"},
])
def test_spec_changes_miss_the_cache(word_encoder, change):
    cache = EmbeddingCache()
    embed(word_encoder, TEXTS, "query", cache)
    word_encoder.spec = word_encoder.spec.updated(**change)
    assert not embed(word_encoder, TEXTS, "query", cache).from_cache


def test_side_texts_and_weights_are_part_of_the_key(word_encoder):
    cache = EmbeddingCache()
    embed(word_encoder, TEXTS, "query", cache)
    assert embed(word_encoder, TEXTS, "query", cache).from_cache
    assert not embed(word_encoder, TEXTS, "passage", cache).from_cache
    assert not embed(word_encoder, [*TEXTS[:2], "zeta!"], "query", cache).from_cache
    assert not embed(word_encoder, [TEXTS[1], TEXTS[0], TEXTS[2]], "query", cache).from_cache  # order matters
    word_encoder.weights = "retrained"
    assert not embed(word_encoder, TEXTS, "query", cache).from_cache


@pytest.mark.parametrize("attribute, value", [("precision", "bf16"), ("precision", "int8"), ("engine", "openvino")])
def test_vectors_of_another_precision_or_engine_are_not_reused(word_encoder, attribute, value):
    cache = EmbeddingCache()
    embed(word_encoder, TEXTS, "passage", cache)
    setattr(word_encoder, attribute, value)
    assert not embed(word_encoder, TEXTS, "passage", cache).from_cache
    assert embed(word_encoder, TEXTS, "passage", cache).from_cache  # its own entry, stored beside the fp32 one


def test_large_entries_are_memory_mapped(word_encoder, monkeypatch):
    monkeypatch.setattr(cache_module, "MMAP_THRESHOLD_BYTES", 100)
    cache = EmbeddingCache()
    fresh = embed(word_encoder, TEXTS * 10, "passage", cache)
    again = embed(word_encoder, TEXTS * 10, "passage", cache)
    assert isinstance(again.vectors, np.memmap) and again.from_cache
    np.testing.assert_array_equal(np.asarray(again.vectors), np.asarray(fresh.vectors))


def test_chunked_encoding_keeps_row_order(word_encoder):
    whole = embed(word_encoder, TEXTS * 5, "passage", None).vectors
    chunked = embed(word_encoder, TEXTS * 5, "passage", EmbeddingCache(), chunk=4).vectors
    np.testing.assert_array_equal(np.asarray(chunked), whole)


def test_an_interrupted_encoding_leaves_no_entry(word_encoder, embedkit_home):
    def broken(texts, on_batch=None):
        raise KeyboardInterrupt

    word_encoder.encode_passages = broken
    with pytest.raises(KeyboardInterrupt):
        embed(word_encoder, TEXTS, "passage", EmbeddingCache())
    assert list((embedkit_home / "embeddings").iterdir()) == []


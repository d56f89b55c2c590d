"""Encode one side (queries or passages) of a dataset through the embedding cache.

The encoder sorts each call's texts by length and restores their order; here the texts are fed in chunks so a
large corpus never needs all its token ids or all its vectors in memory at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from embedkit.evaluation.cache import EmbeddingCache, cache_key, texts_digest

Side = Literal["query", "passage"]
CHUNK_TEXTS = 50_000


@dataclass
class Embedded:
    vectors: np.ndarray
    seconds: float
    from_cache: bool

    @property
    def per_second(self) -> Optional[float]:
        """Texts encoded per second (None when the vectors came from the cache)."""
        if self.from_cache or self.seconds <= 0:
            return None
        return self.vectors.shape[0] / self.seconds


def side_settings(encoder, side: Side) -> dict:
    """Everything besides weights and texts that changes this side's vectors."""
    spec = encoder.spec
    query = side == "query"
    return {
        "side": side,
        "instruction": spec.query_instruction if query else spec.passage_instruction,
        "max_len": spec.query_max_len if query else spec.passage_max_len,
        "pooling": spec.pooling,
        "normalized": spec.normalized,
        "padding_side": spec.padding_side,
    }


def embed(encoder, texts: Sequence[str], side: Side, cache: Optional[EmbeddingCache] = None,
          on_batch: Optional[Callable[[int], None]] = None, chunk: int = CHUNK_TEXTS) -> Embedded:
    """Vectors [N, dim] float32 for ``texts`` (rows in input order), from the cache when an entry exists."""
    start = time.perf_counter()
    key = None
    if cache is not None:
        # No engine in the key: every engine gives the same embeddings within 1e-4 (embedkit.inference).
        key = cache_key(model=encoder.fingerprint, texts=texts_digest(texts), **side_settings(encoder, side))
        cached = cache.load(key)
        if cached is not None:
            if on_batch is not None:
                on_batch(len(texts))
            return Embedded(cached, time.perf_counter() - start, from_cache=True)
    encode = encoder.encode_queries if side == "query" else encoder.encode_passages

    def fill(out: np.ndarray) -> None:
        for first in range(0, len(texts), chunk):
            out[first:first + chunk] = encode(list(texts[first:first + chunk]), on_batch=on_batch)

    shape = (len(texts), encoder.dim)
    if key is None:
        vectors = np.empty(shape, dtype=np.float32)
        fill(vectors)
    else:
        meta = {"model": encoder.fingerprint, "engine": encoder.engine, **side_settings(encoder, side)}
        vectors = cache.store(key, shape, fill, meta)
    return Embedded(vectors, time.perf_counter() - start, from_cache=False)

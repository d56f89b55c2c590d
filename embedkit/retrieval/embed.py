"""Encode one side (queries or passages) of a dataset through the embedding cache.

The encoder sorts each call's texts by length and restores their order; here the texts are fed in chunks so a
large corpus never needs all its token ids or all its vectors in memory at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from embedkit.choices import Side
from embedkit.retrieval.cache import EmbeddingCache, cache_key, texts_digest

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


def embed(encoder, texts: Sequence[str], side: Side, cache: Optional[EmbeddingCache] = None,
          on_batch: Optional[Callable[[int], None]] = None, chunk: int = CHUNK_TEXTS) -> Embedded:
    """Vectors [N, dim] float32 for ``texts`` (rows in input order), from the cache when an entry exists.

    ``encoder`` is an `embedkit.inference.Encoder` or anything with its ``encode_queries``/``encode_passages``,
    ``dim``, ``fingerprint`` and ``identity``: entries are keyed by the embedding identity, the side and the texts.
    """
    start = time.perf_counter()
    key = None
    if cache is not None:
        key = cache_key(identity=encoder.identity.to_dict(), side=str(side), texts=texts_digest(texts))
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
        meta = {"identity": encoder.identity.to_dict(), "fingerprint": encoder.fingerprint, "side": str(side)}
        vectors = cache.store(key, shape, fill, meta)
    return Embedded(vectors, time.perf_counter() - start, from_cache=False)

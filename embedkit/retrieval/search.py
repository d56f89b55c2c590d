"""Top-k inner-product search with faiss: exact (flat) by default, IVF or HNSW for approximate search.

Inner product is the score the embedder was trained with: cosine for normalised models, raw dot product for
the others (RocketQA-style). Exact search walks the corpus in shards and merges per-shard top-k lists, so a
memory-mapped corpus larger than RAM is searched without copying it whole into a faiss index. Indexes move to
every visible GPU when faiss was built with GPU support.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np

from embedkit.choices import IndexKind
from embedkit.errors import UserError

Transform = Callable[[np.ndarray], np.ndarray]
INDEX_KINDS: tuple[str, ...] = IndexKind.values()
# GPU faiss cannot return more than 2048 neighbours per query.
_GPU_MAX_K = 2048


@dataclass
class SearchSettings:
    index: IndexKind = IndexKind.FLAT
    nprobe: int = 32  # IVF: lists visited per query
    ef_search: int = 256  # HNSW: candidate list size (raised to k when smaller)
    hnsw_m: int = 32
    shard_size: int = 1 << 20  # flat: corpus rows per faiss index
    query_block: int = 1024  # queries per faiss call (progress granularity)
    use_gpu: Optional[bool] = None  # None: whenever faiss sees a GPU


def search(queries: np.ndarray, corpus: np.ndarray, top_k: int, settings: Optional[SearchSettings] = None,
           on_progress: Optional[Callable[[int], None]] = None,
           transform: Optional[Transform] = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores [Q, k], corpus row indices [Q, k]) of the ``top_k`` best documents per query, best first.

    ``k`` is ``min(top_k, len(corpus))``; approximate indexes may return fewer hits, marked by index -1.
    ``on_progress(n)`` is called with the number of query rows searched (per shard for sharded flat search).
    ``transform`` maps each block of vectors before indexing or searching (Matryoshka truncation), one shard
    at a time, so a memory-mapped corpus is never transformed as a whole.
    """
    faiss = _import_faiss()
    settings = settings or SearchSettings()
    if settings.index not in INDEX_KINDS:
        raise UserError(f"unknown index {settings.index!r} (choose {', '.join(INDEX_KINDS)})", "--index")
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(f"query dim {queries.shape[1]} != corpus dim {corpus.shape[1]}")
    prepare = _preparer(transform)
    k = min(top_k, corpus.shape[0])
    gpu = _use_gpu(faiss, settings, k)
    if settings.index == "flat":
        return _sharded_flat(faiss, queries, corpus, k, settings, gpu, on_progress, prepare)
    index = _approximate_index(faiss, corpus, settings, prepare)
    if settings.index == "hnsw":
        index.hnsw.efSearch = max(settings.ef_search, k)
    if gpu:
        index = faiss.index_cpu_to_all_gpus(index)
    return _search_blocks(index, queries, k, settings.query_block, on_progress, prepare)


def _import_faiss():
    import logging

    # faiss logs every CPU-feature library it tries at INFO when it loads.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import faiss

    return faiss


def search_passes(n_corpus: int, settings: Optional[SearchSettings] = None) -> int:
    """How many times ``search`` walks the queries (for sizing a progress bar)."""
    settings = settings or SearchSettings()
    return max(1, math.ceil(n_corpus / settings.shard_size)) if settings.index == "flat" else 1


def _use_gpu(faiss, settings: SearchSettings, k: int) -> bool:
    available = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    if settings.use_gpu and not available:
        raise UserError("GPU search requested, but this faiss build sees no GPU (install faiss-gpu)")
    return bool(available and settings.use_gpu is not False and k <= _GPU_MAX_K)


def _preparer(transform: Optional[Transform]) -> Transform:
    """Blocks as faiss wants them: float32, C-contiguous, transformed first when asked."""

    def prepare(block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        return np.ascontiguousarray(transform(block) if transform is not None else block, dtype=np.float32)

    return prepare


def _search_blocks(index, queries: np.ndarray, k: int, block: int, on_progress: Optional[Callable[[int], None]],
                   prepare: Transform) -> tuple[np.ndarray, np.ndarray]:
    scores = np.empty((queries.shape[0], k), dtype=np.float32)
    ids = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], block):
        stop = min(start + block, queries.shape[0])
        scores[start:stop], ids[start:stop] = index.search(prepare(queries[start:stop]), k)
        if on_progress is not None:
            on_progress(stop - start)
    return scores, ids


def _sharded_flat(faiss, queries, corpus, k, settings, gpu, on_progress, prepare) -> tuple[np.ndarray, np.ndarray]:
    heap = None
    for offset in range(0, corpus.shape[0], settings.shard_size):
        shard = prepare(corpus[offset:offset + settings.shard_size])
        index = faiss.IndexFlatIP(shard.shape[1])
        index.add(shard)
        if gpu:
            index = faiss.index_cpu_to_all_gpus(index)
        scores, ids = _search_blocks(index, queries, min(k, shard.shape[0]), settings.query_block, on_progress,
                                     prepare)
        if offset == 0 and shard.shape[0] == corpus.shape[0]:
            return scores, ids  # one shard: nothing to merge
        if heap is None:
            heap = faiss.ResultHeap(queries.shape[0], k, keep_max=True)
        heap.add_result(scores, np.where(ids >= 0, ids + offset, -1))
    heap.finalize()
    return heap.D.astype(np.float32), heap.I


def _approximate_index(faiss, corpus: np.ndarray, settings: SearchSettings, prepare: Transform):
    n = corpus.shape[0]
    dim = prepare(corpus[:1]).shape[1]
    if settings.index == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = max(40, 2 * settings.hnsw_m)
        _add_in_shards(index, corpus, settings.shard_size, prepare)
        return index
    # faiss wants >= 39 training points per list; 4*sqrt(N) lists is its usual starting point.
    nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = corpus if n <= 256 * nlist else corpus[np.sort(np.random.default_rng(0).choice(n, 256 * nlist, replace=False))]
    index.train(prepare(sample))
    _add_in_shards(index, corpus, settings.shard_size, prepare)
    index.nprobe = min(settings.nprobe, nlist)
    return index


def _add_in_shards(index, corpus: np.ndarray, shard_size: int, prepare: Transform) -> None:
    for offset in range(0, corpus.shape[0], shard_size):
        index.add(prepare(corpus[offset:offset + shard_size]))

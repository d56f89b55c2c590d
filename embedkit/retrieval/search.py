"""Top-k inner-product search with faiss: exact (flat) by default, IVF or HNSW for approximate search.

``SearchSettings.dtype`` other than float32 stores the documents quantized (float16, int8 or sign bits) in a
flat index, optionally re-scored with int8 vectors (`embedkit.retrieval.quantized_index`).

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

from embedkit.choices import IndexDtype, IndexKind
from embedkit.errors import UserError
from embedkit.retrieval.quantized_index import check_quantization, code_bytes, search_quantized

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
    dtype: IndexDtype = IndexDtype.FLOAT32  # how the index stores documents (quantized: flat and CPU only)
    rescore: Optional[int] = None  # quantized: re-rank this many candidates per query with int8 vectors


@dataclass
class IndexStats:
    """What the index of one search held: its dtype and bytes, and the int8 rescoring store's bytes."""

    dtype: str
    index_bytes: int  # the stored vectors or codes (plus IVF ids and centroids, HNSW links)
    rescore: Optional[int] = None
    rescore_bytes: Optional[int] = None  # the int8 store rescoring reads, d bytes per document


def check_settings(settings: SearchSettings, dims: tuple[int, ...] | list[int] = ()) -> None:
    """A UserError naming the flag for settings that cannot run (``dims``: the embedding dims to be indexed)."""
    if settings.index not in INDEX_KINDS:
        raise UserError(f"unknown index {settings.index!r} (choose {', '.join(INDEX_KINDS)})", "--index")
    check_quantization(settings.dtype, settings.rescore, settings.index, dims)


def search(queries: np.ndarray, corpus: np.ndarray, top_k: int, settings: Optional[SearchSettings] = None,
           on_progress: Optional[Callable[[int], None]] = None,
           transform: Optional[Transform] = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores [Q, k], corpus row indices [Q, k]) of the ``top_k`` best documents per query, best first.

    ``k`` is ``min(top_k, len(corpus))`` (and at most ``settings.rescore`` when rescoring a quantized index);
    approximate indexes may return fewer hits, marked by index -1.
    ``on_progress(n)`` is called with the number of query rows searched (per shard for sharded flat search).
    ``transform`` maps each block of vectors before indexing or searching (Matryoshka truncation), one shard
    at a time, so a memory-mapped corpus is never transformed as a whole.
    """
    scores, ids, _ = search_with_stats(queries, corpus, top_k, settings, on_progress, transform)
    return scores, ids


def search_with_stats(queries: np.ndarray, corpus: np.ndarray, top_k: int, settings: Optional[SearchSettings] = None,
                      on_progress: Optional[Callable[[int], None]] = None,
                      transform: Optional[Transform] = None) -> tuple[np.ndarray, np.ndarray, IndexStats]:
    """`search`, plus what the index held (`IndexStats`).

    With ``settings.rescore`` the result has ``min(top_k, rescore, len(corpus))`` columns: only the re-scored
    candidates are ranked.
    """
    faiss = _import_faiss()
    settings = settings or SearchSettings()
    check_settings(settings)
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(f"query dim {queries.shape[1]} != corpus dim {corpus.shape[1]}")
    prepare = _preparer(transform)
    k = min(top_k, corpus.shape[0])
    if settings.dtype != IndexDtype.FLOAT32:
        found = search_quantized(faiss, queries, corpus, k, settings.dtype, settings.rescore, settings.shard_size,
                                 settings.query_block, on_progress, prepare)
        return found.scores, found.ids, IndexStats(settings.dtype, found.index_bytes, settings.rescore,
                                                   found.rescore_bytes)
    gpu = _use_gpu(faiss, settings, k)
    if settings.index == "flat":
        dim = prepare(corpus[:1]).shape[1]
        scores, ids = _sharded_flat(faiss, queries, corpus, k, settings, gpu, on_progress, prepare)
        return scores, ids, IndexStats(IndexDtype.FLOAT32, code_bytes(IndexDtype.FLOAT32, corpus.shape[0], dim))
    index = _approximate_index(faiss, corpus, settings, prepare)
    stats = IndexStats(IndexDtype.FLOAT32, _approximate_bytes(index, settings.index))
    if settings.index == "hnsw":
        index.hnsw.efSearch = max(settings.ef_search, k)
    if gpu:
        index = faiss.index_cpu_to_all_gpus(index)
    scores, ids = _search_blocks(index, queries, k, settings.query_block, on_progress, prepare)
    return scores, ids, stats


def _import_faiss():
    import logging

    # faiss logs every CPU-feature library it tries at INFO when it loads.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import faiss

    return faiss


def search_passes(n_corpus: int, settings: Optional[SearchSettings] = None) -> int:
    """How many times ``search`` walks the queries (for sizing a progress bar)."""
    settings = settings or SearchSettings()
    sharded = settings.index == "flat" and settings.dtype == IndexDtype.FLOAT32
    return max(1, math.ceil(n_corpus / settings.shard_size)) if sharded else 1


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


def _approximate_bytes(index, kind: str) -> int:
    """IVF: codes and 8-byte ids in the lists, plus the centroids; HNSW: the vectors plus the graph's links."""
    if kind == "hnsw":
        graph = index.hnsw
        return int(index.ntotal * index.d * 4 + 4 * graph.neighbors.size() + 4 * graph.levels.size()
                   + 8 * graph.offsets.size())
    return int(index.ntotal * (index.code_size + 8) + index.quantizer.ntotal * index.d * 4)

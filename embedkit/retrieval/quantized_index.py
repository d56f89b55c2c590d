"""Exact search over quantized document vectors: float16, int8 or sign bits, optionally re-scored with int8.

Bytes per document of dimension d: float32 4·d, float16 2·d, int8 d, binary d/8 (faiss stores nothing else
per vector in a flat index; the int8 ranges add 8·d bytes per index, not per document).

- ``float16`` / ``int8``: faiss ``IndexScalarQuantizer`` (``QT_fp16`` / ``QT_8bit``) with the inner-product
  metric. Queries stay float32 and faiss decodes each code while scoring (asymmetric distance), so only the
  documents lose precision.
- ``int8`` ranges, per dimension j: ``low_j``, ``high_j`` = the corpus's minimum and maximum in that dimension,
  found in one streaming pass over the corpus (a memory-mapped corpus is read one shard at a time, never whole).
  A value x becomes ``code = clip(floor(255·(x − low)/w), 0, 255)`` with ``w = high − low`` and is decoded as
  ``low + (code + ½)·w/255``: faiss's non-uniform ``QT_8bit`` formulas, so the error per value is at most w/510.
  faiss's min/max training on the two rows ``[low; high]`` yields exactly these ranges, which is how the index is
  trained on the whole corpus without holding it.
- ``binary``: bit j is 1 iff x_j > 0 (the sign of each dimension), packed 8 to a byte (``np.packbits``) into
  faiss ``IndexBinaryFlat``, searched by Hamming distance h (the query's sign bits against each document's).
  The reported score is ``1 − 2h/d``: the inner product of the two ±1 sign vectors divided by d, in [−1, 1] and
  higher-is-better like the other scores, so runs rank the same way.

Rescoring (``rescore=K``): the K best candidates per query from the quantized index are re-ranked by the float32
query against int8 copies of the documents (the idea of sentence-transformers' ``quantize_embeddings`` /
``semantic_search_faiss`` rescoring: a tiny index finds candidates, a larger store that need not be in the
index's memory orders them). The int8 store is a separate ``[n, d]`` array (d bytes per document, a quarter of
float32) quantized with the ranges above, signed: ``c = code − 128``. The rescored score is the inner product
with the *decoded* document, ``q · x̂`` with ``x̂_j = low_j + (c_j + 128.5)·w_j/255``, computed as
``q·low + 128.5·Σ_j s_j + Σ_j s_j·c_j`` with ``s_j = q_j·w_j/255``: the per-query terms once, then one int8·float
dot product per candidate. Decoding matters: ``q · c`` on the raw codes (sentence-transformers' rescoring)
stretches dimension j by 255/w_j and shifts it, so narrow-range dimensions would count more than the model's
inner product gives them; the decoded score approximates that inner product within Σ_j |q_j|·w_j/510.
With ``int8`` itself, rescoring re-ranks by the same decoded values the index used; with ``float16`` the store is
coarser than the index. It is meant for ``binary``.

Quantized indexes are flat (exact search over the codes) and run on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from embedkit.choices import IndexDtype, IndexKind
from embedkit.errors import UserError

Prepare = Callable[[np.ndarray], np.ndarray]
INDEX_DTYPES: tuple[str, ...] = IndexDtype.values()
QUANTIZED: tuple[str, ...] = tuple(d for d in INDEX_DTYPES if d != IndexDtype.FLOAT32)
BYTES_PER_VALUE = {IndexDtype.FLOAT32: 4.0, IndexDtype.FLOAT16: 2.0, IndexDtype.INT8: 1.0, IndexDtype.BINARY: 1 / 8}
# Candidates x dims decoded at once while rescoring (float32 values: 32 MB).
_RESCORE_BLOCK_VALUES = 1 << 23


def code_bytes(dtype: str, n: int, dim: int) -> int:
    """The bytes an index of ``n`` vectors of ``dim`` values holds in ``dtype`` (4·d·n, 2·d·n, d·n, d/8·n)."""
    return int(BYTES_PER_VALUE[IndexDtype(dtype)] * dim * n)


def check_quantization(dtype: str, rescore: Optional[int], index: str = IndexKind.FLAT,
                       dims: Sequence[int] = ()) -> None:
    """Refuse combinations that cannot run, naming the flag: a UserError (exit 2) before any work starts."""
    if dtype not in INDEX_DTYPES:
        raise UserError(f"unknown index dtype {dtype!r} (choose {', '.join(INDEX_DTYPES)})", "--index-dtype")
    if dtype != IndexDtype.FLOAT32 and index != IndexKind.FLAT:
        raise UserError(f"a {dtype} index is searched exactly (flat): use it with --index flat, not --index {index} "
                        "(approximate indexes store float32 vectors)", "--index-dtype")
    if rescore is not None:
        if dtype == IndexDtype.FLOAT32:
            raise UserError("re-ranks the candidates of a quantized index: give --index-dtype "
                            f"{', '.join(QUANTIZED)} with it (a float32 index has nothing to re-score)", "--rescore")
        if rescore < 1:
            raise UserError(f"must be at least 1, got {rescore}", "--rescore")
    if dtype == IndexDtype.BINARY:
        for dim in dims:
            if dim % 8:
                raise UserError(f"binary codes pack 8 sign bits to a byte: the embedding dim must be a multiple of 8, "
                                f"got {dim}", "--index-dtype")


@dataclass(frozen=True)
class Int8Ranges:
    """Per-dimension ``[low, high]`` of the corpus: what int8 codes 0..255 (signed: −128..127) span."""

    low: np.ndarray  # [d] float32
    high: np.ndarray  # [d] float32

    @property
    def width(self) -> np.ndarray:
        # A constant dimension gets a tiny width instead of a division by zero (its codes are all 0).
        return np.maximum(self.high - self.low, np.float32(1e-12)).astype(np.float32)

    @classmethod
    def of_corpus(cls, corpus: np.ndarray, shard_size: int, prepare: Prepare) -> Int8Ranges:
        low = high = None
        for offset in range(0, corpus.shape[0], shard_size):
            shard = prepare(corpus[offset:offset + shard_size])
            low = shard.min(axis=0) if low is None else np.minimum(low, shard.min(axis=0))
            high = shard.max(axis=0) if high is None else np.maximum(high, shard.max(axis=0))
        return cls(low.astype(np.float32), high.astype(np.float32))

    def quantize(self, block: np.ndarray) -> np.ndarray:
        """Signed int8 codes ``clip(floor(255·(x − low)/w), 0, 255) − 128``."""
        codes = np.floor(255.0 * (block - self.low) / self.width)
        return (np.clip(codes, 0, 255) - 128).astype(np.int8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``low + (c + 128.5)·w/255``: the centre of each code's interval."""
        return self.low + (codes.astype(np.float32) + 128.5) * (self.width / 255.0)


class Int8Store:
    """The int8 copies of the documents that rescoring reads (d bytes per document)."""

    def __init__(self, codes: np.ndarray, ranges: Int8Ranges):
        self.codes = codes
        self.ranges = ranges

    @classmethod
    def build(cls, corpus: np.ndarray, ranges: Int8Ranges, shard_size: int, prepare: Prepare) -> Int8Store:
        dim = ranges.low.shape[0]
        codes = np.empty((corpus.shape[0], dim), dtype=np.int8)
        for offset in range(0, corpus.shape[0], shard_size):
            codes[offset:offset + shard_size] = ranges.quantize(prepare(corpus[offset:offset + shard_size]))
        return cls(codes, ranges)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes)

    def scores(self, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """``q · x̂`` for each query row and each of its candidate ids ([B, K]; id −1 scores −inf)."""
        step = self.ranges.width / np.float32(255.0)
        scaled = queries * step  # s_j = q_j·w_j/255
        base = queries @ self.ranges.low + np.float32(128.5) * scaled.sum(axis=1)
        out = np.empty(ids.shape, dtype=np.float32)
        rows = max(1, _RESCORE_BLOCK_VALUES // max(1, ids.shape[1] * queries.shape[1]))
        for start in range(0, ids.shape[0], rows):
            stop = start + rows
            block_ids = ids[start:stop]
            candidates = self.codes[np.maximum(block_ids, 0)].astype(np.float32)  # [b, K, d]
            dots = np.matmul(candidates, scaled[start:stop, :, None])[..., 0]
            out[start:stop] = np.where(block_ids >= 0, base[start:stop, None] + dots, -np.inf)
        return out

    def rescore(self, queries: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best of each row's candidates by ``scores``, best first (ties keep the index's order)."""
        scores = self.scores(queries, ids)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


@dataclass
class QuantizedSearch:
    scores: np.ndarray  # [Q, k] float32
    ids: np.ndarray  # [Q, k] int64
    index_bytes: int
    rescore_bytes: Optional[int]


def search_quantized(faiss, queries: np.ndarray, corpus: np.ndarray, k: int, dtype: str, rescore: Optional[int],
                     shard_size: int, query_block: int, on_progress: Optional[Callable[[int], None]],
                     prepare: Prepare) -> QuantizedSearch:
    """Top ``k`` per query from a ``dtype`` index of ``corpus`` (``min(k, rescore)`` when rescoring)."""
    dim = prepare(corpus[:1]).shape[1]
    check_quantization(dtype, rescore, dims=[dim])
    n = corpus.shape[0]
    ranges = Int8Ranges.of_corpus(corpus, shard_size, prepare) if dtype == IndexDtype.INT8 or rescore else None
    index = _build_index(faiss, dtype, dim, corpus, shard_size, prepare, ranges)
    store = Int8Store.build(corpus, ranges, shard_size, prepare) if rescore else None
    depth = min(k, rescore) if rescore else k
    candidates = min(rescore, n) if rescore else k
    scores = np.empty((queries.shape[0], depth), dtype=np.float32)
    ids = np.empty((queries.shape[0], depth), dtype=np.int64)
    for start in range(0, queries.shape[0], query_block):
        stop = min(start + query_block, queries.shape[0])
        block = prepare(queries[start:stop])
        found_scores, found = _search(index, dtype, dim, block, candidates)
        if store is not None:
            found_scores, found = store.rescore(block, found, depth)
        scores[start:stop], ids[start:stop] = found_scores, found
        if on_progress is not None:
            on_progress(stop - start)
    return QuantizedSearch(scores, ids, _index_bytes(index), store.nbytes if store is not None else None)


def _build_index(faiss, dtype: str, dim: int, corpus: np.ndarray, shard_size: int, prepare: Prepare,
                 ranges: Optional[Int8Ranges]):
    if dtype == IndexDtype.BINARY:
        index = faiss.IndexBinaryFlat(dim)
        for offset in range(0, corpus.shape[0], shard_size):
            index.add(np.packbits(prepare(corpus[offset:offset + shard_size]) > 0, axis=1))
        return index
    kind = faiss.ScalarQuantizer.QT_fp16 if dtype == IndexDtype.FLOAT16 else faiss.ScalarQuantizer.QT_8bit
    index = faiss.IndexScalarQuantizer(dim, kind, faiss.METRIC_INNER_PRODUCT)
    if dtype == IndexDtype.INT8:
        index.train(np.ascontiguousarray(np.stack([ranges.low, ranges.high])))  # min/max training: exactly the ranges
    for offset in range(0, corpus.shape[0], shard_size):
        index.add(prepare(corpus[offset:offset + shard_size]))
    return index


def _search(index, dtype: str, dim: int, block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if dtype != IndexDtype.BINARY:
        scores, ids = index.search(block, k)
        return scores, ids
    distances, ids = index.search(np.packbits(block > 0, axis=1), k)
    return (1.0 - 2.0 * distances.astype(np.float32) / dim).astype(np.float32), ids.astype(np.int64)


def _index_bytes(index) -> int:
    """The codes the index holds: ``ntotal × code_size`` (d/8 bytes per vector for binary)."""
    return int(index.ntotal * index.code_size)

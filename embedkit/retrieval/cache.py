"""On-disk embedding cache, so evaluating the same model on the same texts again skips encoding.

An entry is keyed by everything that changes the vectors: the model's weights hash, the inference engine, the
side (query/passage) with its instruction, max length, pooling and normalisation, and a hash of the texts in
order. It is a directory ``<embedkit home>/embeddings/<key>/`` holding ``embeddings.npy`` (float32, never
pickle) and ``meta.json`` (shape, dtype, row count and the array's size and sha256, written last), staged and renamed
into place so an interrupted run leaves no partial entry. Every load verifies the entry against its meta; one
that does not verify (damaged, truncated, edited) is removed and encoded again. Large entries are
memory-mapped on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from embedkit import console, paths
from embedkit.errors import UserError
from embedkit.fsutil import atomic_path, no_space_message
from embedkit.integrity import file_records, mismatch

ARRAY_FILE = "embeddings.npy"
META_FILE = "meta.json"
# Bumped when the entry layout or the key's meaning changes, so stale entries are never read.
CACHE_FORMAT = 2
DTYPE = "float32"
# Entries above this size are memory-mapped instead of read into memory.
MMAP_THRESHOLD_BYTES = 512 << 20


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 over the texts in order (length-prefixed, so boundaries between texts count)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def cache_key(**parts: object) -> str:
    payload = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


class EmbeddingCache:
    def __init__(self, root: Optional[Path] = None):
        self.root = Path(root) if root is not None else paths.home() / "embeddings"

    def entry(self, key: str) -> Path:
        return self.root / key

    def load(self, key: str) -> Optional[np.ndarray]:
        """The entry's vectors, or None when there is none or it does not verify (then it is removed)."""
        entry = self.entry(key)
        if not entry.is_dir():
            return None
        problem = _verify(entry)
        if problem is not None:
            console.get().warning(f"discarding a damaged embedding cache entry {entry}: {problem}; encoding again")
            shutil.rmtree(entry, ignore_errors=True)  # under the cache root, named by its key: embedkit's own
            return None
        array_path = entry / ARRAY_FILE
        large = array_path.stat().st_size > MMAP_THRESHOLD_BYTES
        return np.load(array_path, mmap_mode="r" if large else None, allow_pickle=False)

    def store(self, key: str, shape: tuple[int, int], fill: Callable[[np.ndarray], None], meta: dict) -> np.ndarray:
        """Create an entry of ``shape`` by letting ``fill`` write into a memory-mapped array, then load it.

        Writing through a memory map keeps peak memory at one chunk of the corpus however large it is. The
        file's blocks are reserved first, so a full disk is an error here rather than a SIGBUS mid-encoding.
        ``meta.json``, with the array's shape, dtype and sha256, is written last: an entry without it, or
        whose array does not match it, is never read.
        """
        paths.cache_dir("embeddings")
        target = self.entry(key)
        with atomic_path(target, replace_dir=True) as staged:  # a cache entry: embedkit's own
            staged.mkdir()
            array_path = staged / ARRAY_FILE
            _reserve(array_path, shape)
            array = np.lib.format.open_memmap(array_path, mode="r+")
            fill(array)
            array.flush()
            del array
            if not _all_finite(np.load(array_path, mmap_mode="r")):
                raise UserError("the model gave NaN or infinite embeddings (damaged weights, or an overflow in "
                                "reduced precision); nothing was cached")
            record = {**meta, "shape": list(shape), "dtype": DTYPE, "rows": shape[0],
                      "files": file_records(staged, [ARRAY_FILE]), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            with no_space_message(target):
                (staged / META_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
        return self.load(key)


def _reserve(array_path: Path, shape: tuple[int, int]) -> None:
    """An .npy file of ``shape`` float32 zeros whose blocks are allocated on disk."""
    with no_space_message(array_path.parent.parent):
        header = np.lib.format.open_memmap(array_path, mode="w+", dtype=DTYPE, shape=shape)
        offset = header.offset
        del header
        size = offset + int(np.prod(shape)) * np.dtype(DTYPE).itemsize
        with array_path.open("r+b") as handle:
            os.posix_fallocate(handle.fileno(), 0, size)


def _verify(entry: Path) -> Optional[str]:
    """Why the entry cannot be trusted, or None."""
    meta_path, array_path = entry / META_FILE, entry / ARRAY_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return f"{META_FILE} is missing or unreadable"
    if not isinstance(meta, dict) or not {"shape", "dtype", "files"} <= set(meta):
        return f"{META_FILE} lacks the shape, dtype or file records"
    problem = mismatch(entry, meta["files"])
    if problem is not None:
        return problem
    try:
        array = np.load(array_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        return f"{ARRAY_FILE} is unreadable ({exc})"
    if list(array.shape) != list(meta["shape"]) or str(array.dtype) != meta["dtype"]:
        return f"{ARRAY_FILE} holds {list(array.shape)} {array.dtype}, {META_FILE} says {meta['shape']} {meta['dtype']}"
    return None


def _all_finite(array: np.ndarray, rows: int = 65_536) -> bool:
    return all(np.isfinite(array[start:start + rows]).all() for start in range(0, array.shape[0], rows))

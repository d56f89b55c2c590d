"""On-disk embedding cache, so evaluating the same model on the same texts again skips encoding.

An entry is keyed by everything that changes the vectors: the model's weights hash, the inference engine, the
side (query/passage) with its instruction, max length, pooling and normalisation, and a hash of the texts in
order. It is a directory ``<embedkit home>/embeddings/<key>/`` holding ``embeddings.npy`` (float32, never
pickle) and ``meta.json``, staged and renamed into place so an interrupted run leaves no partial entry.
Large entries are memory-mapped on load.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from embedkit import paths
from embedkit.fsutil import atomic_path

ARRAY_FILE = "embeddings.npy"
META_FILE = "meta.json"
# Bumped when the entry layout or the key's meaning changes, so stale entries are never read.
CACHE_FORMAT = 1
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
        array_path = self.entry(key) / ARRAY_FILE
        if not array_path.is_file():
            return None
        large = array_path.stat().st_size > MMAP_THRESHOLD_BYTES
        return np.load(array_path, mmap_mode="r" if large else None, allow_pickle=False)

    def store(self, key: str, shape: tuple[int, int], fill: Callable[[np.ndarray], None], meta: dict) -> np.ndarray:
        """Create an entry of ``shape`` by letting ``fill`` write into a memory-mapped array, then load it.

        Writing through a memory map keeps peak memory at one chunk of the corpus however large it is.
        """
        paths.cache_dir("embeddings")
        with atomic_path(self.entry(key), replace_dir=True) as staged:  # a cache entry: embedkit's own
            staged.mkdir()
            array = np.lib.format.open_memmap(staged / ARRAY_FILE, mode="w+", dtype=np.float32, shape=shape)
            fill(array)
            array.flush()
            del array
            record = {**meta, "shape": list(shape), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            (staged / META_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return self.load(key)

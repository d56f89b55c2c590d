"""Helpers for the evaluation tests: small BEIR directories, demo texts, a counting stand-in encoder."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from embedkit.inference.identity import EmbeddingIdentity
from embedkit.modeling.spec import EmbedderSpec

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo" / "scifact-mini"


def demo_texts(n: int = 300) -> list[str]:
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(line) for _, line in zip(range(n), handle, strict=False)]
    return [f"{d['title']} {d['text']}".strip() for d in docs]


def write_beir(root: Path, corpus: list[tuple], queries: list[tuple], qrels: list[tuple], split: str = "test") -> Path:
    """corpus: (id, title, text); queries: (id, text); qrels: (query id, doc id, score)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in corpus), encoding="utf-8")
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": x}) + "\n" for i, x in queries), encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels), encoding="utf-8")
    return root


TOPICS = ["protein folding kinase", "river delta sediment", "jazz saxophone improvisation", "volcanic ash eruption",
          "neural network training", "medieval castle siege", "coffee bean roasting", "solar panel efficiency"]


class WordHashEncoder:
    """A deterministic bag-of-words encoder that counts its calls (stands in for `embedkit.inference.Encoder`)."""

    engine = "fake"

    def __init__(self, dim: int = 64, spec: EmbedderSpec | None = None):
        self.dim = dim
        self.spec = spec or EmbedderSpec(query_max_len=32, passage_max_len=64)
        self.weights = "wordhash-" + str(dim)
        self.precision = "fp32"
        self.calls = {"query": 0, "passage": 0}

    @property
    def identity(self) -> EmbeddingIdentity:
        return EmbeddingIdentity.of({"shared": self.weights}, self.spec, self.engine, self.precision)

    @property
    def fingerprint(self) -> str:
        return self.identity.digest

    def _encode(self, texts, side, on_batch):
        self.calls[side] += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        if on_batch is not None:
            on_batch(len(texts))
        if self.spec.normalized:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def encode_queries(self, texts, on_batch=None):
        return self._encode(texts, "query", on_batch)

    def encode_passages(self, texts, on_batch=None):
        return self._encode(texts, "passage", on_batch)

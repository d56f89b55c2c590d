"""Texts for the CLI tests (a uniquely named module: every test dir has its own conftest)."""

from __future__ import annotations

import json
from pathlib import Path

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo" / "scifact-mini"


def corpus_texts(n: int) -> list[str]:
    """The demo corpus's first ``n`` documents: lengths from a few words to a few hundred tokens."""
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(line) for _, line in zip(range(n), handle, strict=False)]
    return [f"{d['title']} {d['text']}".strip() for d in docs]


# Short texts between long ones, so length-sorted batching would show if rows came back in batch order.
TEXTS = ["cells", *corpus_texts(3), "a short query about protein folding", *corpus_texts(6)[3:], "x"]

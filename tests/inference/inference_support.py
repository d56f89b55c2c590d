"""Texts shared by the inference tests (a uniquely named module: every test dir has its own conftest)."""

from __future__ import annotations

import json
from pathlib import Path

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo" / "scifact-mini"


def demo_texts(n: int = 60) -> list[str]:
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(next(handle)) for _ in range(n)]
    return [f"{d['title']} {d['text']}".strip() for d in docs]


# Mixed lengths in one batch: padding must not leak into any pooling.
MIXED_TEXTS = ["a", "short query about cells", *demo_texts(6)]

"""Writers for small dataset fixtures (imported by the tests in this directory)."""

from __future__ import annotations

import json
from pathlib import Path

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo" / "scifact-mini"  # BEIR slice shipped in the repo


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_tsv(path: Path, rows: list[tuple]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(map(str, row)) + "\n" for row in rows), encoding="utf-8")
    return path


def write_beir(root: Path, corpus: list[tuple], queries: list[tuple], qrels: dict[str, list[tuple]]) -> Path:
    """corpus: (id, title, text) rows; queries: (id, text); qrels: split -> (query id, doc id, score), with header."""
    write_jsonl(root / "corpus.jsonl", [{"_id": i, "title": title, "text": text} for i, title, text in corpus])
    write_jsonl(root / "queries.jsonl", [{"_id": i, "text": text} for i, text in queries])
    for split, rows in qrels.items():
        write_tsv(root / "qrels" / f"{split}.tsv", [("query-id", "corpus-id", "score"), *rows])
    return root

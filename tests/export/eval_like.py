"""A small BEIR dir for the export tests (each query's positive is one document)."""

from __future__ import annotations

import json
from pathlib import Path


def write_small_beir(root: Path, docs: list[str]) -> Path:
    root.mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n"
                                               for i, t in enumerate(docs)), encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": t[:40]}) + "\n"
                                                for i, t in enumerate(docs)), encoding="utf-8")
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"q{i}\td{i}\t1\n" for i in range(len(docs))), encoding="utf-8")
    return root

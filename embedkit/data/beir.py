"""BEIR directories: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

``queries.jsonl`` may hold the queries of several splits, as in BEIR; each split's qrels pick its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from embedkit.data.issues import IssueLog
from embedkit.data.lines import iter_json_objects, json_type
from embedkit.data.retrieval import DatasetDirectory, Document, Judgment, read_qrels_tsv
from embedkit.errors import UserError

_LAYOUT = "a BEIR directory holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv"


@dataclass(frozen=True)
class BeirFiles(DatasetDirectory):
    format: ClassVar[str] = "beir"

    def check_layout(self) -> None:
        missing = [name for name in ("corpus.jsonl", "queries.jsonl", "qrels/") if not (self.root / name).exists()]
        if missing:
            raise UserError(f"missing {' and '.join(missing)}: {_LAYOUT}", self.root)
        if not self.splits():
            raise UserError("no <split>.tsv file in qrels/: expected e.g. qrels/test.tsv", self.root / "qrels")

    @property
    def corpus_path(self) -> Path:
        return self.root / "corpus.jsonl"

    def splits(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "qrels").glob("*.tsv"))

    def queries_path(self, split: str) -> Path:
        return self.root / "queries.jsonl"

    def qrels_file(self, split: str) -> Path:
        return self.root / "qrels" / f"{split}.tsv"

    def read_corpus(self, issues: IssueLog) -> Iterator[tuple[int, str, Document]]:
        for line, record in iter_json_objects(self.corpus_path, issues):
            fields = _fields(record, self.corpus_path, line, issues, required=("_id", "text"), optional=("title",))
            if fields:
                yield line, fields["_id"], Document(fields["title"], fields["text"])

    def read_queries(self, path: Path, issues: IssueLog) -> Iterator[tuple[int, str, str]]:
        for line, record in iter_json_objects(path, issues):
            fields = _fields(record, path, line, issues, required=("_id", "text"))
            if fields:
                yield line, fields["_id"], fields["text"]

    def read_qrels(self, path: Path, issues: IssueLog) -> Iterator[Judgment]:
        return read_qrels_tsv(path, issues, allow_trec_columns=False)



def _fields(
    record: dict[str, Any],
    path: Path,
    line: int,
    issues: IssueLog,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> dict[str, str] | None:
    """The named string fields of a record (a missing or null optional one is ""), or None after reporting a problem.

    ``_id`` may also be a JSON integer: some BEIR exports write numeric ids, which qrels spell as text.
    """
    values = {}
    for key in required + optional:
        value = record.get(key)
        if value is None and key in optional:
            value = ""
        elif key not in record:
            issues.error(f"missing field '{key}'", path, line)
            return None
        elif key == "_id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        elif not isinstance(value, str):
            issues.error(f"{key} must be a string, got {json_type(value)}", path, line)
            return None
        values[key] = value
    if not values["_id"].strip():
        issues.error("_id is empty", path, line)
        return None
    return values

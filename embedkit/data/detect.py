"""Tell a dataset's format from its path."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from embedkit.errors import UserError

DatasetFormat = Literal["train-jsonl", "beir", "t2ranking"]

_EXPECTED = (
    "expected a training .jsonl file or a directory of them, a BEIR directory (corpus.jsonl, queries.jsonl,"
    " qrels/<split>.tsv) or a T2Ranking directory (collection.tsv, queries.<split>.tsv, qrels.<split>.tsv)"
)


def detect_format(path: str | Path) -> DatasetFormat:
    """Name the format of ``path``; a directory with any BEIR or T2Ranking file counts as that format,
    so that a missing sibling file is then reported by name rather than as an unknown format."""
    path = Path(path)
    if path.is_file():
        if path.suffix == ".jsonl":
            return "train-jsonl"
        raise UserError(f"not a dataset: {_EXPECTED}", path)
    if not path.is_dir():
        raise UserError("no such file or directory", path)
    names = {child.name for child in path.iterdir()}
    if names & {"corpus.jsonl", "queries.jsonl", "qrels"}:
        return "beir"
    if "collection.tsv" in names or any(n.startswith(("queries.", "qrels.")) and n.endswith(".tsv") for n in names):
        return "t2ranking"
    if any(n.endswith(".jsonl") for n in names):
        return "train-jsonl"
    raise UserError(f"cannot tell the dataset format: {_EXPECTED}", path)

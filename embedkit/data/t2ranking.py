"""T2Ranking-style TSV directories: ``collection.tsv``, ``queries.<split>.tsv`` and ``qrels.<split>.tsv``.

``collection.tsv`` rows are ``pid, text`` and queries rows ``qid, text`` (a shared ``queries.tsv``
serves splits without their own file). qrels rows are ``qid, 0, pid, rel`` or ``qid, pid, rel``. Any of
these files may start with a header row. Documents have no title.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from embedkit.data.issues import IssueLog
from embedkit.data.lines import iter_tsv_rows
from embedkit.data.retrieval import DatasetDirectory, Document, Judgment, read_qrels_tsv
from embedkit.errors import UserError

_LAYOUT = "a T2Ranking directory holds collection.tsv, queries.<split>.tsv (or queries.tsv) and qrels.<split>.tsv"


@dataclass(frozen=True)
class T2RankingFiles(DatasetDirectory):
    format: ClassVar[str] = "t2ranking"

    def check_layout(self) -> None:
        if not self.corpus_path.is_file():
            raise UserError(f"missing collection.tsv: {_LAYOUT}", self.root)
        if not self.splits():
            raise UserError(f"missing qrels.<split>.tsv (e.g. qrels.dev.tsv): {_LAYOUT}", self.root)

    @property
    def corpus_path(self) -> Path:
        return self.root / "collection.tsv"

    def splits(self) -> list[str]:
        return sorted(p.name.removeprefix("qrels.").removesuffix(".tsv") for p in self.root.glob("qrels.*.tsv"))

    def queries_path(self, split: str) -> Path:
        for name in (f"queries.{split}.tsv", "queries.tsv"):
            if (self.root / name).is_file():
                return self.root / name
        raise UserError(f"missing queries.{split}.tsv (or queries.tsv) for split '{split}': {_LAYOUT}", self.root)

    def qrels_file(self, split: str) -> Path:
        return self.root / f"qrels.{split}.tsv"

    def read_corpus(self, issues: IssueLog) -> Iterator[tuple[int, str, Document]]:
        for line, doc_id, text in _id_text_rows(self.corpus_path, "pid", issues):
            yield line, doc_id, Document("", text)

    def read_queries(self, path: Path, issues: IssueLog) -> Iterator[tuple[int, str, str]]:
        return _id_text_rows(path, "qid", issues)

    def read_qrels(self, path: Path, issues: IssueLog) -> Iterator[Judgment]:
        return read_qrels_tsv(path, issues, allow_trec_columns=True)



def _id_text_rows(path: Path, id_name: str, issues: IssueLog) -> Iterator[tuple[int, str, str]]:
    for line, fields in iter_tsv_rows(path, issues, max_columns=2):
        if len(fields) != 2:
            issues.error(f"expected 2 tab-separated columns ({id_name}, text), got 1", path, line)
            continue
        item_id = fields[0].strip()
        if not item_id:
            issues.error(f"{id_name} is empty", path, line)
            continue
        yield line, item_id, fields[1]

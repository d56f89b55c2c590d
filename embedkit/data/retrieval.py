"""Retrieval datasets (a corpus, queries and graded judgments), whatever their file layout.

BEIR and T2Ranking directories differ only in file names and row formats; each provides a
`RetrievalFiles` and everything here (loading, duplicate and unknown-id checks, conversion to
training examples) is shared, so evaluation and training treat both alike.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar

from embedkit.data.issues import IssueLog
from embedkit.data.lines import iter_tsv_rows
from embedkit.data.train_jsonl import TrainExample
from embedkit.errors import UserError


class Document(NamedTuple):
    title: str
    text: str


class Judgment(NamedTuple):
    line: int
    query_id: str
    doc_id: str
    score: int


@dataclass
class RetrievalData:
    corpus: dict[str, Document]
    queries: dict[str, str]  # only the queries judged in `split`
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> graded score (0 = judged not relevant)
    split: str
    source: Path
    format: str  # "beir" or "t2ranking"


class RetrievalFiles(Protocol):
    """Where one dataset's files are and how to read their rows."""

    format: str
    root: Path

    @property
    def corpus_path(self) -> Path: ...

    def splits(self) -> list[str]: ...

    def queries_path(self, split: str) -> Path: ...

    def qrels_path(self, split: str) -> Path: ...

    def read_corpus(self, issues: IssueLog) -> Iterator[tuple[int, str, Document]]: ...

    def read_queries(self, path: Path, issues: IssueLog) -> Iterator[tuple[int, str, str]]: ...

    def read_qrels(self, path: Path, issues: IssueLog) -> Iterator[Judgment]: ...


@dataclass(frozen=True)
class DatasetDirectory:
    """What the layouts share: a root whose layout is checked on opening, and one qrels file per split."""

    root: Path

    @classmethod
    def open(cls, root: str | Path):
        files = cls(Path(root))
        files.check_layout()
        return files

    def check_layout(self) -> None:
        raise NotImplementedError

    def qrels_file(self, split: str) -> Path:
        raise NotImplementedError

    def splits(self) -> list[str]:
        raise NotImplementedError

    def qrels_path(self, split: str) -> Path:
        path = self.qrels_file(split)
        if not path.is_file():
            raise UserError(f"no qrels for split '{split}': expected {path.relative_to(self.root)} "
                            f"(found: {', '.join(self.splits())})", self.root)
        return path


def passage_text(doc: Document) -> str:
    """The text a model sees for a document, in training, evaluation, benchmarks and mining alike: the title, a
    space, the text, stripped. This is MTEB's join (``mteb._create_dataloaders._corpus_to_dict``), which
    title-dependent sets such as MSMARCO-Title need."""
    return f"{doc.title or ''} {doc.text}".strip()


def load_retrieval_files(files: RetrievalFiles, split: str) -> RetrievalData:
    """Read a dataset's corpus, the split's queries and its qrels; the first problem raises `UserError`."""
    issues = IssueLog(strict=True)
    queries_path = files.queries_path(split)
    files.qrels_path(split)  # a missing split should fail before the corpus is read
    corpus = {
        doc_id: doc
        for _, doc_id, doc in first_occurrences(files.read_corpus(issues), "document", files.corpus_path, issues)
    }
    all_queries = {
        query_id: text
        for _, query_id, text in first_occurrences(
            files.read_queries(queries_path, issues), "query", queries_path, issues
        )
    }
    qrels: dict[str, dict[str, int]] = {}
    for judgment in valid_judgments(files, split, all_queries, corpus, issues):
        qrels.setdefault(judgment.query_id, {})[judgment.doc_id] = judgment.score
    queries = {query_id: all_queries[query_id] for query_id in qrels}
    return RetrievalData(corpus, queries, qrels, split, files.root, files.format)


Row = TypeVar("Row", bound=tuple)


def first_occurrences(rows: Iterator[Row], kind: str, path: Path, issues: IssueLog) -> Iterator[Row]:
    """Pass through ``(line, id, ...)`` rows, reporting (and dropping) any id seen on an earlier line."""
    first_line: dict[str, int] = {}
    for row in rows:
        line, item_id = row[0], row[1]
        earlier = first_line.setdefault(item_id, line)
        if earlier != line:
            issues.error(f"duplicate {kind} id '{item_id}': on lines {earlier} and {line}", path, line)
            continue
        yield row


def valid_judgments(
    files: RetrievalFiles, split: str, query_ids: Container[str], doc_ids: Container[str], issues: IssueLog
) -> Iterator[Judgment]:
    """The split's judgments whose ids resolve; unknown ids and conflicting repeats are reported."""
    qrels_path = files.qrels_path(split)
    queries_name = files.queries_path(split).name
    seen: dict[tuple[str, str], Judgment] = {}
    for judgment in files.read_qrels(qrels_path, issues):
        if judgment.query_id not in query_ids:
            issues.error(f"query id '{judgment.query_id}' is not in {queries_name}", qrels_path, judgment.line)
            continue
        if judgment.doc_id not in doc_ids:
            issues.error(
                f"document id '{judgment.doc_id}' is not in {files.corpus_path.name}", qrels_path, judgment.line
            )
            continue
        pair = (judgment.query_id, judgment.doc_id)
        earlier = seen.setdefault(pair, judgment)
        if earlier is judgment:
            yield judgment
        elif earlier.score != judgment.score:
            issues.error(
                f"query '{pair[0]}' and document '{pair[1]}' judged twice with different scores"
                f" ({earlier.score} on line {earlier.line}, {judgment.score} here)",
                qrels_path,
                judgment.line,
            )
        else:
            issues.warning(f"repeats the judgment on line {earlier.line}", qrels_path, judgment.line)


def read_qrels_tsv(path: Path, issues: IssueLog, *, allow_trec_columns: bool) -> Iterator[Judgment]:
    """Rows ``query id, doc id, score`` or, with ``allow_trec_columns``, TREC's ``query id, 0, doc id, score``.

    The first data row fixes the column count for the file; a header row, if any, is skipped.
    """
    expected = "3 tab-separated columns (query id, document id, score)"
    if allow_trec_columns:
        expected += " or 4 (query id, 0, document id, score)"
    columns = None
    for line, fields in iter_tsv_rows(path, issues):
        if columns is None and (len(fields) == 3 or (len(fields) == 4 and allow_trec_columns)):
            columns = len(fields)
        if len(fields) != columns:
            want = expected if columns is None else f"{columns} tab-separated columns, as on the first row"
            issues.error(f"expected {want}, got {len(fields)}", path, line)
            continue
        query_id, doc_id, raw_score = (
            (fields[0], fields[1], fields[2]) if columns == 3 else (fields[0], fields[2], fields[3])
        )
        try:
            score = int(raw_score)
        except ValueError:
            issues.error(f"score must be an integer, got '{raw_score}'", path, line)
            continue
        yield Judgment(line, query_id.strip(), doc_id.strip(), score)


def retrieval_to_train_examples(data: RetrievalData) -> list[TrainExample]:
    """One example per judged query with its relevant documents (score > 0) as positives.

    ``neg`` is left empty: the trainer draws negatives. Queries with no relevant document are skipped.
    """
    examples = []
    for query_id, judged in data.qrels.items():
        positives = [passage_text(data.corpus[doc_id]) for doc_id, score in judged.items() if score > 0]
        if positives:
            examples.append(TrainExample(query=data.queries[query_id], pos=positives, neg=[], source=str(data.source)))
    return examples

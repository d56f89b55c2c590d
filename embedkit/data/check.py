"""`embedkit data check`: validate a dataset end to end and describe it.

Everything is streamed; only ids (to resolve qrels) and text hashes (to spot duplicates) are kept.
Line-level problems are collected (up to a cap) instead of stopping at the first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from embedkit.console import Output
from embedkit.data.detect import detect_format
from embedkit.data.issues import Issue, IssueLog
from embedkit.data.lengths import LengthMeter, LengthStats
from embedkit.data.load import open_retrieval
from embedkit.data.retrieval import RetrievalFiles, first_occurrences, passage_text, valid_judgments
from embedkit.data.train_jsonl import iter_train_jsonl, train_jsonl_files
from embedkit.errors import UserError

MAX_ISSUES = 50
WARNINGS_SHOWN = 10  # in the table output without -v; --json has all MAX_ISSUES

_TRAIN_COUNTS = (
    "files",
    "examples",
    "positives",
    "negatives",
    "examples_without_negatives",
    "examples_with_scores",
    "duplicate_queries",
    "empty_texts",
    "pos_neg_overlaps",
)


@dataclass
class CheckReport:
    path: str
    format: str
    length_unit: str  # "tokens" or "characters"
    counts: dict[str, int]
    lengths: dict[str, LengthStats]
    splits: dict[str, dict[str, int]] = field(default_factory=dict)  # retrieval data: per-split qrels counts
    suggested: dict[str, int] = field(default_factory=dict)  # query_max_len / passage_max_len, with a tokenizer
    errors: list[Issue] = field(default_factory=list)  # the first MAX_ISSUES; error_count has them all
    warnings: list[Issue] = field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0

    def to_dict(self) -> dict[str, object]:
        payload = asdict(self)
        payload["errors"] = [issue.to_dict() for issue in self.errors]
        payload["warnings"] = [issue.to_dict() for issue in self.warnings]
        return payload


def check_dataset(path: str | Path, tokenizer: Callable[[], Any] | None = None, split: str | None = None) -> CheckReport:
    """Check a training JSONL file/directory, or a BEIR/T2Ranking directory (every split unless ``split``).

    ``tokenizer`` loads the tokenizer for token-length statistics; it is called once the data's layout has
    been checked, so a mistyped path fails in a second, not after the tokenizer loads.
    """
    path = Path(path)
    issues = IssueLog(strict=False, cap=MAX_ISSUES)
    fmt = detect_format(path)
    if fmt == "train-jsonl":
        if split is not None:
            raise UserError("--split applies to BEIR and T2Ranking directories, not to training JSONL", path)
        train_jsonl_files(path)  # a directory without *.jsonl fails here, before the tokenizer loads
        meter = LengthMeter(("queries", "positives", "negatives"), tokenizer() if tokenizer else None)
        counts = _check_train(path, meter, issues)
        splits: dict[str, dict[str, int]] = {}
        lengths = meter.stats()
        passages_p95 = max(
            (s.p95 for s in (lengths["positives"], lengths["negatives"]) if s.p95 is not None), default=None
        )
    else:
        files = open_retrieval(path)
        chosen = [split] if split is not None else files.splits()
        for name in chosen:
            files.qrels_path(name)  # an unknown split fails here, before the corpus is read
            files.queries_path(name)
        meter = LengthMeter(("queries", "documents"), tokenizer() if tokenizer else None)
        counts, splits = _check_retrieval(files, chosen, meter, issues)
        lengths = meter.stats()
        passages_p95 = lengths["documents"].p95
    suggested = {
        "query_max_len": meter.suggested_max_len(lengths["queries"].p95),
        "passage_max_len": meter.suggested_max_len(passages_p95),
    }
    return CheckReport(
        path=str(path),
        format=fmt,
        length_unit=meter.unit,
        counts=counts,
        lengths=lengths,
        splits=splits,
        suggested={key: value for key, value in suggested.items() if value is not None},
        errors=issues.errors,
        warnings=issues.warnings,
        error_count=issues.error_count,
        warning_count=issues.warning_count,
    )


def _check_train(path: Path, meter: LengthMeter, issues: IssueLog) -> dict[str, int]:
    counts = Counter({key: 0 for key in _TRAIN_COUNTS})
    counts["files"] = len(train_jsonl_files(path))
    # hash(query) -> where it first appeared; 64-bit hashes keep memory small and collide too rarely to matter.
    first_seen: dict[int, tuple[str, int]] = {}
    for example in iter_train_jsonl(path, issues=issues):
        counts["examples"] += 1
        counts["positives"] += len(example.pos)
        counts["negatives"] += len(example.neg)
        counts["examples_without_negatives"] += not example.neg
        counts["examples_with_scores"] += example.pos_scores is not None or example.neg_scores is not None
        meter.add("queries", example.query)
        for text in example.pos:
            meter.add("positives", text)
        for text in example.neg:
            meter.add("negatives", text)

        where = (example.source, example.line)
        if not example.query.strip():
            counts["empty_texts"] += 1
            issues.warning("query is empty", *where)
        empty_passages = sum(not text.strip() for text in example.pos + example.neg)
        if empty_passages:
            counts["empty_texts"] += empty_passages
            issues.warning(f"{empty_passages} empty passage(s) in pos/neg", *where)
        overlap = set(example.pos) & set(example.neg)
        if overlap:
            counts["pos_neg_overlaps"] += len(overlap)
            issues.warning(f"{len(overlap)} negative(s) identical to a positive of the same query", *where)
        earlier = first_seen.setdefault(hash(example.query), where)
        if earlier != where:
            counts["duplicate_queries"] += 1
            origin = f"line {earlier[1]}" if earlier[0] == example.source else f"{earlier[0]}:{earlier[1]}"
            issues.warning(f"same query as {origin}", *where)
    return dict(counts)


def _check_retrieval(
    files: RetrievalFiles, splits: list[str], meter: LengthMeter, issues: IssueLog
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    counts = Counter(
        {key: 0 for key in ("documents", "queries", "duplicate_documents", "duplicate_queries", "empty_texts")}
    )

    doc_ids: set[str] = set()
    first_text: dict[int, tuple[str, int]] = {}  # hash(passage) -> (doc id, line)
    for line, doc_id, doc in first_occurrences(files.read_corpus(issues), "document", files.corpus_path, issues):
        doc_ids.add(doc_id)
        counts["documents"] += 1
        text = passage_text(doc)
        meter.add("documents", text)
        if not doc.text.strip():
            counts["empty_texts"] += 1
            issues.warning(f"document '{doc_id}' has empty text", files.corpus_path, line)
            continue
        earlier = first_text.setdefault(hash(text), (doc_id, line))
        if earlier[0] != doc_id:
            counts["duplicate_documents"] += 1
            issues.warning(
                f"document '{doc_id}' has the same title and text as '{earlier[0]}' (line {earlier[1]})",
                files.corpus_path,
                line,
            )

    query_ids: dict[Path, set[str]] = {}  # BEIR splits share one queries file: read it once
    per_split = {}
    for split in splits:
        queries_path = files.queries_path(split)
        if queries_path not in query_ids:
            query_ids[queries_path] = _check_queries(files, queries_path, meter, counts, issues)
        judged: set[str] = set()
        split_counts = Counter({"queries": 0, "judgments": 0, "relevant": 0})
        for judgment in valid_judgments(files, split, query_ids[queries_path], doc_ids, issues):
            judged.add(judgment.query_id)
            split_counts["judgments"] += 1
            split_counts["relevant"] += judgment.score > 0
        split_counts["queries"] = len(judged)
        per_split[split] = dict(split_counts)
    return dict(counts), per_split


def _check_queries(
    files: RetrievalFiles, path: Path, meter: LengthMeter, counts: Counter, issues: IssueLog
) -> set[str]:
    ids: set[str] = set()
    first_text: dict[int, tuple[str, int]] = {}  # hash(query text) -> (query id, line)
    for line, query_id, text in first_occurrences(files.read_queries(path, issues), "query", path, issues):
        ids.add(query_id)
        counts["queries"] += 1
        meter.add("queries", text)
        if not text.strip():
            counts["empty_texts"] += 1
            issues.warning(f"query '{query_id}' is empty", path, line)
            continue
        earlier = first_text.setdefault(hash(text), (query_id, line))
        if earlier[0] != query_id:
            counts["duplicate_queries"] += 1
            issues.warning(f"query '{query_id}' has the same text as '{earlier[0]}' (line {earlier[1]})", path, line)
    return ids


def render_report(report: CheckReport, out: Output) -> None:
    """Tables to stderr; with --json the report itself on stdout. Errors show even with --quiet."""
    out.result(report.to_dict())
    console = out.err
    console.print(f"{report.format} dataset: {report.path}", soft_wrap=True, markup=False, highlight=False)

    counts = Table("count", "value", title="Counts", title_justify="left")
    for key, value in report.counts.items():
        counts.add_row(key.replace("_", " "), str(value))
    console.print(counts)

    if report.splits:
        splits = Table("split", "judged queries", "judgments", "relevant", title="Qrels", title_justify="left")
        for name, values in report.splits.items():
            splits.add_row(name, str(values["queries"]), str(values["judgments"]), str(values["relevant"]))
        console.print(splits)

    lengths = Table(
        "field", "texts", "p50", "p95", "max", title=f"Lengths ({report.length_unit})", title_justify="left"
    )
    for name, stats in report.lengths.items():
        lengths.add_row(
            name, str(stats.count), *("-" if v is None else str(v) for v in (stats.p50, stats.p95, stats.max))
        )
    console.print(lengths)

    if report.suggested:
        settings = ", ".join(f"{key}={value}" for key, value in report.suggested.items())
        message = f"suggested (p95 rounded up, within the model's limit): {settings}"
        console.print(message, soft_wrap=True, markup=False, highlight=False)

    # soft_wrap keeps each `path:line: message` on one line, whatever the terminal width, for editors and grep.
    # Warnings often repeat one kind (the counts table totals them): a few make the point unless -v.
    shown = report.warnings if out.verbosity > 0 else report.warnings[:WARNINGS_SHOWN]
    for issue in shown:
        console.print(f"warning: {issue}", style="yellow", soft_wrap=True, markup=False, highlight=False)
    if report.warning_count > len(shown):
        console.print(f"... and {report.warning_count - len(shown)} more warnings", style="yellow")
    errors_console = console if not console.quiet else Console(stderr=True)  # --quiet still shows errors
    for issue in report.errors:
        errors_console.print(f"error: {issue}", style="bold red", soft_wrap=True, markup=False, highlight=False)
    if report.error_count > len(report.errors):
        errors_console.print(f"... and {report.error_count - len(report.errors)} more errors", style="bold red")
    console.print(f"{report.error_count} error(s), {report.warning_count} warning(s)", highlight=False)

"""Conversions from upstream dataset layouts to embedkit's layouts.

Each conversion reads a downloaded source directory and writes embedkit's layout into an output
directory; nothing else (no network, no global state), so the same input always gives the same output.

* training JSONL: one ``{"query": str, "pos": [str, ...], "neg": [str, ...]}`` per line;
* BEIR directory: ``corpus.jsonl`` ``{_id, title, text}``, ``queries.jsonl`` ``{_id, text}`` and
  ``qrels/<split>.tsv`` with the header ``query-id<TAB>corpus-id<TAB>score``.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from embedkit.data.issues import IssueLog
from embedkit.data.lines import iter_json_objects, iter_tsv_records, iter_tsv_rows
from embedkit.errors import UserError
from embedkit.fsutil import atomic_path


@dataclass
class Converted:
    outputs: list[Path]
    counts: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# mMARCO (unicamp-dl/mmarco): id triples + translated collection/queries -> training JSONL


def group_triples(qids: Sequence[int], pos_ids: Sequence[int], neg_ids: Sequence[int]) -> Iterator[tuple[int, list[int], list[int]]]:
    """Group (query, positive, negative) id triples by query: ``(qid, positives, negatives)``, qid ascending.

    Upstream repeats a query once per negative; grouping gives each query all of its negatives at
    once. Duplicates are dropped (first occurrence kept) and so is a negative that is also one of
    the query's positives.
    """
    q = np.asarray(qids, dtype=np.int64)
    p = np.asarray(pos_ids, dtype=np.int64)
    n = np.asarray(neg_ids, dtype=np.int64)
    if not (len(q) == len(p) == len(n)):
        raise ValueError("qids, pos_ids and neg_ids must have the same length")
    if not len(q):
        return
    order = np.argsort(q, kind="stable")  # stable: keeps the file order within a query
    q, p, n = q[order], p[order], n[order]
    starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
    ends = np.r_[starts[1:], len(q)]
    for start, end in zip(starts, ends, strict=True):
        positives = list(dict.fromkeys(p[start:end].tolist()))
        taken = set(positives)
        negatives = [x for x in dict.fromkeys(n[start:end].tolist()) if x not in taken]
        yield int(q[start]), positives, negatives


def mmarco_to_training_jsonl(source: Path, out_dir: Path, language: str = "chinese") -> Converted:
    """``source`` is a snapshot of unicamp-dl/mmarco; writes ``out_dir/train.jsonl``."""
    triples_path = source / "data" / "triples.train.ids.small.tsv"
    collection_path = source / "data" / "google" / "collections" / f"{language}_collection.tsv"
    queries_path = source / "data" / "google" / "queries" / "train" / f"{language}_queries.train.tsv"
    for path in (triples_path, collection_path, queries_path):
        _require_file(path)

    # 8-byte arrays rather than lists of Python ints: the real file has ~40M triples
    qids, pos_ids, neg_ids = array("q"), array("q"), array("q")
    for lineno, row in _tsv_rows(triples_path, 3):
        qids.append(_int_id(row[0], triples_path, lineno))
        pos_ids.append(_int_id(row[1], triples_path, lineno))
        neg_ids.append(_int_id(row[2], triples_path, lineno))

    queries = _texts_by_id(queries_path, set(np.unique(qids).tolist()))
    passages = _texts_by_id(collection_path, set(np.unique(np.concatenate([pos_ids, neg_ids])).tolist()))

    counts = {"queries": 0, "queries_without_text": 0, "passages_without_text": 0}
    target = out_dir / "train.jsonl"
    with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8") as out:
        for qid, pos, neg in group_triples(qids, pos_ids, neg_ids):
            if qid not in queries:
                counts["queries_without_text"] += 1
                continue
            pos_texts = [passages[pid] for pid in pos if pid in passages]
            neg_texts = [passages[pid] for pid in neg if pid in passages]
            counts["passages_without_text"] += len(pos) + len(neg) - len(pos_texts) - len(neg_texts)
            if not pos_texts:
                continue
            _write_jsonl_line(out, {"query": queries[qid], "pos": pos_texts, "neg": neg_texts})
            counts["queries"] += 1
    return Converted([target], counts)


# ---------------------------------------------------------------------------------------------
# T2Ranking (THUIR/T2Ranking): TSV collection/queries/qrels -> BEIR directory


def t2ranking_to_beir(source: Path, out_dir: Path, split: str = "dev") -> Converted:
    """``source`` is a snapshot of THUIR/T2Ranking (files under ``data/``, or directly in ``source``).

    Keeps the full collection and the graded relevance (0-3). Queries whose judgements are all 0
    have nothing to retrieve, so they are dropped (as PaddleNLP's T2Ranking evaluation does); the
    0-graded rows of the remaining queries stay, since BEIR/pytrec_eval read 0 as "judged, not relevant".
    """
    data = source / "data" if (source / "data").is_dir() else source
    collection_path = data / "collection.tsv"
    queries_path = data / f"queries.{split}.tsv"
    qrels_path = data / f"qrels.{split}.tsv"
    for path in (collection_path, queries_path, qrels_path):
        _require_file(path)

    # qrels.<split>.tsv: qid, an unused column ("-" in the header), pid, graded relevance
    judgements: dict[str, dict[str, int]] = {}
    for lineno, row in _tsv_rows(qrels_path, 4):
        grade = _int_id(row[3], qrels_path, lineno)
        judgements.setdefault(row[0], {})[row[2]] = grade
    kept = {qid: grades for qid, grades in judgements.items() if any(g > 0 for g in grades.values())}

    counts = {"queries": 0, "qrels": 0, "passages": 0, "queries_dropped_no_relevant": len(judgements) - len(kept)}
    outputs = [out_dir / "corpus.jsonl", out_dir / "queries.jsonl", out_dir / "qrels" / f"{split}.tsv"]
    with atomic_path(outputs[2]) as tmp, tmp.open("w", encoding="utf-8", newline="") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for qid, grades in kept.items():
            for pid, grade in grades.items():
                out.write(f"{qid}\t{pid}\t{grade}\n")
                counts["qrels"] += 1
    with atomic_path(outputs[1]) as tmp, tmp.open("w", encoding="utf-8") as out:
        for _, (qid, text) in _tsv_rows(queries_path, 2):
            if qid in kept:
                _write_jsonl_line(out, {"_id": qid, "text": text})
                counts["queries"] += 1
    with atomic_path(outputs[0]) as tmp, tmp.open("w", encoding="utf-8") as out:
        for _, (pid, text) in _tsv_rows(collection_path, 2):
            _write_jsonl_line(out, {"_id": pid, "title": "", "text": text})
            counts["passages"] += 1
    return Converted(outputs, counts)


# ---------------------------------------------------------------------------------------------
# MTEB retrieval sets (mteb/<task>): corpus/queries/qrels as JSONL, parquet or TSV -> BEIR directory

TABLE_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet", ".tsv")


def mteb_to_beir(source: Path, out_dir: Path, split: str = "test") -> Converted:
    """``source`` is a snapshot of an ``mteb/<task>`` dataset repo.

    MTEB repos come in two layouts: BEIR-like (``corpus.jsonl``, ``queries.jsonl``,
    ``qrels/<split>.tsv`` or ``.jsonl``) and parquet configs (``corpus/*.parquet``,
    ``queries/*.parquet``, ``default/<split>-*.parquet`` or ``qrels/<split>.parquet``). Both are read.
    """
    tables = _find_tables(source)
    corpus_files = [p for p, role in tables if role == "corpus"]
    query_files = [p for p, role in tables if role == "queries"]
    qrels_files = [p for p, role in tables if role == "qrels" and _split_of(p.name) == split]
    for what, found in (("corpus", corpus_files), ("queries", query_files), (f"'{split}' qrels", qrels_files)):
        if not found:
            raise UserError(f"no {what} file found (looked for JSONL, parquet and TSV files)", source)

    counts = {"passages": 0, "queries": 0, "qrels": 0}
    outputs = [out_dir / "corpus.jsonl", out_dir / "queries.jsonl", out_dir / "qrels" / f"{split}.tsv"]
    with atomic_path(outputs[0]) as tmp, tmp.open("w", encoding="utf-8") as out:
        for path, row in _rows_of(corpus_files):
            doc = {"_id": _row_id(row, path), "title": row.get("title") or "", "text": row.get("text") or ""}
            _write_jsonl_line(out, doc)
            counts["passages"] += 1
    with atomic_path(outputs[1]) as tmp, tmp.open("w", encoding="utf-8") as out:
        for path, row in _rows_of(query_files):
            _write_jsonl_line(out, {"_id": _row_id(row, path), "text": row.get("text") or ""})
            counts["queries"] += 1
    with atomic_path(outputs[2]) as tmp, tmp.open("w", encoding="utf-8", newline="") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for path, row in _rows_of(qrels_files):
            qid = _field(row, path, "query-id", "query_id")
            doc_id = _field(row, path, "corpus-id", "corpus_id")
            out.write(f"{qid}\t{doc_id}\t{int(float(_field(row, path, 'score')))}\n")
            counts["qrels"] += 1
    return Converted(outputs, counts)


def _find_tables(source: Path) -> list[tuple[Path, str]]:
    """Data files under ``source`` with their role: corpus, queries or qrels (anything else tabular)."""
    found = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        # huggingface_hub keeps its download metadata under .cache/ inside the snapshot
        if not path.is_file() or relative.parts[0].startswith(".") or not path.name.endswith(TABLE_SUFFIXES):
            continue
        names = [part.lower() for part in relative.parts]
        if any(part.startswith("corpus") for part in names):
            found.append((path, "corpus"))
        elif any(part.startswith(("queries", "query")) for part in names):
            found.append((path, "queries"))
        else:
            found.append((path, "qrels"))
    return found


def _split_of(file_name: str) -> str:
    """``test.tsv``, ``test.jsonl`` and ``test-00000-of-00001.parquet`` all hold the ``test`` split."""
    return re.split(r"[-.]", file_name, maxsplit=1)[0]


def _rows_of(paths: list[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in paths:
        for row in _read_table(path):
            yield path, row


def _read_table(path: Path) -> Iterator[dict[str, Any]]:
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            yield from batch.to_pylist()
    elif name.endswith((".jsonl", ".jsonl.gz")):
        for _, record in iter_json_objects(path, IssueLog(strict=True)):
            yield record
    else:
        for _, record in iter_tsv_records(path, IssueLog(strict=True)):
            yield record


def _row_id(row: dict[str, Any], path: Path) -> str:
    return _field(row, path, "_id", "id")


def _field(row: dict[str, Any], path: Path, *names: str) -> str:
    for name in names:
        if row.get(name) is not None:
            return str(row[name])
    raise UserError(f"a row has none of the columns {', '.join(names)} (columns: {', '.join(row)})", path)


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise UserError("expected file is missing from the download", path)


def _tsv_rows(path: Path, columns: int) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of a TSV, a header row skipped; the last column keeps any tabs inside it."""
    for lineno, fields in iter_tsv_rows(path, IssueLog(strict=True), max_columns=columns):
        if len(fields) != columns:
            raise UserError(f"expected {columns} tab-separated columns, got {len(fields)}", path, lineno)
        yield lineno, fields


def _int_id(value: str, path: Path, lineno: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(f"expected an integer, got {value!r}", path, lineno) from None


def _texts_by_id(path: Path, wanted: set[int]) -> dict[int, str]:
    texts = {}
    for lineno, (raw_id, text) in _tsv_rows(path, 2):
        key = _int_id(raw_id, path, lineno)
        if key in wanted:
            texts[key] = text
    return texts


def _write_jsonl_line(out: TextIO, record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=False) + "\n")


CONVERSIONS: dict[str, Callable[..., Converted]] = {
    "mmarco-train-jsonl": mmarco_to_training_jsonl,
    "t2ranking-beir": t2ranking_to_beir,
    "mteb-beir": mteb_to_beir,
}

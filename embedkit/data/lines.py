"""Stream a text file line by line with 1-based line numbers, decoding each line on its own.

Decoding per line (instead of opening the file as text) lets a stray non-UTF-8 byte be reported on
its own line, and keeps memory flat however large the file is.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from embedkit.data.issues import IssueLog

# First-column names that mark the first row of a TSV as a header (BEIR's ``query-id``, T2Ranking's ``qid``/``pid``).
_HEADER_FIRST_COLUMNS = {"query-id", "query_id", "qid", "pid", "id", "_id", "docid", "doc_id", "corpus-id"}


def iter_lines(path: Path, issues: IssueLog, expected: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` for every non-blank line, without its line ending (``.gz`` files unpacked).

    A file with no content at all is reported as empty; ``expected`` says what it should have held.
    """
    has_content = False
    with (gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")) as f:
        for number, raw in enumerate(f, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark, as some Windows editors write
            if not raw.strip():
                continue
            has_content = True
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                issues.error(
                    f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line", path, number
                )
                continue
            yield number, text.rstrip("\r\n")
    if not has_content:
        issues.error(f"file is empty: expected {expected}", path, 1)


def iter_json_objects(path: Path, issues: IssueLog) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each line of a JSONL file; other lines are reported."""
    for number, text in iter_lines(path, issues, "one JSON object per line"):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            issues.error(f"invalid JSON: {exc.msg} (column {exc.colno})", path, number)
            continue
        if not isinstance(record, dict):
            issues.error(f"expected a JSON object, got {json_type(record)}", path, number)
            continue
        yield number, record


def iter_tsv_rows(path: Path, issues: IssueLog, max_columns: int | None = None) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, fields)`` for each data row of a TSV file, skipping a header on its first row.

    ``max_columns`` keeps tabs inside the last column (a passage's text may contain them).
    """
    header_line = None
    rows = 0
    for number, text in iter_lines(path, issues, "tab-separated rows"):
        fields = text.split("\t", max_columns - 1) if max_columns else text.split("\t")
        if header_line is None and rows == 0 and fields[0].strip().lower() in _HEADER_FIRST_COLUMNS:
            header_line = number
            continue
        rows += 1
        yield number, fields
    if header_line is not None and rows == 0:
        issues.error("no rows below the header", path, header_line)


def iter_tsv_records(path: Path, issues: IssueLog) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line number, {column: value})`` for each row of a TSV file whose first row names its columns."""
    header: list[str] | None = None
    for number, text in iter_lines(path, issues, "a header row, then tab-separated rows"):
        fields = text.split("\t")
        if header is None:
            header = fields
            continue
        if len(fields) != len(header):
            issues.error(f"expected {len(header)} tab-separated columns as in the header, got {len(fields)}", path, number)
            continue
        yield number, dict(zip(header, fields, strict=True))


def json_type(value: Any) -> str:
    """How JSON would name the type of ``value``, for messages such as "got a string"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"

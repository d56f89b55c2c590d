"""A plain list of texts to encode: a ``.txt`` file, one text per line, or a ``.jsonl`` file with a ``text`` field.

The texts come back in file order, so row i of what is encoded from them is the i-th text. Every text must
hold something other than whitespace: a blank line inside a ``.txt`` file is an error rather than skipped,
since skipping it would shift every later row against the line it came from (blank lines after the last
text are ignored: they shift nothing). An empty ``text`` in a ``.jsonl`` file is refused alike; blank lines
there are skipped, as in every JSONL file embedkit reads, because rows follow objects, not lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from embedkit.data.issues import IssueLog
from embedkit.data.lines import iter_json_objects, iter_lines, json_type
from embedkit.errors import UserError

TEXT_FIELD = "text"


def read_texts(path: str | Path) -> list[str]:
    """Every text in ``path`` (format by suffix), in order; the first problem is a `UserError` with its line."""
    path = Path(path)
    if not path.is_file():
        raise UserError("not a file" if path.exists() else "no such file or directory", path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return list(_txt_texts(path))
    if suffix == ".jsonl":
        return list(_jsonl_texts(path))
    raise UserError(f"expected a .txt file (one text per line) or a .jsonl file with a {TEXT_FIELD!r} field", path)


def _txt_texts(path: Path) -> Iterator[str]:
    expected_line = 1
    for number, text in iter_lines(path, IssueLog(strict=True), "one text per line"):
        if number != expected_line:  # iter_lines skips blank lines; a gap in the numbers is one
            raise UserError("blank line: every line must hold a text", path, expected_line)
        expected_line = number + 1
        yield text


def _jsonl_texts(path: Path) -> Iterator[str]:
    for number, record in iter_json_objects(path, IssueLog(strict=True)):
        if TEXT_FIELD not in record:
            raise UserError(f"missing field {TEXT_FIELD!r}", path, number)
        text = record[TEXT_FIELD]
        if not isinstance(text, str):
            raise UserError(f"{TEXT_FIELD} must be a string, got {json_type(text)}", path, number)
        if not text.strip():
            raise UserError(f"{TEXT_FIELD} is empty", path, number)
        yield text

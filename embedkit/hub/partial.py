"""What a partial download (``<file>.part``) is a part of, kept beside it in ``<file>.part.json``.

A later run resumes the ``.part`` only when the server confirms, through the validator recorded here,
that its file is still the one those bytes came from; without this record a ``.part`` is never resumed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from embedkit.fsutil import write_json


@dataclass(frozen=True)
class PartRecord:
    url: str
    validator: str  # the server's strong ETag for the file, else its Last-Modified
    total: int | None  # the whole file's size, when the server gave it


def record_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def load(part: Path, url: str) -> PartRecord | None:
    """The record of ``part``, or None when there is no ``.part``, no readable record, or one for another URL."""
    if not part.is_file():
        return None
    try:
        raw = json.loads(record_path(part).read_text(encoding="utf-8"))
        record = PartRecord(raw["url"], raw["validator"], raw["total"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    valid = isinstance(record.validator, str) and (record.total is None or isinstance(record.total, int))
    return record if valid and record.url == url else None


def save(part: Path, record: PartRecord) -> None:
    write_json(record_path(part), asdict(record))


def remove(part: Path) -> None:
    record_path(part).unlink(missing_ok=True)

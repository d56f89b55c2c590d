"""Records of the files a cache entry, export or checkpoint holds, written last and checked before it is used.

A record is ``{name: {"size": bytes, "sha256": hex}}``. An entry is trusted only when every file it records is
there with that size and digest, so a truncated, damaged or half-written entry is detected, not used.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from embedkit.fsutil import sha256_file

FileRecords = dict[str, dict[str, object]]


def file_records(directory: Path, names: Iterable[str]) -> FileRecords:
    return {name: {"size": (directory / name).stat().st_size, "sha256": sha256_file(directory / name)}
            for name in sorted(names)}


def mismatch(directory: Path, records: object) -> Optional[str]:
    """Why the files in ``directory`` do not match ``records`` (None when they all do)."""
    if not isinstance(records, dict) or not records:
        return "no record of its files"
    for name, record in records.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if not isinstance(record, dict) or path.stat().st_size != record.get("size"):
            return f"{name} has {path.stat().st_size} bytes, {record.get('size') if isinstance(record, dict) else '?'} recorded"
        if sha256_file(path) != record.get("sha256"):
            return f"{name} does not match its checksum"
    return None

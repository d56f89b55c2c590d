"""The ``.embedkit-download.json`` manifest kept beside every download.

It records what each downloaded file is (size, sha256, where it came from), so a later run can tell
a complete, verified download from a missing or changed one without going to the network.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embedkit.errors import UserError
from embedkit.fsutil import write_json

MANIFEST_NAME = ".embedkit-download.json"
FORMAT = 1


@dataclass
class FileRecord:
    path: str  # relative to the manifest's directory
    size: int
    sha256: str
    source: str
    verified: bool  # True when the digest matched a published one (registry or --sha256)


@dataclass
class Manifest:
    directory: Path
    files: dict[str, FileRecord] = field(default_factory=dict)
    # how the files came (a hub snapshot's repo/revision/patterns, or a paddlenlp model name)
    origin: dict[str, Any] | None = None
    conversion: dict[str, Any] | None = None
    extracted: dict[str, str] = field(default_factory=dict)  # archive file -> directory it was extracted to

    @property
    def path(self) -> Path:
        return self.directory / MANIFEST_NAME

    def intact(self) -> bool:
        """Every recorded file is still there with its recorded size (a cheap check; no re-hashing)."""
        return bool(self.files) and all(
            (self.directory / rec.path).is_file() and (self.directory / rec.path).stat().st_size == rec.size
            for rec in self.files.values()
        )

    def save(self) -> None:
        write_json(
            self.path,
            {
                "format": FORMAT,
                "files": {name: asdict(rec) for name, rec in sorted(self.files.items())},
                "origin": self.origin,
                "conversion": self.conversion,
                "extracted": self.extracted,
            },
        )


def load_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return Manifest(directory)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(
            directory,
            files={name: FileRecord(**rec) for name, rec in raw.get("files", {}).items()},
            origin=raw.get("origin"),
            conversion=raw.get("conversion"),
            extracted=dict(raw.get("extracted") or {}),
        )
    except (json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise UserError(f"unreadable download manifest ({exc}); delete it to start over", path) from exc


def visible_files(directory: Path) -> list[Path]:
    """Files under ``directory`` except dot-entries at its top: the manifest itself and the hub
    client's bookkeeping under ``.cache/``."""
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and not p.relative_to(directory).parts[0].startswith(".")
    )

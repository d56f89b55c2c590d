"""The ``.embedkit-download.json`` manifest kept beside every download.

It records what each downloaded file is (size, sha256, where it came from), so a later run can tell
a complete, verified download from a missing or changed one without going to the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field

from embedkit.config.validation import Schema, read_json, validate
from embedkit.errors import UserError
from embedkit.fsutil import write_json

MANIFEST_NAME = ".embedkit-download.json"
FORMAT = 1


class FileRecord(Schema):
    path: str  # relative to the manifest's directory
    size: int
    sha256: str
    source: str
    verified: bool  # True when the digest matched a published one (registry or --sha256)


class Manifest(Schema):
    directory: Path = Field(exclude=True)  # where the manifest lives, not written in it
    format: Literal[1] = FORMAT
    files: dict[str, FileRecord] = Field(default_factory=dict)
    # how the files came (a hub snapshot's repo/revision/patterns, or a paddlenlp model name)
    origin: Optional[dict[str, Any]] = None
    conversion: Optional[dict[str, Any]] = None
    extracted: dict[str, str] = Field(default_factory=dict)  # archive file -> directory it was extracted to

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
        data = self.model_dump(mode="json")
        data["files"] = dict(sorted(data["files"].items()))
        write_json(self.path, data)


def load_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return Manifest(directory=directory)
    try:
        data, source = read_json(path)
        if not isinstance(data, dict):
            raise UserError("expected a JSON object", path, 1)
        return validate(Manifest, {**data, "directory": directory}, source)
    except UserError as exc:
        raise UserError(f"unreadable download manifest: {exc.message}; delete it to start over", exc.path,
                        exc.line) from None


def visible_files(directory: Path) -> list[Path]:
    """Files under ``directory`` except dot-entries at its top: the manifest itself and the hub
    client's bookkeeping under ``.cache/``."""
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and not p.relative_to(directory).parts[0].startswith(".")
    )

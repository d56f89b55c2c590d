"""The download registry: which models and datasets `embedkit download NAME` knows, read from registry.yaml."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import ConfigDict, Field, field_validator, model_validator

from embedkit.config.validation import LAX, FieldsError, Schema, read_yaml, validate
from embedkit.errors import UserError
from embedkit.hub.convert import CONVERSIONS

REGISTRY_PATH = Path(__file__).with_name("registry.yaml")

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Written as null where nothing is published or needed; read as empty.
_NULL_MEANS_EMPTY = ("sha256", "allow_patterns", "conversion_options")


class Entry(Schema):
    model_config = ConfigDict(frozen=True)

    name: str
    kind: Literal["model", "dataset"]
    source: Literal["hf", "url", "paddlenlp"]
    size: str
    licence: str
    repo: Optional[str] = None
    url: Optional[str] = None
    revision: Optional[str] = None
    allow_patterns: Annotated[tuple[str, ...], LAX] = ()  # a list in registry.yaml
    # file name (relative to the download) -> published sha256; empty when none is published
    sha256: dict[str, str] = Field(default_factory=dict)
    conversion: Optional[str] = None
    conversion_options: dict[str, Any] = Field(default_factory=dict)
    base_model: Optional[str] = None
    notes: Optional[str] = None

    @property
    def file_name(self) -> str:
        """The file a url entry downloads to."""
        assert self.url is not None
        return _file_name(self.url)

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["sha256"] = self.sha256 or None
        return data

    @model_validator(mode="before")
    @classmethod
    def _as_written(cls, item: Any) -> Any:
        """registry.yaml writes a url entry's one digest as a string, and null for what is not published."""
        if not isinstance(item, dict):
            return item
        item = {key: value for key, value in item.items() if value is not None or key not in _NULL_MEANS_EMPTY}
        if item.get("source") == "url" and "sha256" in item:
            if not isinstance(item["sha256"], str):
                raise FieldsError(("sha256",), "a url entry has one file, so one hex digest")
            item["sha256"] = {_file_name(str(item.get("url", ""))): item["sha256"]}
        return item

    @field_validator("sha256")
    @classmethod
    def _hex_digests(cls, digests: dict[str, str]) -> dict[str, str]:
        for file_name, digest in digests.items():
            if not SHA256_RE.match(digest):
                raise ValueError(f"the digest of {file_name} is not 64 lowercase hex digits")
        return digests

    @field_validator("conversion")
    @classmethod
    def _known_conversion(cls, conversion: Optional[str]) -> Optional[str]:
        if conversion is not None and conversion not in CONVERSIONS:
            raise ValueError(f"unknown conversion '{conversion}' (known: {', '.join(sorted(CONVERSIONS))})")
        return conversion

    @model_validator(mode="after")
    def _complete(self) -> Entry:
        if self.source in ("hf", "paddlenlp") and not self.repo:
            raise FieldsError(("source",), f"a {self.source} entry needs 'repo'")
        if self.source == "url" and not (self.url or "").startswith(("http://", "https://")):
            raise FieldsError(("url", "source"), "a url entry needs an http(s) 'url'")
        if self.conversion is not None and self.kind != "dataset":
            raise FieldsError(("conversion",), "only datasets have a conversion")
        return self


class RegistryFile(Schema):
    # YAML anchors for lists several entries share; read through the aliases in the entries.
    patterns: dict[str, Any] = Field(default_factory=dict)
    entries: list[dict[str, Any]]


def load_registry(path: Path = REGISTRY_PATH) -> dict[str, Entry]:
    """Read and check the registry; a broken registry is reported as ``path:line: entry 'x': problem``."""
    data, source = read_yaml(path)
    registry = validate(RegistryFile, data, source)
    entries: dict[str, Entry] = {}
    for index, item in enumerate(registry.entries):
        name = item.get("name")
        entry = validate(Entry, item, source, at=("entries", index), label=f"entry '{name}'" if name else "entry")
        if entry.name in entries:
            raise UserError(f"entry '{entry.name}' is listed twice", *entry.where("name"))
        entries[entry.name] = entry
    for entry in entries.values():
        if entry.base_model is not None and entry.base_model not in entries:
            raise UserError(f"entry '{entry.name}': base_model '{entry.base_model}' is not in the registry",
                            *entry.where("base_model"))
    return entries


def find_entry(name: str, entries: dict[str, Entry]) -> Entry:
    """Look an entry up by its name or, for Hugging Face entries, its repo id (case-insensitive)."""
    wanted = name.lower()
    for entry in entries.values():
        if entry.name.lower() == wanted or (entry.source == "hf" and (entry.repo or "").lower() == wanted):
            return entry
    close = difflib.get_close_matches(wanted, [e.name for e in entries.values()], n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UserError(
        f"'{name}' is neither a registry name nor an http(s) URL.{hint} "
        "`embedkit download --list` shows what the registry holds."
    )


def _file_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]

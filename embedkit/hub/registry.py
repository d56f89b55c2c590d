"""The download registry: which models and datasets `embedkit download NAME` knows, read from registry.yaml."""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from embedkit.errors import UserError
from embedkit.hub.convert import CONVERSIONS

REGISTRY_PATH = Path(__file__).with_name("registry.yaml")

KINDS = ("model", "dataset")
SOURCES = ("hf", "url", "paddlenlp")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = {
    "name", "kind", "source", "repo", "url", "revision", "size", "licence", "allow_patterns",
    "sha256", "conversion", "conversion_options", "base_model", "notes",
}  # fmt: skip


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    source: str
    size: str
    licence: str
    repo: str | None = None
    url: str | None = None
    revision: str | None = None
    allow_patterns: tuple[str, ...] = ()
    # file name (relative to the download) -> published sha256; empty when none is published
    sha256: dict[str, str] = field(default_factory=dict)
    conversion: str | None = None
    conversion_options: dict[str, Any] = field(default_factory=dict)
    base_model: str | None = None
    notes: str | None = None

    @property
    def file_name(self) -> str:
        """The file a url entry downloads to."""
        assert self.url is not None
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["allow_patterns"] = list(self.allow_patterns)
        data["sha256"] = self.sha256 or None
        return data


def load_registry(path: Path = REGISTRY_PATH) -> dict[str, Entry]:
    """Read and check the registry; a broken registry is reported as ``path: entry 'x': problem``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"not valid YAML: {exc}", path, mark.line + 1 if mark else None) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise UserError("expected a mapping with an 'entries' list", path)
    entries: dict[str, Entry] = {}
    for item in raw["entries"]:
        entry = _parse_entry(item, path)
        if entry.name in entries:
            raise UserError(f"entry '{entry.name}' is listed twice", path)
        entries[entry.name] = entry
    for entry in entries.values():
        if entry.base_model is not None and entry.base_model not in entries:
            raise UserError(f"entry '{entry.name}': base_model '{entry.base_model}' is not in the registry", path)
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


def _parse_entry(item: Any, path: Path) -> Entry:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise UserError(f"every entry needs a name; got {item!r}", path)
    name = item["name"]

    def bad(problem: str) -> UserError:
        return UserError(f"entry '{name}': {problem}", path)

    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise bad(f"unknown field(s) {', '.join(unknown)}")
    for required in ("kind", "source", "size", "licence"):
        if not isinstance(item.get(required), str):
            raise bad(f"'{required}' is required")
    if item["kind"] not in KINDS:
        raise bad(f"kind must be one of {', '.join(KINDS)}")
    if item["source"] not in SOURCES:
        raise bad(f"source must be one of {', '.join(SOURCES)}")
    if item["source"] in ("hf", "paddlenlp") and not item.get("repo"):
        raise bad(f"a {item['source']} entry needs 'repo'")
    if item["source"] == "url" and not str(item.get("url", "")).startswith(("http://", "https://")):
        raise bad("a url entry needs an http(s) 'url'")
    if item.get("conversion") is not None:
        if item["kind"] != "dataset":
            raise bad("only datasets have a conversion")
        if item["conversion"] not in CONVERSIONS:
            raise bad(f"unknown conversion '{item['conversion']}' (known: {', '.join(sorted(CONVERSIONS))})")

    url = item.get("url")
    sha256 = _parse_sha256(item.get("sha256"), url if item["source"] == "url" else None, bad)
    return Entry(
        name=name,
        kind=item["kind"],
        source=item["source"],
        size=item["size"],
        licence=item["licence"],
        repo=item.get("repo"),
        url=url,
        revision=item.get("revision"),
        allow_patterns=tuple(item.get("allow_patterns") or ()),
        sha256=sha256,
        conversion=item.get("conversion"),
        conversion_options=dict(item.get("conversion_options") or {}),
        base_model=item.get("base_model"),
        notes=item.get("notes"),
    )


def _parse_sha256(value: Any, url: str | None, bad) -> dict[str, str]:
    if value is None:
        return {}
    if url is not None:  # a url entry has one file, so one digest
        if not isinstance(value, str):
            raise bad("sha256 of a url entry is one hex digest")
        value = {url.rstrip("/").rsplit("/", 1)[-1]: value}
    if not isinstance(value, dict):
        raise bad("sha256 must map file names to hex digests")
    for file_name, digest in value.items():
        if not SHA256_RE.match(str(digest)):
            raise bad(f"sha256 of {file_name} is not 64 lowercase hex digits")
    return {str(k): str(v) for k, v in value.items()}

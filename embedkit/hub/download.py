"""`embedkit download`: fetch a registry entry or any URL into the cache, verify it and record it.

Where things go: ``$EMBEDKIT_HOME`` (or ``~/.cache/embedkit``) ``/models/<name>`` and
``/datasets/<name>``; plain URLs go to ``downloads/``; ``--to DIR`` puts them in DIR instead. A directory
embedkit fills whole (a PaddleNLP model, an extracted archive) is replaced only when it is empty or was
filled by embedkit before; one holding anything else is refused, never deleted.
A dataset with a conversion keeps the upstream files under ``<dir>/source/`` and puts embedkit's
layout at ``<dir>`` itself. Each directory holds a ``.embedkit-download.json`` manifest, so a rerun
finds complete, verified files and does not fetch them again (``force`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from embedkit import paths
from embedkit.errors import UserError
from embedkit.fsutil import check_dir_target, sha256_file
from embedkit.hub import hf, paddle_store
from embedkit.hub.archive import ARCHIVE_SUFFIXES, archive_stem, extract_archive
from embedkit.hub.convert import CONVERSIONS
from embedkit.hub.manifest import MANIFEST_NAME, FileRecord, Manifest, load_manifest, visible_files
from embedkit.hub.registry import SHA256_RE, Entry, find_entry, load_registry
from embedkit.hub.transfer import RetryPolicy, fetch_file

SOURCE_SUBDIR = "source"


@dataclass
class FetchResult:
    name: str
    kind: str  # model | dataset | file
    source: str  # the URL, hf:<repo>[@revision] or paddlenlp:<name>
    path: Path  # what to hand to embedkit: the file, the extracted or converted directory, the model directory
    files: list[FileRecord]
    downloaded: bool  # False when everything was already present and verified
    extracted_to: Path | None = None
    conversion: dict[str, Any] | None = None  # name, outputs, counts
    base_models: list[FetchResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "path": str(self.path),
            "downloaded": self.downloaded,
            "files": [rec.model_dump() for rec in self.files],
            "extracted_to": str(self.extracted_to) if self.extracted_to else None,
            "conversion": self.conversion,
            "base_models": [base.to_dict() for base in self.base_models],
            "notes": self.notes,
        }


def fetch(
    name_or_url: str,
    *,
    sha256: str | None = None,
    extract: bool = False,
    to: Path | None = None,
    force: bool = False,
    policy: RetryPolicy = RetryPolicy(),
    registry: dict[str, Entry] | None = None,
    hf_downloader: hf.Downloader | None = None,
    paddlenlp_saver: paddle_store.Saver | None = None,
) -> FetchResult:
    """Fetch a registry entry (by name, or an hf entry by repo id) or an http(s) URL.

    ``hf_downloader`` and ``paddlenlp_saver`` replace the real hub/PaddleNLP calls (tests).
    """
    if sha256 is not None and not SHA256_RE.match(sha256.lower()):
        raise UserError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    if name_or_url.startswith(("http://", "https://")):
        directory = to or paths.home() / "downloads"
        check_dir_target(directory)  # before any request: a wrong --to should not cost a download
        return _fetch_url(name_or_url, directory, _file_name_of(name_or_url), sha256, extract, force, policy)

    entries = registry if registry is not None else load_registry()
    entry = find_entry(name_or_url, entries)
    if sha256 is not None and entry.source != "url":
        raise UserError(f"--sha256 applies to a single-file download; {entry.name} is fetched from {entry.source}")
    if extract and entry.source != "url":
        raise UserError(f"--extract applies to archive downloads; {entry.name} is fetched from {entry.source}")
    target = to or paths.home() / f"{entry.kind}s" / entry.name
    check_dir_target(target)

    if entry.source == "url":
        assert entry.url is not None
        result = _fetch_url(entry.url, target, entry.file_name, sha256 or entry.sha256.get(entry.file_name), extract, force, policy)
        result.name, result.kind = entry.name, entry.kind
        if entry.notes:
            result.notes.append(entry.notes)
    elif entry.source == "hf":
        result = _fetch_hf(entry, target, force, hf_downloader)
    else:
        result = _fetch_paddlenlp(entry, target, force, paddlenlp_saver)

    if entry.base_model is not None:
        # the base goes to its own cache entry, shared by every adapter built on it
        result.base_models.append(
            fetch(entry.base_model, force=force, policy=policy, registry=entries, hf_downloader=hf_downloader, paddlenlp_saver=paddlenlp_saver)
        )
    return result


# ---------------------------------------------------------------------------------------------
# plain URLs


def _file_name_of(url: str) -> str:
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    if not name or "/" in name or "\\" in name:
        raise UserError(f"cannot tell a file name from {url}")
    if name.startswith("."):  # the manifest and partial downloads live in such names
        raise UserError(f"{url} names a hidden file ({name}); embedkit does not download to hidden names")
    return name


def _fetch_url(url: str, directory: Path, file_name: str, sha256: str | None, extract: bool, force: bool, policy: RetryPolicy) -> FetchResult:
    stem = archive_stem(file_name)
    if extract and stem is None:  # before any transfer: a wrong flag should not cost a download
        raise UserError(f"--extract: {file_name} is not one of {', '.join(ARCHIVE_SUFFIXES)}")
    expected = sha256.lower() if sha256 else None
    manifest = load_manifest(directory)
    if extract:
        assert stem is not None
        destination = directory / stem
        ours = manifest.extracted.get(file_name) == stem
        replace = _replaceable(destination, ours)  # before any transfer, as the flag check above
    target = directory / file_name
    notes: list[str] = []

    record = None if force else _present_file(target, manifest.files.get(file_name), expected, url, notes)
    downloaded = record is None
    if record is None:
        digest, size = fetch_file(url, target, sha256=expected, policy=policy)
        record = FileRecord(path=file_name, size=size, sha256=digest, source=url, verified=expected is not None)
    manifest.files[file_name] = record
    manifest.save()

    result = FetchResult(file_name, "file", url, target, [record], downloaded, notes=notes)
    if extract:
        if force or downloaded or not ours or not destination.is_dir():
            extract_archive(target, destination, replace=replace)
            manifest.extracted[file_name] = stem
            manifest.save()
        result.extracted_to = destination
        result.path = destination
    return result


def _replaceable(directory: Path, ours: bool) -> bool:
    """Whether ``directory``, about to be filled whole, may be replaced: it is ours, or empty, or absent.

    Anything else there is the user's, and is refused before any transfer rather than deleted.
    """
    if not directory.exists():
        return False
    if directory.is_dir() and (ours or not any(directory.iterdir())):
        return True
    raise UserError("is in the way: embedkit did not create it, and replaces only what it created "
                    "(move it away, or pick another --to)", directory)


def _present_file(target: Path, recorded: FileRecord | None, expected: str | None, url: str, notes: list[str]) -> FileRecord | None:
    """The record of a file already at ``target`` that can be trusted, or None when it must be fetched."""
    if not target.is_file():
        return None
    digest = sha256_file(target)
    if expected is not None:
        if digest == expected:
            return FileRecord(path=target.name, size=target.stat().st_size, sha256=digest, source=url, verified=True)
        notes.append(f"{target} did not match the expected sha256 ({digest}); downloading it again")
        return None
    if recorded is not None:
        if recorded.sha256 == digest:
            return recorded
        notes.append(f"{target} changed since it was downloaded (sha256 {digest}); downloading it again")
        return None
    # not downloaded by us (no manifest entry) and no published digest: a file put there by hand
    notes.append(f"found {target} in place; no sha256 is published, so its digest {digest} was recorded as is")
    return FileRecord(path=target.name, size=target.stat().st_size, sha256=digest, source=url, verified=False)


# ---------------------------------------------------------------------------------------------
# Hugging Face entries


def _fetch_hf(entry: Entry, target: Path, force: bool, downloader: hf.Downloader | None) -> FetchResult:
    snapshot_dir = target / SOURCE_SUBDIR if entry.conversion else target
    origin = {"hf": entry.repo, "revision": entry.revision, "kind": entry.kind, "allow_patterns": list(entry.allow_patterns)}
    manifest = load_manifest(target)
    source = f"hf:{entry.repo}" + (f"@{entry.revision}" if entry.revision else "")

    downloaded = force or manifest.origin != origin or not manifest.intact()
    if downloaded:
        files = hf.snapshot(entry, snapshot_dir, force=force, downloader=downloader)
        manifest.files = {}
        for path in files:
            relative = path.relative_to(target).as_posix()
            manifest.files[relative] = _hashed_record(path, relative, entry, snapshot_dir, source)
        manifest.origin = origin
        manifest.conversion = None  # a new snapshot invalidates the old conversion
        manifest.save()

    result = FetchResult(entry.name, entry.kind, source, target, list(manifest.files.values()), downloaded)
    if entry.notes:
        result.notes.append(entry.notes)
    if entry.conversion:
        result.conversion = _convert(entry, snapshot_dir, target, manifest, force)
    return result


def _hashed_record(path: Path, relative: str, entry: Entry, snapshot_dir: Path, source: str) -> FileRecord:
    digest = sha256_file(path)
    expected = entry.sha256.get(path.relative_to(snapshot_dir).as_posix())
    if expected is not None and digest != expected:
        path.unlink()
        raise UserError(f"sha256 mismatch for {entry.repo}: expected {expected}, got {digest}; the file was deleted", path)
    return FileRecord(path=relative, size=path.stat().st_size, sha256=digest, source=source,
                      verified=expected is not None)


def _convert(entry: Entry, snapshot_dir: Path, target: Path, manifest: Manifest, force: bool) -> dict[str, Any]:
    assert entry.conversion is not None
    wanted = {"name": entry.conversion, "options": entry.conversion_options}
    done = manifest.conversion
    if (
        not force
        and done is not None
        and {k: done.get(k) for k in wanted} == wanted
        and all((target / output).is_file() for output in done.get("outputs", []))
    ):
        return done
    converted = CONVERSIONS[entry.conversion](snapshot_dir, target, **entry.conversion_options)
    manifest.conversion = {
        **wanted,
        "outputs": [path.relative_to(target).as_posix() for path in converted.outputs],
        "counts": converted.counts,
    }
    manifest.save()
    return manifest.conversion


# ---------------------------------------------------------------------------------------------
# PaddleNLP model store entries


def _fetch_paddlenlp(entry: Entry, target: Path, force: bool, saver: paddle_store.Saver | None) -> FetchResult:
    origin = {"paddlenlp": entry.repo}
    manifest = load_manifest(target)
    source = f"paddlenlp:{entry.repo}"
    notes = [entry.notes] if entry.notes else []

    present = manifest.origin == origin and manifest.intact()
    # files copied in by hand (the offline instructions say to) are recorded rather than replaced
    placed_by_hand = not present and manifest.origin is None and target.is_dir() and any(visible_files(target))
    downloaded = force or not (present or placed_by_hand)
    if downloaded:
        paddle_store.fetch_paddlenlp(entry, target, saver=saver, replace=_replaceable(target, (target / MANIFEST_NAME).is_file()))
    if downloaded or placed_by_hand:
        if placed_by_hand and not force:
            notes.append(f"found {entry.repo} in place at {target}; recorded it as is (no sha256 is published)")
        manifest = Manifest(directory=target, origin=origin)
        for path in visible_files(target):
            relative = path.relative_to(target).as_posix()
            manifest.files[relative] = FileRecord(path=relative, size=path.stat().st_size,
                                                  sha256=sha256_file(path), source=source, verified=False)
        manifest.save()
    return FetchResult(entry.name, entry.kind, source, target, list(manifest.files.values()), downloaded, notes=notes)

"""Plain HTTP(S) downloads with resume, retries, checksum verification and an atomic rename.

The bytes go to ``<target>.part`` and what they are a part of to ``<target>.part.json`` (partial.py):
the URL, the server's validator for the file (its ETag, else its Last-Modified) and its size. An
interrupted transfer (by the server, the network, Ctrl-C or a kill) leaves both behind, and the next
attempt, in this process or a later one, asks only for the rest: a ``Range`` with the validator as
``If-Range``, so a server whose file changed sends the whole new file instead. A server that gives no
validator cannot confirm that a partial file is of its current file, so such a download starts over.
Only a complete file (the size the server announced) whose sha256 matches (when one is known) is
renamed onto ``target``.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.text import Text

from embedkit import __version__, console
from embedkit.errors import UserError
from embedkit.fsutil import no_space_message, sha256_file
from embedkit.hub import partial
from embedkit.hub.partial import PartRecord

CHUNK_SIZE = 1 << 16
USER_AGENT = f"embedkit/{__version__}"
RETRY_AFTER_STATUSES = (429, 503)
# A file whose name ends so may legitimately be served as text/html; any other name served so is a web page.
HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml")
# Titles of the listings Apache, nginx and lighttpd ("Index of /dir/") and Python's http.server write.
LISTING_MARKERS = (b"<title>index of ", b"<title>directory listing for ")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Tests pass tiny waits; the defaults suit a real, occasionally flaky server."""

    attempts: int = 5  # consecutive failed attempts (no new bytes) before giving up
    backoff: float = 1.0  # first wait in seconds; doubles after each failed attempt
    max_backoff: float = 30.0
    max_retry_after: float = 120.0  # cap on a server's Retry-After (429/503)
    timeout: float = 30.0  # socket timeout per connect/read


class _Unreachable(Exception):
    """The host cannot be reached in a way retrying will not fix (its name does not resolve)."""


class _Retry(Exception):
    """One attempt failed in a way worth another try; ``wait`` overrides the backoff (Retry-After).

    ``network`` marks failures to connect or stay connected (as opposed to a server answering 5xx):
    when those exhaust the retries, the likely cause is no network, and the message says so.
    """

    def __init__(self, reason: str, wait: float | None = None, network: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.network = network


def fetch_file(url: str, target: Path, *, sha256: str | None = None, policy: RetryPolicy = RetryPolicy()) -> tuple[str, int]:
    """Download ``url`` to ``target``; return ``(sha256, size)`` of the file now at ``target``.

    A sha256 mismatch deletes the download and raises a UserError; so does a server that cannot be
    reached, with the exact path where the file can be put by hand.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    with _progress_bar(target.name) as progress:
        _Transfer(url, part, target, policy, progress).run()
    digest = sha256_file(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        partial.remove(part)
        raise UserError(f"sha256 mismatch for {url}: expected {sha256.lower()}, got {digest}; the download was deleted", target)
    size = part.stat().st_size
    # same directory, so the rename is atomic: target is either absent or complete
    os.replace(part, target)
    partial.remove(part)
    return digest, size


@dataclass
class _Transfer:
    """Fills ``part`` with the whole resource, one request per attempt, resuming what is there."""

    url: str
    part: Path
    target: Path
    policy: RetryPolicy
    progress: _TransferProgress

    def __post_init__(self) -> None:
        # what the .part holds, from this run or an earlier one; None: nothing that can be resumed
        self.record: PartRecord | None = partial.load(self.part, self.url)

    def run(self) -> None:
        failures = 0
        longest = self._resumable()
        if not longest and self.part.is_file() and self.part.stat().st_size:
            _note(f"{self.part}: no record of which file it is a part of (or it is of another URL); starting over")
        while True:
            try:
                self._attempt(self._resumable())
                return
            except _Unreachable as exc:
                raise _unreachable(self.url, self.target, self.part, str(exc)) from None
            except _Retry as retry:
                # a transfer that moved forward before failing does not use up the retry budget:
                # resuming a large file over a flaky link should not give up after a few cuts. Bytes
                # that cannot be resumed (no validator) are no progress: such a file must come whole.
                made_progress = self._resumable() > longest
                longest = max(longest, self._resumable())
                failures = 1 if made_progress else failures + 1
                if failures >= self.policy.attempts:
                    raise self._gave_up(retry) from None
                backoff = min(self.policy.backoff * 2 ** (failures - 1), self.policy.max_backoff)
                wait = retry.wait if retry.wait is not None else backoff
                console.get().debug(f"{self.url}: {retry.reason}; retrying in {wait:.2f}s")
                time.sleep(wait)

    def _resumable(self) -> int:
        """Bytes of the .part a Range request may continue: none without a record of what they are."""
        return self.part.stat().st_size if self.record is not None and self.part.is_file() else 0

    def _attempt(self, have: int) -> None:
        """One request. Raises _Retry for transient trouble, _Unreachable or UserError for the rest."""
        request = urllib.request.Request(self.url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        if have:
            assert self.record is not None
            request.add_header("Range", f"bytes={have}-")
            # the server sends the range only if its file still has this validator, else the whole file
            request.add_header("If-Range", self.record.validator)
        try:
            with urllib.request.urlopen(request, timeout=self.policy.timeout) as response:
                self._receive(response, have)
        except urllib.error.HTTPError as exc:
            self._http_error(exc, have)
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, socket.gaierror):
                # a name that does not resolve will not resolve on retry either: say so now
                raise _Unreachable(f"cannot resolve the host name ({exc.reason})") from None
            raise _Retry(f"connection failed ({exc.reason})", network=True) from None
        except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
            raise _Retry(f"transfer interrupted ({type(exc).__name__}: {exc})", network=True) from None

    def _gave_up(self, retry: _Retry) -> UserError:
        attempts = self.policy.attempts
        if retry.network:
            return _unreachable(self.url, self.target, self.part, f"{retry.reason}, {attempts} attempts")
        return UserError(f"giving up on {self.url} after {attempts} attempts: {retry.reason}", self.target)

    def _http_error(self, exc: urllib.error.HTTPError, have: int) -> None:
        if exc.code == 416 and have:
            # nothing past what we hold: the .part is complete, or it is longer than the file and useless
            assert self.record is not None
            total = _total_from_content_range(exc.headers.get("Content-Range"))
            if total == have and self.record.total in (None, have):
                return
            self._discard()
            raise _Retry("the partial file did not match the server's; starting over") from None
        if exc.code in RETRY_AFTER_STATUSES:
            raise _Retry(f"HTTP {exc.code} {exc.reason}", _retry_after(exc.headers.get("Retry-After"), self.policy)) from None
        if 500 <= exc.code < 600:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise UserError(f"the server answered HTTP {exc.code} {exc.reason} for {self.url}") from None

    def _receive(self, response: http.client.HTTPResponse, have: int) -> None:
        first = response.read(CHUNK_SIZE)
        _refuse_web_page(self.url, self.target.name, response.headers, first)
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None  # bytes in this response
        if have and response.status == 206:
            total = self._confirm_same_file(response.headers, have)
        else:
            # 200: the whole file, because we asked for all of it, or the server ignored our Range, or
            # its file changed since the .part began (If-Range): start the .part again
            if have:
                _note(f"{self.part}: the server sent the whole file (it changed since, or it does not resume); "
                      "starting over")
            have, total = 0, expected
        self.progress.start(total, have)
        received = 0
        try:
            with no_space_message(self.part):
                if not have:
                    self._start_over(_validator(response.headers), total)
                free = shutil.disk_usage(self.part.parent).free
                if total is not None and total - have > free:
                    raise UserError(f"no space left on device: {total - have} more bytes needed, {free} free")
                with self.part.open("ab") as out:
                    chunk = first
                    while chunk:
                        out.write(chunk)
                        received += len(chunk)
                        self.progress.advance(len(chunk))
                        chunk = response.read(CHUNK_SIZE)
        except UserError as full:  # the disk is full (no_space_message, or too little room for the total)
            raise self._disk_full(full.message) from None
        if expected is not None and received < expected:
            raise _Retry(f"connection closed after {have + received} of {have + expected} bytes", network=True)
        size = have + received
        if total is not None and size != total:
            if size > total:
                self._discard()
            raise _Retry(f"the server sent {size} bytes of a {total}-byte file; {'resuming' if size < total else 'starting over'}")

    def _confirm_same_file(self, headers: Message, have: int) -> int | None:
        """The file's size, after checking that a 206 continues the very file the .part holds (servers that
        ignore If-Range are caught here too)."""
        assert self.record is not None
        content_range = headers.get("Content-Range")
        start, total = _start_from_content_range(content_range), _total_from_content_range(content_range)
        validator = _validator(headers)
        if start != have:
            problem = f"resumed at byte {start}, not {have}"
        elif self.record.total is not None and total != self.record.total:
            problem = f"now has {total} bytes, not {self.record.total}"
        elif validator is not None and validator != self.record.validator:
            problem = f"now has the validator {validator}, not {self.record.validator}"
        else:
            return total
        self._discard()
        raise _Retry(f"the server's file {problem}; starting over")

    def _start_over(self, validator: str | None, total: int | None) -> None:
        """Empty the .part, then record what it will hold: a kill between the two leaves nothing to resume."""
        with self.part.open("wb"):
            pass
        if validator is None:
            partial.remove(self.part)
            return
        self.record = PartRecord(self.url, validator, total)
        partial.save(self.part, self.record)

    def _discard(self) -> None:
        self.part.unlink(missing_ok=True)
        partial.remove(self.part)
        self.record = None

    def _disk_full(self, reason: str) -> UserError:
        have = self._resumable()
        if have:
            assert self.record is not None
            of = f" of {self.record.total}" if self.record.total is not None else ""
            fate = (f"the partial download ({have}{of} bytes, with {partial.record_path(self.part).name}) is kept "
                    "and resumes when this command is rerun with space free")
        else:
            unresumable = self.part.is_file() and self.part.stat().st_size > 0
            self._discard()
            fate = ("the partial download was deleted (without an ETag or Last-Modified from the server it could "
                    "not be resumed)" if unresumable else "nothing was written")
        return UserError(f"{reason}; {fate}", self.part)


def _validator(headers: Message) -> str | None:
    """What identifies this version of the file: a strong ETag, else Last-Modified (If-Range takes no weak ETag)."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


def _refuse_web_page(url: str, file_name: str, headers: Message, first: bytes) -> None:
    """A directory listing or an HTML page where a file was asked for is refused, not saved as the file."""
    if headers.get_content_type() != "text/html":
        return
    if not file_name.lower().endswith(HTML_SUFFIXES):
        raise UserError(f"answers with a web page (Content-Type text/html), not the file {file_name}: a directory "
                        "listing, or a login or error page? Give the URL of the file itself", url)
    if any(marker in first.lower() for marker in LISTING_MARKERS):
        raise UserError("is a directory listing, not a file; give the URL of a file in it", url)


def _note(message: str) -> None:
    console.get().info(Text(message))  # Text: a path or URL with [brackets] is not rich markup


def _start_from_content_range(value: str | None) -> int | None:
    # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0]) if value else None
    except (IndexError, ValueError):
        return None


def _total_from_content_range(value: str | None) -> int | None:
    # "bytes */200" (with 416) or "bytes 100-199/200"
    try:
        return int(value.rsplit("/", 1)[1]) if value else None
    except (IndexError, ValueError):
        return None


def _retry_after(value: str | None, policy: RetryPolicy) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped; None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(seconds, policy.max_retry_after))


def _unreachable(url: str, target: Path, part: Path, reason: str) -> UserError:
    host = urlsplit(url).hostname or url
    kept = f" The partial download at {part} resumes next time." if part.exists() else ""
    return UserError(
        f"cannot download {url} from {host}: {reason}. No network? Fetch the file on a machine that has "
        f"access and put it at {target}, then rerun this command: a file already in place is verified "
        f"and recorded instead of downloaded.{kept}"
    )


class _TransferProgress:
    def __init__(self, progress: Progress, description: str):
        self._progress = progress
        self._task = progress.add_task(description, total=None)

    def start(self, total: int | None, completed: int) -> None:
        self._progress.update(self._task, total=total, completed=completed)

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)


@contextlib.contextmanager
def _progress_bar(description: str) -> Iterator[_TransferProgress]:
    """A rich progress bar on stderr (bytes, bytes/s, time left); silent with --quiet."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console.get().err) as progress:
        yield _TransferProgress(progress, description)

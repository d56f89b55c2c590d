"""Plain HTTP(S) downloads with resume, retries, checksum verification and an atomic rename.

The bytes go to ``<target>.part``; an interrupted transfer (by the server, the network or Ctrl-C)
leaves that file behind, and the next attempt asks only for the rest with a ``Range`` header. Only a
complete file whose sha256 matches (when one is known) is renamed onto ``target``.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from embedkit import __version__, console
from embedkit.errors import UserError
from embedkit.fsutil import sha256_file

CHUNK_SIZE = 1 << 16
USER_AGENT = f"embedkit/{__version__}"
RETRY_AFTER_STATUSES = (429, 503)


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
        raise UserError(f"sha256 mismatch for {url}: expected {sha256.lower()}, got {digest}; the download was deleted", target)
    size = part.stat().st_size
    # same directory, so the rename is atomic: target is either absent or complete
    os.replace(part, target)
    return digest, size


@dataclass
class _Transfer:
    """Fills ``part`` with the whole resource, one request per attempt, resuming what is there."""

    url: str
    part: Path
    target: Path
    policy: RetryPolicy
    progress: _TransferProgress
    # the first response's ETag/Last-Modified, sent back as If-Range: if the file changed on the
    # server since our first bytes, the server answers with the whole new file instead of a range
    validator: str | None = None

    def run(self) -> None:
        failures = 0
        while True:
            have = self.part.stat().st_size if self.part.exists() else 0
            try:
                self._attempt(have)
                return
            except _Unreachable as exc:
                raise _unreachable(self.url, self.target, self.part, str(exc)) from None
            except _Retry as retry:
                made_progress = self.part.exists() and self.part.stat().st_size > have
                # a transfer that moved forward before failing does not use up the retry budget:
                # resuming a large file over a flaky link should not give up after a few cuts
                failures = 1 if made_progress else failures + 1
                if failures >= self.policy.attempts:
                    raise self._gave_up(retry) from None
                backoff = min(self.policy.backoff * 2 ** (failures - 1), self.policy.max_backoff)
                wait = retry.wait if retry.wait is not None else backoff
                console.get().debug(f"{self.url}: {retry.reason}; retrying in {wait:.2f}s")
                time.sleep(wait)

    def _attempt(self, have: int) -> None:
        """One request. Raises _Retry for transient trouble, _Unreachable or UserError for the rest."""
        request = urllib.request.Request(self.url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        if have:
            request.add_header("Range", f"bytes={have}-")
            if self.validator:
                request.add_header("If-Range", self.validator)
        try:
            with urllib.request.urlopen(request, timeout=self.policy.timeout) as response:
                self.validator = response.headers.get("ETag") or response.headers.get("Last-Modified") or self.validator
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
            if _total_from_content_range(exc.headers.get("Content-Range")) == have:
                return
            self.part.unlink()
            raise _Retry("the partial file did not match the server's; starting over") from None
        if exc.code in RETRY_AFTER_STATUSES:
            raise _Retry(f"HTTP {exc.code} {exc.reason}", _retry_after(exc.headers.get("Retry-After"), self.policy)) from None
        if 500 <= exc.code < 600:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise UserError(f"the server answered HTTP {exc.code} {exc.reason} for {self.url}") from None

    def _receive(self, response: http.client.HTTPResponse, have: int) -> None:
        if have and response.status == 206:
            start = _start_from_content_range(response.headers.get("Content-Range"))
            if start != have:
                self.part.unlink()
                raise _Retry(f"the server resumed at byte {start}, not {have}; starting over")
            mode = "ab"
        else:
            # 200: the whole file, because we asked for all of it, or the server ignored our Range,
            # or the file changed (If-Range): start the .part again
            mode, have = "wb", 0
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        self.progress.start(None if expected is None else have + expected, have)
        received = 0
        with self.part.open(mode) as out:
            while chunk := response.read(CHUNK_SIZE):
                out.write(chunk)
                received += len(chunk)
                self.progress.advance(len(chunk))
        if expected is not None and received < expected:
            raise _Retry(f"connection closed after {have + received} of {have + expected} bytes", network=True)


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

"""Fault-injection fixtures: a loopback HTTP server whose files change, and writes that hit a full disk.

The server speaks enough HTTP/1.1 for resumable downloads: ETag and Last-Modified validators, ``Range:
bytes=N-`` with ``If-Range`` (a validator that no longer matches gets the whole new file, as RFC 9110
says), 416 past the end. One-shot faults per file: drop the connection after N bytes (``kill_after``),
stall after N bytes until the test lets go (``stall_after``, for killing the client mid-file), or answer
a range with a wrong length (``lie``). It listens on 127.0.0.1 only and is stopped by the fixture.
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import os
import pathlib
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

STALL_LIMIT_S = 20.0  # a stalled response gives up by itself, so a failing test cannot hang the suite


@dataclass
class Resource:
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str
    send_length: bool  # False: no Content-Length on a 200, the body ends when the connection closes
    kill_after: int | None = None
    stall_after: int | None = None
    lie: str | None = None  # "short": a 206 that ends 1000 bytes early; "long": one 100 bytes past the end


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int = 0  # what the server answered


@dataclass
class ChangingServer:
    files: dict[str, Resource] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    version: int = 0
    port: int = 0
    release: threading.Event = field(default_factory=threading.Event)  # lets stalled responses finish

    def put(self, path: str, body: bytes, *, validators: tuple[str, ...] = ("etag", "last-modified"),
            content_type: str = "application/octet-stream", send_length: bool = True) -> str:
        """Serve ``body`` at ``path`` from now on, with fresh validators (a new version of the file)."""
        self.version += 1
        digest = hashlib.sha256(body).hexdigest()[:16]
        etag = f'"{digest}"' if "etag" in validators else f'W/"{digest}"' if "weak-etag" in validators else None
        # one second per version, so two versions never share a Last-Modified
        modified = email.utils.formatdate(1_700_000_000 + self.version, usegmt=True) if "last-modified" in validators else None
        self.files[path] = Resource(body, etag, modified, content_type, send_length)
        return self.url(path)

    def fault(self, path: str, **one_shot: object) -> None:
        for name, value in one_shot.items():
            setattr(self.files[path], name, value)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests_for(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]


def _handler(server: ChangingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            seen = Seen(self.path, dict(self.headers.items()))
            server.seen.append(seen)
            resource = server.files.get(self.path)
            if resource is None:
                return self._answer(seen, 404, {}, b"")
            body, start = resource.body, self._range_start(resource)
            headers = {"Content-Type": resource.content_type}
            if resource.etag:
                headers["ETag"] = resource.etag
            if resource.last_modified:
                headers["Last-Modified"] = resource.last_modified
            if start is not None and start >= len(body):
                return self._answer(seen, 416, {"Content-Range": f"bytes */{len(body)}"}, b"")
            if start is None:
                if not resource.send_length:
                    self.close_connection = True  # the end of the body is the end of the connection
                return self._answer(seen, 200, headers, body, length=resource.send_length)
            part, end = body[start:], len(body) - 1
            if resource.lie == "short":
                part, end = part[:-1000], end - 1000
            elif resource.lie == "long":
                part, end = part + b"\0" * 100, end + 100
            resource.lie = None
            headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
            return self._answer(seen, 206, headers, part)

        def _range_start(self, resource: Resource) -> int | None:
            value = self.headers.get("Range")
            if not value or not value.startswith("bytes=") or not value.endswith("-"):
                return None
            if_range = self.headers.get("If-Range")
            # a validator that is not the file's current one (or a weak ETag, which never matches): the
            # file changed, so the whole new file, not a range of it
            if if_range is not None and (if_range.startswith("W/") or if_range not in (resource.etag, resource.last_modified)):
                return None
            return int(value[len("bytes="):-1])

        def _answer(self, seen: Seen, status: int, headers: dict[str, str], body: bytes, length: bool = True) -> None:
            seen.status = status
            resource = server.files.get(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if resource is not None and resource.kill_after is not None:
                body, resource.kill_after, self.close_connection = body[: resource.kill_after], None, True
            elif resource is not None and resource.stall_after is not None:
                self.wfile.write(body[: resource.stall_after])
                self.wfile.flush()
                resource.stall_after, self.close_connection = None, True
                server.release.wait(STALL_LIMIT_S)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server():
    state = ChangingServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class _FillingFile:
    """A file whose writes fail with ENOSPC once ``budget`` bytes went into files on the same fake disk."""

    def __init__(self, handle, budget: list[int]):
        self._handle, self._budget = handle, budget

    def write(self, data):
        if len(data) > self._budget[0]:
            self._handle.write(data[: self._budget[0]])
            self._budget[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget[0] -= len(data)
        return self._handle.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._handle.close()

    def __getattr__(self, name):
        return getattr(self._handle, name)


@pytest.fixture
def disk_fills(monkeypatch):
    """``disk_fills(directory, budget)``: writes through ``Path.open`` under ``directory`` fail with ENOSPC
    after ``budget`` bytes in all; returns a function that frees the disk again."""
    real_open = pathlib.Path.open

    def fill(directory: Path, budget: int):
        left = [budget]

        def open_(self, mode="r", *args, **kwargs):
            handle = real_open(self, mode, *args, **kwargs)
            if any(c in mode for c in "wax+") and Path(self).resolve().is_relative_to(directory.resolve()):
                return _FillingFile(handle, left)
            return handle

        monkeypatch.setattr(pathlib.Path, "open", open_)
        return lambda: monkeypatch.setattr(pathlib.Path, "open", real_open)

    return fill


@pytest.fixture
def tmpfs(tmp_path):
    """A real 64 KiB tmpfs (root only): the kernel's own ENOSPC. Yields (mount point, grow function)."""
    point = tmp_path / "tmpfs"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); the injected ENOSPC tests cover it")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=1m", str(point)], check=True)

    try:
        yield point, grow
    finally:
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)

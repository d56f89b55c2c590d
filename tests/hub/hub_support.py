"""Helpers for the hub tests: a scripted HTTP file server on 127.0.0.1 and fast retry settings."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from embedkit.hub.transfer import RetryPolicy

# Tiny waits so retry tests take milliseconds; still exponential, still capped.
FAST = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05, max_retry_after=0.05, timeout=5.0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Route:
    body: bytes
    # What the next requests get, one word each, before normal service resumes:
    #   "cut"    200 with the full Content-Length, but only half the body, then the connection closes
    #   "full"   200 with the whole body even if a Range was asked for (a server without range support)
    #   "<code>" that HTTP status with an empty body (Retry-After added for 429/503)
    script: list[str] = field(default_factory=list)
    retry_after: str = "0"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class FileServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def add(self, path: str, body: bytes, script: list[str] | None = None, retry_after: str = "0") -> str:
        self.routes[path] = Route(body, list(script or []), retry_after)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def requests_for(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler_for(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            server.requests.append(Seen(self.path, dict(self.headers.items())))
            route = server.routes.get(self.path)
            if route is None:
                return self._empty(404)
            action = route.script.pop(0) if route.script else "serve"
            body = route.body
            if action.isdigit():
                headers = {"Retry-After": route.retry_after} if action in ("429", "503") else {}
                return self._empty(int(action), headers)
            if action == "cut":
                self.close_connection = True
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"v1"')
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                return
            start = _range_start(self.headers.get("Range")) if action == "serve" else None
            if start is not None and start >= len(body):
                return self._empty(416, {"Content-Range": f"bytes */{len(body)}"})
            if start is not None:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                body = body[start:]
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", '"v1"')
            self.end_headers()
            self.wfile.write(body)

        def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def _range_start(value: str | None) -> int | None:
    if not value or not value.startswith("bytes=") or not value.endswith("-"):
        return None
    return int(value[len("bytes=") : -1])

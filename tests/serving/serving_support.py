"""A server on 127.0.0.1 in a thread of the test process, stopped by the test (a uniquely named module)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo" / "scifact-mini"


def corpus_texts(n: int) -> list[str]:
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(line) for _, line in zip(range(n), handle, strict=False)]
    return [f"{d['title']} {d['text']}".strip() for d in docs]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(encoder, **settings) -> Iterator[str]:
    """Serve ``encoder`` until the block ends; yields the base URL."""
    from embedkit.serving import ServeSettings, build_server

    port = free_port()
    server = build_server(ServeSettings(Path("model"), port=port, name="tiny", log_level="warning", **settings),
                          encoder)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "the server did not stop"

"""`embedkit serve` as a process: SIGTERM stops it after answering the requests in flight; a taken port is exit 2."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from serving_support import corpus_texts, free_port

REPO = Path(__file__).resolve().parents[2]


def start(model: Path, port: int, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
    return subprocess.Popen([sys.executable, "-m", "embedkit.cli", "serve", str(model), "--port", str(port), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_up(process: subprocess.Popen, url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-2000:]
        try:
            httpx.get(f"{url}/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("the server did not come up")


def test_sigterm_finishes_the_requests_in_flight_then_exits(tiny_model):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # A long batching wait, so the requests are still queued when the signal arrives.
    process = start(tiny_model, port, "--engine", "paddle", "--max-wait-ms", "1500", "--max-batch", "64")
    try:
        wait_until_up(process, url)

        async def in_flight() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                calls = [asyncio.create_task(client.post("/v1/embeddings", json={"input": corpus_texts(i + 1)}))
                         for i in range(8)]
                await asyncio.sleep(0.5)
                process.send_signal(signal.SIGTERM)
                return await asyncio.gather(*calls)

        responses = asyncio.run(in_flight())
        assert [r.status_code for r in responses] == [200] * 8
        assert [len(r.json()["data"]) for r in responses] == list(range(1, 9))
        # uvicorn re-raises the signal once shut down, so the parent sees how it ended.
        assert process.wait(timeout=60) == -signal.SIGTERM
        try:
            httpx.get(f"{url}/health", timeout=2)
            raise AssertionError("still answering after shutdown")
        except httpx.TransportError:
            pass
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_a_port_in_use_is_a_usage_error_before_the_model_loads(run_cli, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", tmp_path / "no-model-needed", "--port", port)
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr

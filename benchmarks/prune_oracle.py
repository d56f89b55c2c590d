"""The exhaustive oracle for `embedkit prune`: NDCG@10 after removing every single layer and every pair.

Against it, `--select bi` and `--select eval` can be judged by how far their choice is from the best possible
one on the same split. Every model (the unpruned one first) is saved, exported and evaluated cache-free with
the fastest engine here, one after another in this one process, so docs/s values are comparable. The corpus can
be cut to a fixed sample (every judged document plus seeded distractors: `--corpus-sample`) to fit the run in
minutes; NDCG@10 is then higher than on the full corpus, and the JSON says so.

    .venv/bin/python benchmarks/prune_oracle.py [--model DIR] [--data DIR] [--split test] [--corpus-sample 1500]
        [--max-removed 2] [--removals 3 --removals 2,3] [--output benchmarks/results/prune_oracle.json]

``--removals`` evaluates only the listed layer sets (e.g. the ones the selections chose) instead of all of them.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULT = REPO / "benchmarks" / "results" / "prune_oracle.json"


def main() -> None:
    import paddle  # noqa: F401  (first, as everywhere in embedkit)

    from embedkit.benchmark.encode_speed import default_model_dir, machine_info
    from embedkit.compression.selection import corpus_subset
    from embedkit.compression.towers import towers_of
    from embedkit.compression.trials import TrialSettings, evaluate_model, evaluate_without
    from embedkit.data import load_retrieval
    from embedkit.fsutil import write_json
    from embedkit.inference.engines import cpu_cores
    from embedkit.modeling.embedder import load_embedder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "scifact")
    parser.add_argument("--split", default="test")
    parser.add_argument("--corpus-sample", type=int, default=None)
    parser.add_argument("--max-removed", type=int, default=2)
    parser.add_argument("--removals", action="append", default=None, help="a layer set such as 2,3 (repeatable)")
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()

    model_dir = args.model or default_model_dir()
    embedder, tokenizer = load_embedder(model_dir)
    towers = towers_of(embedder)
    num_layers = towers[0].num_layers
    if args.removals:
        removals = [sorted(int(i) for i in text.split(",")) for text in args.removals]
    else:
        removals = [list(c) for k in range(1, args.max_removed + 1) for c in itertools.combinations(range(num_layers), k)]
    data = corpus_subset(load_retrieval(args.data, args.split), args.corpus_sample)
    settings = TrialSettings(split=args.split, engine=args.engine)
    payload = {"model": str(model_dir), "data": str(args.data), "split": args.split,
               "queries": len(data.queries), "documents": len(data.corpus), "corpus_sample": args.corpus_sample,
               "num_layers": num_layers, "machine": machine_info(cpu_cores()), "rows": []}

    def record(removed: list[int], scored, seconds: float) -> None:
        row = {"removed": removed, "ndcg_at_10": scored.metrics["ndcg_at_10"], "mrr_at_10": scored.metrics["mrr_at_10"],
               "recall_at_100": scored.metrics["recall_at_100"], "docs_per_s": scored.docs_per_s,
               "engine": scored.engine, "seconds": seconds}
        payload["rows"].append(row)
        write_json(args.output, payload)  # after every row: a long run interrupted keeps what it measured
        print(f"removed {','.join(map(str, removed)) or '-':>5}  NDCG@10 {row['ndcg_at_10']:.4f}  "
              f"docs/s {row['docs_per_s'] or 0:.1f}  ({seconds:.0f} s)", flush=True)

    started = time.perf_counter()
    record([], evaluate_model(model_dir, data, embedder.spec, settings), time.perf_counter() - started)
    for removed in removals:
        started = time.perf_counter()
        scored = evaluate_without(towers, removed, embedder.spec, tokenizer, data, settings, args.output.parent)
        record(removed, scored, time.perf_counter() - started)
    for k in sorted({len(r) for r in removals}):
        rows = [row for row in payload["rows"] if len(row["removed"]) == k]
        best = max(rows, key=lambda row: row["ndcg_at_10"])
        print(f"best with {k} removed: {best['removed']} NDCG@10 {best['ndcg_at_10']:.4f}")


if __name__ == "__main__":
    main()

"""The exhaustive oracle for `embedkit prune`: NDCG@10 after removing every single layer and every pair.

Against it, `--select bi` and `--select eval` can be judged by how far their choice is from the best possible
one on the same split. Every model (the unpruned one first) is saved, exported and evaluated cache-free with
the fastest engine here, one after another in this one process, so docs/s values are comparable. The corpus can
be cut to a fixed sample (every judged document plus seeded distractors: `--corpus-sample`) to fit the run in
minutes; NDCG@10 is then higher than on the full corpus, and the JSON says so.

    .venv/bin/python benchmarks/prune_oracle.py [--model DIR] [--data DIR] [--split test] [--corpus-sample 1500]
        [--max-removed 2] [--removals 3 --removals 2,3] [--output benchmarks/results/prune_oracle.json]

``--removals`` evaluates only the listed layer sets (e.g. the ones the selections chose) instead of all of them.
``--speed-docs N`` instead times encoding the first N corpus documents with the unpruned model and each
``--removals`` set, round robin over ``--repeats`` (best repeat reported), so load from other jobs hits every
model alike: on a shared machine the docs/s of evaluations run one after another are not comparable.
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
    parser.add_argument("--speed-docs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
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

    if args.speed_docs:
        payload["speed"] = speeds(model_dir, towers, embedder.spec, tokenizer, [[], *removals], data, args)
        write_json(args.output, payload)
        return
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


def speeds(model_dir: Path, towers, spec, tokenizer, removals: list[list[int]], data, args) -> list[dict]:
    """Best-of-repeats docs/s encoding the same documents with each model, the models taking turns."""
    import tempfile

    from embedkit.compression.towers import save_embedder, without_layers
    from embedkit.data import passage_text
    from embedkit.inference import Encoder

    texts = [passage_text(doc) for doc in list(data.corpus.values())[:args.speed_docs]]
    with tempfile.TemporaryDirectory(prefix=".prune-speed-", dir=args.output.parent) as tmp:
        encoders = []
        for removed in removals:
            path = model_dir
            if removed:
                path = Path(tmp) / "-".join(map(str, removed))
                save_embedder(without_layers(towers, {t.name: removed for t in towers}), spec, tokenizer, path)
            encoders.append(Encoder.from_model_dir(path, engine=args.engine))
            encoders[-1].encode_passages(texts[:8])  # warm-up
        runs = [[] for _ in removals]
        for _ in range(args.repeats):
            for index, encoder in enumerate(encoders):
                time.sleep(0.3)
                started = time.perf_counter()
                encoder.encode_passages(texts)
                runs[index].append(len(texts) / (time.perf_counter() - started))
    rows = [{"removed": removed, "docs_per_s": max(r), "runs_docs_per_s": r, "docs": len(texts),
             "engine": encoders[i].engine} for i, (removed, r) in enumerate(zip(removals, runs, strict=True))]
    for row in rows:
        print(f"removed {','.join(map(str, row['removed'])) or '-':>5}  docs/s {row['docs_per_s']:.1f} "
              f"(runs {', '.join(f'{v:.1f}' for v in row['runs_docs_per_s'])})", flush=True)
    return rows


if __name__ == "__main__":
    main()

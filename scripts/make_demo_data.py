"""Build demo/scifact-mini from the full BEIR SciFact set (../shared/data/scifact).

Deterministic (seeded), so the shipped files can be rebuilt and checked:
    python scripts/make_demo_data.py ../shared/data/scifact demo/scifact-mini
"""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path

N_TEST_QUERIES = 100
N_TRAIN_QUERIES = 300
CORPUS_SIZE = 800
SEED = 13


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path: Path) -> dict[str, list[str]]:
    qrels: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query-id"], []).append(row["corpus-id"])
    return qrels


def main(src: Path, dst: Path) -> None:
    rng = random.Random(SEED)
    corpus = {d["_id"]: d for d in read_jsonl(src / "corpus.jsonl")}
    queries = {q["_id"]: q for q in read_jsonl(src / "queries.jsonl")}
    test = read_qrels(src / "qrels" / "test.tsv")
    train = read_qrels(src / "qrels" / "train.tsv")

    test_ids = sorted(rng.sample(sorted(test), N_TEST_QUERIES), key=int)
    train_ids = sorted(rng.sample(sorted(train), N_TRAIN_QUERIES), key=int)
    keep = {d for q in test_ids for d in test[q]} | {d for q in train_ids for d in train[q]}
    distractors = [d for d in sorted(corpus, key=int) if d not in keep]
    keep |= set(rng.sample(distractors, CORPUS_SIZE - len(keep)))

    (dst / "qrels").mkdir(parents=True, exist_ok=True)
    with (dst / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for doc_id in sorted(keep, key=int):
            f.write(json.dumps(corpus[doc_id], ensure_ascii=False) + "\n")
    with (dst / "queries.jsonl").open("w", encoding="utf-8") as f:
        for qid in sorted(set(test_ids) | set(train_ids), key=int):
            f.write(json.dumps(queries[qid], ensure_ascii=False) + "\n")
    for name, ids, qrels in (("test", test_ids, test), ("train", train_ids, train)):
        with (dst / "qrels" / f"{name}.tsv").open("w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for qid in ids:
                for doc_id in qrels[qid]:
                    f.write(f"{qid}\t{doc_id}\t1\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

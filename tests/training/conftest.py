"""Training fixtures: a fixed toy set and tiny-BERT recipes that train in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedkit.config import TrainConfig

TOPICS = ["cells", "proteins", "genes", "viruses", "neurons", "enzymes", "vaccines", "tumours", "bacteria",
          "hormones", "antibodies", "mitochondria", "ribosomes", "plasma", "insulin", "collagen", "dopamine",
          "platelets", "lymphocytes", "chromosomes", "telomeres", "keratin", "melanin", "serotonin"]


def write_toy_jsonl(path: Path, with_negatives: bool = True, with_scores: bool = False) -> Path:
    """One example per topic: the query names the topic, the positive describes it, negatives another topic."""
    rows = []
    for i, topic in enumerate(TOPICS):
        other = TOPICS[(i + 5) % len(TOPICS)]
        row = {"query": f"what do {topic} do", "pos": [f"{topic} are studied because {topic} matter in {topic} research"],
               "neg": [f"{other} are studied because {other} matter"] if with_negatives else []}
        if with_scores:
            row["pos_scores"], row["neg_scores"] = [0.9], ([0.1] if with_negatives else [])
        rows.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def toy_jsonl(tmp_path) -> Path:
    return write_toy_jsonl(tmp_path / "toy.jsonl")


def tiny_config(output_dir: Path, train_data: Path | str, **changes) -> TrainConfig:
    """A tiny-BERT recipe: small groups and lengths, a learning rate a random model can move with."""
    settings = dict(model_name_or_path="tiny-bert", train_data=str(train_data), output_dir=str(output_dir),
                    train_group_size=2, per_device_train_batch_size=8, query_max_len=16, passage_max_len=32,
                    learning_rate=1e-3, max_steps=6, save_steps=3, logging_steps=1, seed=7)
    settings.update(changes)
    return TrainConfig(**settings)


@pytest.fixture
def quiet_out():
    from embedkit.console import Output

    return Output(verbosity=-1)

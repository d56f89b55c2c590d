"""Scoring a model, or the model with some layers removed, on retrieval data: what selection and the oracle run.

Every evaluation encodes afresh (no embedding cache), so each one's docs/s is a measurement, with the encoding
settings of the spec given (the pruned model's), so models differ in their weights only.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from embedkit.compression.report import Scored
from embedkit.compression.towers import Tower, save_embedder, without_layers


@dataclass(frozen=True)
class TrialSettings:
    split: str = "test"
    engine: str = "auto"
    batch_size: int = 32
    show_progress: bool = False


def evaluate_model(model_dir: Path, data, spec, settings: TrialSettings) -> Scored:
    """``model_dir`` on ``data`` (a dataset dir or loaded `RetrievalData`) with ``spec``'s encoding settings."""
    from embedkit.evaluation.comparison import comparable_overrides
    from embedkit.evaluation.metrics import ndcg_at_10_by_query
    from embedkit.evaluation.options import EvalOptions
    from embedkit.evaluation.pipeline import evaluate, load_datasets

    options = EvalOptions(split=settings.split, engine=settings.engine, batch_size=settings.batch_size,
                          use_cache=False, overrides=comparable_overrides(spec), show_progress=settings.show_progress)
    (dataset,) = load_datasets([data], settings.split)
    report = evaluate(model_dir, [dataset], options)
    return Scored(str(model_dir), report.mean, report.datasets[0].timings.docs_per_s, report.engine,
                  ndcg_at_10_by_query(dataset.data.qrels, report.datasets[0].run))


def evaluate_without(towers: list[Tower], layers: list[int], spec, tokenizer, data, settings: TrialSettings,
                     workdir: Path) -> Scored:
    """The model made of ``towers`` minus ``layers`` (the same in every tower), saved under ``workdir`` for the
    engine to load and export, evaluated, and deleted again."""
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".embedkit-prune-trial-", dir=workdir) as tmp:
        trial = Path(tmp) / "model"
        save_embedder(without_layers(towers, {t.name: layers for t in towers}), spec, tokenizer, trial)
        return evaluate_model(trial, data, spec, settings)

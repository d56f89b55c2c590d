"""Variants of a model scored side by side: quality, speed, size on disk and memory, in one run.

The table behind `embedkit quantize --eval-data` and `embedkit bench --compare`. Each variant is evaluated by
its own `embedkit eval --no-cache` child process, one after the other, so every docs/s is a fresh encoding of the
corpus and every peak RSS (the child's ``ru_maxrss`` from ``wait4``, exact on Linux) is that variant's alone:
nothing another variant loaded stays resident. The first variant is the baseline of the Δ column.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from embedkit import console
from embedkit.errors import EXIT_USAGE, UserError
from embedkit.filenames import EXPORT_DIRNAME

MAIN_METRIC = "ndcg_at_10"


@dataclass(frozen=True)
class Variant:
    label: str
    model_dir: Path
    engine: str = "auto"
    precision: str = "auto"


@dataclass
class VariantScore:
    label: str
    model: str
    engine: str
    precision: str
    metrics: dict[str, float]
    docs_per_s: Optional[float]
    size_bytes: int
    peak_rss_mib: float
    seconds: float
    delta: dict[str, float] = field(default_factory=dict)  # metric - the baseline's

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_size_bytes(model_dir: Path) -> int:
    """Bytes of the model's files on disk: weights or graphs, config, tokenizer; not embedkit's export caches."""
    total = 0
    for path in Path(model_dir).rglob("*"):
        if path.is_file() and EXPORT_DIRNAME not in path.relative_to(model_dir).parts:
            total += path.stat().st_size
    return total


def score_variants(variants: list[Variant], data: Path, split: str = "test",
                   batch_size: Optional[int] = None) -> list[VariantScore]:
    """Each variant evaluated on ``data`` in a child process, the first one the baseline of ``delta``."""
    scores = [_score(variant, Path(data), split, batch_size) for variant in variants]
    baseline = scores[0].metrics
    for score in scores:
        score.delta = {name: value - baseline[name] for name, value in score.metrics.items() if name in baseline}
    return scores


def _score(variant: Variant, data: Path, split: str, batch_size: Optional[int]) -> VariantScore:
    console.get().info(f"Evaluating {variant.label} ({variant.model_dir}) on {data} [{split}]")
    command = [sys.executable, "-m", "embedkit.cli", "eval", str(variant.model_dir), "--data", str(data),
               "--split", split, "--engine", variant.engine, "--precision", variant.precision, "--no-cache",
               "--quiet", "--json"]
    if batch_size:
        command += ["--batch-size", str(batch_size)]
    with tempfile.TemporaryDirectory(prefix="embedkit-variant-") as tmp:
        result_file, log_file = Path(tmp) / "result.json", Path(tmp) / "stderr.log"
        started = time.perf_counter()
        with result_file.open("w", encoding="utf-8") as stdout, log_file.open("w", encoding="utf-8") as stderr:
            child = subprocess.Popen(command, stdout=stdout, stderr=stderr)
            # wait4, not wait(): it returns this child's own resource usage, ru_maxrss its peak RSS in KiB.
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        if child.returncode != 0:
            said = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
            last = next((line for line in reversed(said) if line.strip()), "no message")
            message = f"evaluating {variant.label} failed (exit {child.returncode}): {last}"
            if child.returncode == EXIT_USAGE:  # the child refused its input: that input is the user's
                raise UserError(message, variant.model_dir)
            raise RuntimeError(f"{variant.model_dir}: {message}")
        report = json.loads(result_file.read_text(encoding="utf-8"))
    dataset = report["datasets"][0]
    return VariantScore(variant.label, str(variant.model_dir), report["engine"], report["precision"], report["mean"],
                        (dataset.get("timings") or {}).get("docs_per_s"), model_size_bytes(variant.model_dir),
                        usage.ru_maxrss / 1024, seconds)


def variants_table(scores: list[VariantScore], title: str):
    """The rich table of `score_variants`: NDCG@10, its change from the first row, docs/s, size, peak RSS."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("variant", "engine", "NDCG@10", "ΔNDCG@10", "docs/s", "size MB", "peak RSS MiB"):
        table.add_column(column, justify="left" if column in ("variant", "engine") else "right")
    for score in scores:
        ndcg, delta = score.metrics.get(MAIN_METRIC), score.delta.get(MAIN_METRIC)
        table.add_row(score.label, f"{score.engine} {score.precision}",
                      f"{ndcg:.4f}" if ndcg is not None else "-",
                      f"{delta * 100:+.2f}" if delta is not None and score is not scores[0] else "",
                      f"{score.docs_per_s:.1f}" if score.docs_per_s else "-", f"{score.size_bytes / 1e6:.1f}",
                      f"{score.peak_rss_mib:.0f}")
    return table

"""Files an evaluation leaves in ``--output``: results.json, TREC run files, the Matryoshka plot."""

from __future__ import annotations

from pathlib import Path

from embedkit.evaluation.matryoshka import PLOT_FILE, plot_curve
from embedkit.evaluation.metrics import MAIN_SCORE
from embedkit.evaluation.report import CheckpointsReport, EvalReport
from embedkit.fsutil import write_json
from embedkit.retrieval.runs import write_trec

RESULTS_FILE = "results.json"
CHECKPOINTS_FILE = "checkpoints.json"
RUN_DEPTH = 1000


def run_file_name(report: EvalReport, dataset_name: str) -> str:
    """``run.trec`` for a single dataset, ``run.<dataset>.trec`` for each of several (their query ids may collide)."""
    return "run.trec" if len(report.datasets) == 1 else f"run.{dataset_name}.trec"


def write_report(report: EvalReport, output_dir: str | Path) -> list[Path]:
    output_dir = Path(output_dir)
    written = []
    payload = report.to_dict()
    for dataset, entry in zip(report.datasets, payload["datasets"], strict=True):
        if dataset.run is None:
            continue
        path = output_dir / run_file_name(report, dataset.name)
        write_trec(path, dataset.run, run_name=f"embedkit-{report.fingerprint}", depth=RUN_DEPTH)
        entry["run_file"] = path.name
        written.append(path)
    curves = {d.name: {**{dim: scores[MAIN_SCORE] for dim, scores in d.by_dim.items()}, report.dim: d.main_score}
              for d in report.datasets if d.by_dim}
    if curves:
        written.append(plot_curve(output_dir / PLOT_FILE, curves))
        payload["matryoshka_plot"] = PLOT_FILE
    write_json(output_dir / RESULTS_FILE, payload)
    written.append(output_dir / RESULTS_FILE)
    return written


def write_checkpoints(report: CheckpointsReport, output_dir: str | Path) -> None:
    """One sub-directory of outputs per evaluated checkpoint, plus ``checkpoints.json`` with the best marked."""
    output_dir = Path(output_dir)
    for checkpoint in report.checkpoints:
        if checkpoint.report is not None:
            write_report(checkpoint.report, output_dir / checkpoint.name)
    write_json(output_dir / CHECKPOINTS_FILE, report.to_dict())

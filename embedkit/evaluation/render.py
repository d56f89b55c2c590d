"""Human output for evaluations (rich tables on stderr); ``--json`` output is the reports' ``to_dict``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from rich.table import Table

from embedkit.console import Output
from embedkit.evaluation.metrics import HEADLINE, MAIN_SCORE
from embedkit.evaluation.report import CheckpointsReport, DatasetResult, EvalReport

if TYPE_CHECKING:
    from embedkit.evaluation.mteb_tasks import MtebReport

_LABELS = {"ndcg_at": "NDCG", "mrr_at": "MRR", "recall_at": "Recall", "map_at": "MAP", "precision_at": "P",
           "hit_rate_at": "HitRate"}


def metric_label(key: str) -> str:
    """``ndcg_at_10`` -> ``NDCG@10``."""
    prefix, _, k = key.rpartition("_")
    return f"{_LABELS.get(prefix, prefix)}@{k}"


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def metrics_table(report: EvalReport, title: str = "") -> Table:
    """Metrics as rows, one column per dataset and a mean column when there are several (values x100)."""
    table = Table(title=title or None, title_justify="left")
    table.add_column("metric")
    for dataset in report.datasets:
        table.add_column(f"{dataset.name}\n({dataset.split}, {dataset.num_queries} q)", justify="right")
    several = len(report.datasets) > 1
    if several:
        table.add_column("mean", justify="right", style="bold")
    mean = report.mean
    for key in HEADLINE:
        row = [metric_label(key), *(_pct(d.metrics.get(key)) for d in report.datasets)]
        if several:
            row.append(_pct(mean.get(key)))
        table.add_row(*row, style="bold" if key == MAIN_SCORE else None)
    return table


def _cache_note(dataset: DatasetResult) -> str:
    hits = [side for side, hit in dataset.cached.items() if hit]
    return "both" if len(hits) == 2 else (hits[0] if hits else "no")


def summary_table(report: EvalReport) -> Table:
    """Sizes, wall times (seconds), corpus docs/s and whether embeddings came from the cache."""
    table = Table(title="timing (s)", title_justify="left")
    for column in ("dataset", "docs", "queries", "encode q", "encode docs", "docs/s", "search", "cached", "index"):
        table.add_column(column, justify="left" if column in ("dataset", "cached", "index") else "right")
    for d in report.datasets:
        t = d.timings
        index = d.index + (", own id dropped" if d.ignore_identical_ids else "")
        table.add_row(d.name, f"{d.num_docs:,}", f"{d.num_queries:,}", f"{t.encode_queries_s:.1f}",
                      f"{t.encode_corpus_s:.1f}", "-" if t.docs_per_s is None else f"{t.docs_per_s:,.0f}",
                      f"{t.search_s:.2f}", _cache_note(d), index)
    return table


def _bytes(n: Optional[int]) -> str:
    if n is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def index_table(report: EvalReport) -> Table:
    """How each dataset's index stored the documents and its bytes, rescoring (with the int8 store's bytes), the
    run depth (documents per query) and the search time."""
    table = Table(title="index", title_justify="left")
    for column in ("dataset", "index", "bytes", "rescore", "depth", "search s"):
        table.add_column(column, justify="left" if column in ("dataset", "index", "rescore") else "right")
    for d in report.datasets:
        rescore = "-" if d.rescore is None else f"{d.rescore} (int8 {_bytes(d.rescore_bytes)})"
        table.add_row(d.name, f"{d.index} {d.index_dtype}", _bytes(d.index_bytes), rescore,
                      "-" if d.depth is None else f"{d.depth:,}", f"{d.timings.search_s:.2f}")
    return table


def _depth_notes(report: EvalReport) -> list[str]:
    return [f"{d.name}: --rescore {d.rescore} < --top-k {d.top_k}: the run holds the top {d.depth} per query, so "
            f"the metrics at 1000 count those only" for d in report.datasets
            if d.rescore is not None and d.depth is not None and d.depth < min(d.top_k, d.num_docs)]


def matryoshka_table(report: EvalReport) -> Optional[Table]:
    with_dims = [d for d in report.datasets if d.by_dim]
    if not with_dims:
        return None
    table = Table(title=f"Matryoshka {metric_label(MAIN_SCORE)}", title_justify="left")
    table.add_column("dim", justify="right")
    for d in with_dims:
        table.add_column(d.name, justify="right")
    dims = sorted({dim for d in with_dims for dim in d.by_dim})
    for dim in dims:
        table.add_row(str(dim), *(_pct(d.by_dim[dim][MAIN_SCORE]) if dim in d.by_dim else "-" for d in with_dims))
    table.add_row(f"{report.dim} (full)", *(_pct(d.main_score) for d in with_dims), style="dim")
    return table


def render_report(report: EvalReport, out: Output, title: str = "") -> None:
    out.info(f"model [bold]{report.model}[/]  engine {report.engine} ({report.precision})  "
             f"fingerprint {report.fingerprint}")
    out.info(metrics_table(report, title))
    matryoshka = matryoshka_table(report)
    if matryoshka is not None:
        out.info(matryoshka)
    out.info(summary_table(report))
    out.info(index_table(report))
    for note in _depth_notes(report):
        out.info(f"[yellow]{note}[/]")


def render_checkpoints(report: CheckpointsReport, out: Output) -> None:
    best = report.best
    table = Table(title=f"checkpoints in {report.run_dir}", title_justify="left")
    table.add_column("checkpoint")
    for key in ("ndcg_at_10", "mrr_at_10", "recall_at_100"):
        table.add_column(f"{metric_label(key)} (mean)", justify="right")
    table.add_column("note")
    for c in report.checkpoints:
        if c.report is None:
            table.add_row(c.name, "-", "-", "-", f"skipped: {c.skipped}", style="dim")
            continue
        mean = c.report.mean
        table.add_row(c.name, _pct(mean.get("ndcg_at_10")), _pct(mean.get("mrr_at_10")), _pct(mean.get("recall_at_100")),
                      "best" if c is best else "", style="bold green" if c is best else None)
    out.info(table)
    if best is None:
        out.info("[red]no checkpoint could be evaluated[/]")


def render_mteb(report: MtebReport, out: Output) -> None:
    """Metrics as rows, one column per task (values x100), as for `embedkit eval --data`."""
    out.info(f"model [bold]{report.model}[/]  engine {report.engine}  fingerprint {report.fingerprint}  (mteb.evaluate)")
    table = Table(title="MTEB", title_justify="left")
    table.add_column("metric")
    for t in report.tasks:
        source = "local" if t.local_data else "MTEB"
        subset = "" if t.subset == "default" else f" {t.subset}"
        table.add_column(f"{t.task}{subset}\n({t.split}, {source})", justify="right")
    table.add_row("main score", *(_pct(t.main_score) for t in report.tasks), style="bold")
    for key in HEADLINE:
        table.add_row(metric_label(key), *(_pct(t.scores.get(key)) for t in report.tasks))
    out.info(table)
    for path in report.files:
        out.info(f"MTEB result: {path}")

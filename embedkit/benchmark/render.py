"""`embedkit bench` output: a table on stderr for people, the full result as JSON for machines."""

from __future__ import annotations

from rich import box
from rich.table import Table

from embedkit.benchmark.encode_speed import REFERENCE, BenchResult
from embedkit.console import Output


def _num(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _diff(value) -> str:
    """1.8e-07 -> "2e-7": the magnitude is what matters, and the table must fit 80 columns."""
    if value is None:
        return "–"
    return "0" if value == 0 else format(value, ".0e").replace("e-0", "e-").replace("e+0", "e")


def _label(runner: str, precision: str) -> str:
    return f"{'ST (torch)' if runner == REFERENCE else runner} {precision}"


def render_bench(result: BenchResult, out: Output) -> None:
    m = result.machine
    cap = f", embedkit batches ≤ {result.tokens_per_batch} tokens" if result.tokens_per_batch else ""
    title = (f"{result.docs} docs from {result.data}, max length {result.max_len} "
             f"(mean {result.tokens_per_doc_mean:g} tokens){cap}, {result.threads} threads on {m['cpu']}")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    table.add_column("runner", no_wrap=True)
    # p95 latency is in --json only: with the precision in the runner column and the cosine column, the table
    # must still fit 80 columns.
    for header in ("batch", "docs/s", "p50\nms", "RSS Δ\nMiB", "export\ns", "×\nST", "max\n|Δ|", "min\ncos"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in result.measurements:
        table.add_row(_label(row.runner, row.precision), str(row.batch_size),
                      f"{row.docs_per_s:.2f}", f"{row.batch_ms_p50:.0f}", f"{row.peak_rss_delta_mib:.0f}", _num(row.export_s, ".1f"), _num(row.ratio_vs_reference, ".2f"),
                      _diff(row.max_abs_diff_vs_reference), _num(row.min_cosine_vs_reference, ".5f"))
    out.info(table)
    out.info(f"[dim]docs/s: best of {result.repeats} runs (medians, p95 latencies and load times are in --json). × ST: speed ratio to "
             f"ST = {REFERENCE} (torch) at its faster precision at the same batch size. max |Δ|, min cos: largest "
             "embedding difference and lowest cosine to ST fp32. RSS Δ: memory added at peak. "
             "export s: building the graph in this run (– = reused, or no graph).[/]")
    for runner, why in result.skipped.items():
        out.info(f"[dim]{runner} not run: {why}[/]")
    best = result.best()
    if best is not None:
        versus = "" if best.ratio_vs_reference is None else f" = {best.ratio_vs_reference:.2f}× {REFERENCE}"
        out.info(f"fastest: [bold]{_label(best.runner, best.precision)}[/] at batch {best.batch_size}: "
                 f"{best.docs_per_s:.2f} docs/s{versus}")
        reference = result.best(lambda runner: runner == REFERENCE)
        if reference is not None:
            out.info(f"{REFERENCE}'s fastest: {reference.precision} at batch {reference.batch_size}, "
                     f"{reference.docs_per_s:.2f} docs/s; "
                     f"best against best: [bold]{best.docs_per_s / reference.docs_per_s:.2f}×[/]")
    load = m.get("load_average_start")
    if load and load[0] > 0.5 * m["usable_cores"]:
        out.info(f"[yellow]note: load average was {load[0]:.1f} on {m['usable_cores']} cores when the run began; "
                 "other processes were competing for the CPU[/]")
    out.result(result.to_dict())

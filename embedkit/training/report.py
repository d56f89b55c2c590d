"""What a finished run writes next to its model: the loss curve, the model card and the run summary."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedkit.filenames import MODEL_CARD_FILE
from embedkit.fsutil import atomic_path, write_text

# Final loss: the mean over this share of the last steps, so one noisy batch does not stand for the run.
FINAL_LOSS_SHARE = 0.1
# Weight of the newest step in the plotted exponential moving average (TensorBoard's smoothing 0.9).
EMA_WEIGHT = 0.1


def loss_points(loss_history: Sequence[dict]) -> list[tuple[int, float]]:
    """(step, loss) pairs, one per step (a step logged twice, as after a resume, keeps its last value)."""
    return sorted({int(e["step"]): float(e["loss"]) for e in loss_history}.items())


def final_loss(points: Sequence[tuple[int, float]]) -> float | None:
    """The mean loss logged over the last FINAL_LOSS_SHARE of the run's steps (at least the last logged one)."""
    if not points:
        return None
    last = points[-1][0]
    since = last - max(1, round(last * FINAL_LOSS_SHARE))
    tail = [loss for step, loss in points if step > since] or [points[-1][1]]
    return sum(tail) / len(tail)


def smoothed(losses: Sequence[float], weight: float = EMA_WEIGHT) -> list[float]:
    """Exponential moving average, bias-corrected so the first points are not pulled towards zero."""
    average, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        average = (1 - weight) * average + weight * loss
        out.append(average / (1 - (1 - weight) ** i))
    return out


def plot_loss_curve(points: Sequence[tuple[int, float]], target: Path, title: str,
                    evals: Sequence[tuple[int, float, str]] = ()) -> Path | None:
    """Raw and smoothed loss per step; ``evals`` (step, NDCG@10, label) as marked points on a second axis."""
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    steps, losses = zip(*points, strict=True)
    ax.plot(steps, losses, color="tab:blue", alpha=0.35, linewidth=1, label="loss")
    ax.plot(steps, smoothed(losses), color="tab:blue", linewidth=2, label=f"loss, EMA ({EMA_WEIGHT:g})")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if evals:
        scores = ax.twinx()
        last_step = steps[-1]
        for step, score, label in evals:
            scores.plot([step], [score], marker="D", color="tab:orange", linestyle="none")
            at_end = step >= last_step  # labelled on its left, inside the plot
            scores.annotate(f"{label} {score:.3f}", (step, score), textcoords="offset points",
                            xytext=(-6 if at_end else 6, 6), ha="right" if at_end else "left", fontsize=8,
                            color="tab:orange")
        scores.margins(y=0.3)
        scores.set_ylabel("eval NDCG@10", color="tab:orange")
        handles.append(scores.lines[0])
        labels.append("eval NDCG@10")
    # Below the axes, so it never covers the curve or the eval points.
    fig.legend(handles, labels, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    with atomic_path(target) as staged:
        fig.savefig(staged, format="png")
    plt.close(fig)
    return target


def _score(report: dict | None, key: str = "ndcg_at_10") -> str:
    if not report:
        return "-"
    value = report.get("metrics", {}).get(key)
    return "-" if value is None else f"{value:.4f}"


def model_card(summary: dict[str, Any], recipe_yaml: str) -> str:
    """A README.md for the output dir: what was trained from what, on what, how, and how well."""
    lines = [
        f"# {Path(summary['output_dir']).name}",
        "",
        f"Text-embedding model fine-tuned with embedkit {summary['embedkit_version']} "
        f"on {datetime.date.today().isoformat()}.",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{summary['base_model']}` |",
        f"| fine-tune type | {summary['fine_tune_type']} |",
        f"| parameters trained | {summary['parameters']['trainable']:,} of {summary['parameters']['total']:,} |",
        f"| steps | {summary['global_step']} |",
        f"| final training loss (mean of the last {FINAL_LOSS_SHARE:.0%} of steps) | "
        f"{'-' if summary['final_loss'] is None else format(summary['final_loss'], '.4f')} |",
        f"| examples/s | {summary['examples_per_second']:.1f} |",
        f"| wall time | {summary['wall_time_s']:.0f} s |",
        "",
        "## Training data",
        "",
        "| file | sha256 | examples |",
        "|---|---|---|",
    ]
    for source in summary["data"]:
        for i, (path, digest) in enumerate(source["files"].items()):
            lines.append(f"| `{path}` | `{digest}` | {source['examples'] if i == 0 else ''} |")
    before, after = summary.get("eval_before"), summary.get("eval_after")
    if before or after:
        lines += ["", f"## Evaluation ({(after or before)['dataset']}, split {(after or before)['split']})", "",
                  "| metric | before | after |", "|---|---|---|"]
        for key, label in (("ndcg_at_10", "NDCG@10"), ("recall_at_100", "Recall@100"), ("mrr_at_10", "MRR@10")):
            lines.append(f"| {label} | {_score(before, key)} | {_score(after, key)} |")
    name = Path(summary["output_dir"]).name  # relative: the card stays right wherever the run dir is copied
    lines += [
        "", "## Use", "",
        "Everything needed to encode (pooling, normalisation, instructions, max lengths) is in `embedkit.json`. "
        "From the folder that holds this run:", "",
        "```python", "import embedkit", "", f'model = embedkit.load("{name}")',
        'vectors = model.encode_queries(["what causes tides?"])  # and model.encode_passages([...])', "```", "",
        "```bash", f"embedkit eval {name} --data YOUR_BEIR_DIR",
        f"embedkit export {name} --format sentence-transformers --output {name}-st", "```", "",
        "```python", "from sentence_transformers import SentenceTransformer", "",
        f'model = SentenceTransformer("{name}-st")',
        'vectors = model.encode(["what causes tides?"], prompt_name="query")', "```",
    ]
    if summary.get("merged_dir"):
        lines += ["", f"The LoRA adapter is at the top of this folder; `{Path(summary['merged_dir']).name}/` holds the "
                  "merged full model."]
    lines += ["", "## Recipe", "", "```yaml", recipe_yaml.rstrip(), "```", ""]
    return "\n".join(lines)


def write_model_card(run_dir: Path, summary: dict[str, Any], recipe_yaml: str) -> Path:
    target = run_dir / MODEL_CARD_FILE
    write_text(target, model_card(summary, recipe_yaml))
    return target

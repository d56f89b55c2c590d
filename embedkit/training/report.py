"""What a finished run writes next to its model: the loss curve, the model card and the run summary."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedkit.fsutil import atomic_path, write_text


def loss_points(loss_history: Sequence[dict]) -> list[tuple[int, float]]:
    """(step, loss) pairs, one per step (a step logged twice, as after a resume, keeps its last value)."""
    return sorted({int(e["step"]): float(e["loss"]) for e in loss_history}.items())


def plot_loss_curve(points: Sequence[tuple[int, float]], target: Path, title: str) -> Path | None:
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    steps, losses = zip(*points, strict=True)
    ax.plot(steps, losses, marker="o" if len(points) < 40 else None, linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
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
        f"| final training loss | {'-' if summary['final_loss'] is None else format(summary['final_loss'], '.4f')} |",
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
    lines += [
        "", "## Use", "",
        "Everything needed to encode (pooling, normalisation, instructions, max lengths) is in `embedkit.json`:",
        "", "```bash", f"embedkit eval {summary['output_dir']} --data YOUR_BEIR_DIR", "```",
    ]
    if summary.get("merged_dir"):
        lines += ["", f"The LoRA adapter is at the top of this folder; `{Path(summary['merged_dir']).name}/` holds the "
                  "merged full model."]
    lines += ["", "## Recipe", "", "```yaml", recipe_yaml.rstrip(), "```", ""]
    return "\n".join(lines)


def write_model_card(run_dir: Path, summary: dict[str, Any], recipe_yaml: str) -> Path:
    target = run_dir / "README.md"
    write_text(target, model_card(summary, recipe_yaml))
    return target

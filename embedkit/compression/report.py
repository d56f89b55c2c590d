"""What `embedkit prune` produced: the scores, the layers removed, sizes, and quality and speed before and after."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from rich.table import Table

# The metrics the table shows, in MTEB's keys (the JSON carries every metric the evaluation computes).
SHOWN_METRICS = (("ndcg_at_10", "NDCG@10"), ("mrr_at_10", "MRR@10"), ("recall_at_100", "Recall@100"))


@dataclass
class Scored:
    """One model's evaluation: MTEB-keyed mean metrics, corpus documents encoded per second, and NDCG@10 per query
    (what `--select eval` compares trials by)."""

    model: str
    metrics: dict[str, float]
    docs_per_s: Optional[float]
    engine: str
    ndcg_at_10_by_query: dict[str, float] = field(default_factory=dict, repr=False)


@dataclass
class PruneResult:
    model: str
    output: str
    architecture: str
    layer_choice: str  # "shared" (one list for every tower) or "per tower"
    num_layers_before: dict[str, int]
    removed_layers: dict[str, list[int]]
    layer_scores: dict[str, list[float]]
    metric: str
    reduce: str
    include_padding: bool
    select: str
    calibration: Optional[dict[str, Any]]
    selection: Optional[dict[str, Any]]
    parameters_before: int
    parameters_after: int
    size_bytes_before: int
    size_bytes_after: int
    eval_data: Optional[str] = None
    split: Optional[str] = None
    before: Optional[Scored] = None
    after: Optional[Scored] = None
    healed: Optional[Scored] = None
    healed_dir: Optional[str] = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON: ``removed_layers`` and ``layer_scores`` are lists for a one-encoder model, {tower: list} for two."""
        payload = asdict(self)
        for key in ("removed_layers", "layer_scores", "num_layers_before"):
            payload[key] = _flat(payload[key])
        for stage in ("before", "after", "healed"):
            scored = getattr(self, stage)
            payload[stage] = scored.metrics if scored else None
            payload[f"docs_per_s_{stage}"] = scored.docs_per_s if scored else None
        payload["engine"] = (self.after or self.before).engine if (self.after or self.before) else None
        return payload


def _flat(by_tower: dict[str, Any]) -> Any:
    return by_tower["shared"] if set(by_tower) == {"shared"} else by_tower


def render(result: PruneResult, out) -> None:
    """The layer table and, with an evaluation, the before/after(/healed) table, on stderr."""
    towers = list(result.layer_scores)
    layers = Table(title=f"embedkit prune: {result.architecture}, {result.metric} ({result.reduce}"
                         f"{', padding included' if result.include_padding else ''}), select {result.select}")
    layers.add_column("layer", justify="right")
    for tower in towers:
        layers.add_column(f"{tower} score" if len(towers) > 1 else "score", justify="right")
        layers.add_column("removed" if len(towers) == 1 else f"{tower} removed")
    for index in range(max(result.num_layers_before.values())):
        cells = [str(index)]
        for tower in towers:
            scores = result.layer_scores[tower]
            cells += [f"{scores[index]:.6g}" if index < len(scores) else "-",
                      "yes" if index in result.removed_layers[tower] else ""]
        layers.add_row(*cells)
    out.info(layers)

    stages = [("before", result.before), ("pruned", result.after), ("healed", result.healed)]
    size = Table(title=f"size ({result.layer_choice} layer choice)", show_header=True)
    size.add_column("")
    size.add_column("before", justify="right")
    size.add_column("pruned", justify="right")
    size.add_row("parameters", f"{result.parameters_before:,}", f"{result.parameters_after:,}")
    size.add_row("weights (MB)", f"{result.size_bytes_before / 1e6:.1f}", f"{result.size_bytes_after / 1e6:.1f}")
    out.info(size)
    shown = [(name, scored) for name, scored in stages if scored is not None]
    if not shown:
        return
    quality = Table(title=f"{result.eval_data} ({result.split}), engine {shown[0][1].engine}")
    quality.add_column("metric")
    for name, _ in shown:
        quality.add_column(name, justify="right")
    for key, label in SHOWN_METRICS:
        quality.add_row(label, *(f"{scored.metrics.get(key, float('nan')):.4f}" for _, scored in shown))
    quality.add_row("docs/s", *(f"{scored.docs_per_s:.1f}" if scored.docs_per_s else "-" for _, scored in shown))
    out.info(quality)

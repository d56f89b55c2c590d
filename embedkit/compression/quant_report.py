"""What `embedkit quantize` produced: the record, each tower's distance to the source, sizes, the cost table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from rich.table import Table


@dataclass
class QuantizeResult:
    model: str
    output: str
    quant_type: str
    engine: str
    quantization: dict[str, Any]
    checks: dict[str, dict]  # tower -> min cosine / max abs diff to the fp32 source on the check texts
    size_bytes_before: int
    size_bytes_after: int
    table: Optional[list] = None  # evaluation.variants.VariantScore rows, the source first
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["table"] = [row.to_dict() for row in self.table] if self.table is not None else None
        payload.pop("extra")
        return payload


def render(result: QuantizeResult, out) -> None:
    from embedkit.evaluation.variants import variants_table

    summary = Table(title=f"embedkit quantize: {result.quant_type} for {result.engine}")
    summary.add_column("")
    summary.add_column("value", justify="right")
    summary.add_row("size on disk (MB)", f"{result.size_bytes_before / 1e6:.1f} -> {result.size_bytes_after / 1e6:.1f}"
                    f" ({result.size_bytes_before / max(result.size_bytes_after, 1):.1f}x smaller)")
    for tower, check in result.checks.items():
        summary.add_row(f"min cosine to fp32 ({tower})", f"{check['min_cosine_vs_dygraph']:.5f}")
    out.info(summary)
    if result.table:
        out.info(variants_table(result.table, "quality and cost, one run (ΔNDCG@10 in points)"))

"""`embedkit bench --compare`: a model and its variants (quantized, pruned, exported) scored side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from embedkit.evaluation.variants import Variant, VariantScore, score_variants


def compare_models(model_dir: Path, others: list[Path], data_dir: Path, split: str = "test",
                   engine: Optional[str] = None, precision: Optional[str] = None,
                   batch_size: Optional[int] = None) -> list[VariantScore]:
    """``model_dir`` (on ``engine``/``precision``, default auto) first, then each of ``others`` on its own engine."""
    variants = [Variant(Path(model_dir).name or str(model_dir), Path(model_dir), engine or "auto", precision or "auto")]
    variants += [Variant(Path(other).name or str(other), Path(other)) for other in others]
    return score_variants(variants, Path(data_dir), split, batch_size)

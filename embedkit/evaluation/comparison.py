"""One model scored the way another is used: the service behind before/after tables.

Training compares the base model with the fine-tuned one; prune and quantize compare a model with what they made
of it. A fair "before" encodes with the "after" model's spec (pooling, normalisation, instructions, max
lengths), so the only difference is the weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from embedkit.evaluation.options import EvalOptions
from embedkit.evaluation.pipeline import evaluate
from embedkit.modeling.spec import EmbedderSpec

# The spec fields a baseline takes from the model it is compared with.
COMPARABLE_SPEC_FIELDS = ("pooling", "normalized", "query_instruction", "passage_instruction", "query_max_len",
                          "passage_max_len")


def comparable_overrides(spec: EmbedderSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in COMPARABLE_SPEC_FIELDS}


def evaluation_summary(model_dir: str | Path, data: str | Path, options: EvalOptions,
                       like: Optional[EmbedderSpec] = None) -> dict[str, Any]:
    """Mean metrics of ``model_dir`` on ``data`` (``like``: encode with that spec), as a JSON-ready dict.

    Explicit overrides in ``options`` (e.g. a recipe's eval max length) win over ``like``.
    """
    scored = EvalOptions(**{**vars(options), "overrides": {**(comparable_overrides(like) if like else {}),
                                                           **options.overrides}})
    report = evaluate(model_dir, [data], scored)
    return {"dataset": str(data), "split": scored.split, "model": str(model_dir), "engine": report.engine,
            "precision": report.precision, "fingerprint": report.fingerprint, "metrics": report.mean,
            "main_score": report.main_score}

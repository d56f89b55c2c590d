"""An exported sentence-transformers dir, loaded by sentence-transformers itself and compared with embedkit."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np

from embedkit.choices import Side
from embedkit.inference.export import PROBE_TEXTS, TOLERANCE, ExportMismatchError


def check_sentence_transformers(st_dir: Path, model_dir: Path, overrides: Optional[dict]) -> dict[str, Any]:
    """Max abs difference between ``SentenceTransformer(st_dir)`` and embedkit's dygraph model on PROBE_TEXTS, per
    side (with its prompt and its max length: sentence-transformers has one for both sides, see
    st_layout.max_seq_length); ExportMismatchError above TOLERANCE."""
    if importlib.util.find_spec("sentence_transformers") is None:
        return {"checked": False, "reason": "sentence-transformers is not installed"}
    from embedkit.inference import Encoder

    reference = Encoder.from_model_dir(model_dir, engine="paddle", overrides=overrides)
    from sentence_transformers import SentenceTransformer  # after paddle (imported above): see the README

    # It warns that the default prompt applies to every encode() call: that is the point of setting it.
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    model = SentenceTransformer(str(st_dir), device="cpu", local_files_only=True)
    diffs = {}
    for side in Side:
        model.max_seq_length = reference.spec.query_max_len if side == Side.QUERY else reference.spec.passage_max_len
        got = model.encode(list(PROBE_TEXTS), prompt_name=side.value, convert_to_numpy=True, batch_size=4,
                           show_progress_bar=False)
        want = reference.encode(PROBE_TEXTS, side)
        diffs[side.value] = float(np.abs(got - want).max())
    worst = max(diffs.values())
    if worst > TOLERANCE:
        raise ExportMismatchError(f"the sentence-transformers export differs from embedkit's model by {worst:.3g} "
                                  f"(tolerance {TOLERANCE:g}); not written. Please report this.")
    return {"checked": True, "max_abs_diff": diffs, "tolerance": TOLERANCE, "texts": len(PROBE_TEXTS)}

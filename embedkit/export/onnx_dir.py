"""A self-contained ONNX serving dir (layout: embedkit.inference.serving_dir) from any model dir embedkit runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Optional

from embedkit.choices import Engine
from embedkit.modeling.tokenizer_files import save_tokenizer
from embedkit.filenames import EXPORT_META_FILE, MODEL_CONFIG_FILE
from embedkit.inference import ort
from embedkit.inference.runtime import SHARED, load_tower_forwards


def write_onnx_dir(model_dir: Path, out: Path, overrides: Optional[dict]) -> dict[str, Any]:
    """Build (or reuse) the checked ONNX graph of each tower and copy it with what encoding it needs into ``out``.

    Returns the check each graph passed against the dygraph model, by tower.
    """
    loaded = load_tower_forwards(model_dir, Engine.ONNX, overrides, "cpu")
    spec = loaded.spec
    checks = {}
    for name, tower in loaded.towers.items():
        target = out if name == SHARED else out / (spec.query_model if name == "query" else spec.passage_model)
        target.mkdir(parents=True, exist_ok=True)
        for file in (ort.MODEL_FILE, EXPORT_META_FILE):
            shutil.copyfile(tower.export.path / file, target / file)
        # Encoder reads the embedding width from config.json.
        shutil.copyfile(tower.tower.weights_dir / MODEL_CONFIG_FILE, target / MODEL_CONFIG_FILE)
        save_tokenizer(target, tower.tokenizer)
        meta = json.loads((target / EXPORT_META_FILE).read_text(encoding="utf-8"))
        checks[name] = {key: meta[key] for key in ("max_abs_diff_vs_dygraph", "min_cosine_vs_dygraph") if key in meta}
    spec.save(out)
    return {"checked": True, "towers": checks, "precision": loaded.identity.precision,
            "quantization": loaded.identity.quantization, "fingerprint": loaded.identity.digest}

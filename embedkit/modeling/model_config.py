"""A model directory's ``config.json``, read once the same way by every part that needs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embedkit.config.validation import read_json
from embedkit.errors import UserError
from embedkit.filenames import MODEL_CONFIG_FILE
from embedkit.modeling.hf_peft import architecture_config_file


def read_model_config(model_dir: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` (a PEFT adapter dir's: its base model's); a missing, invalid or non-object file
    is a ``path[:line]: message`` error."""
    path = architecture_config_file(model_dir)
    if not path.is_file():
        raise UserError(f"not a model directory: {MODEL_CONFIG_FILE} is missing", model_dir)
    data, _ = read_json(path)
    if not isinstance(data, dict):
        raise UserError("expected a JSON object of model settings", path, 1)
    return data

"""The models a training run holds, as evaluation and training find them: ``checkpoint-N`` dirs and the final model.

A checkpoint counts only when complete: every trainer (PaddleNLP's, Hugging Face's, embedkit's) writes the
trainer state last, and embedkit's trainer also stages each save and renames it into place, so a checkpoint
without its trainer state was cut short.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from embedkit.errors import UserError
from embedkit.filenames import CHECKPOINT_PREFIX, TRAINER_STATE_FILE

_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}-(\d+)$")
_REQUIRED = (TRAINER_STATE_FILE,)
FINAL = "final"


@dataclass(frozen=True)
class RunModel:
    """One model of a run: a checkpoint, or the final model at the top of the run dir."""

    name: str
    path: Path
    incomplete: Optional[str] = None  # why it cannot be used, when it cannot


def checkpoint_step(path: Path) -> Optional[int]:
    match = _CHECKPOINT_RE.match(path.name)
    return int(match.group(1)) if match and path.is_dir() else None


def missing_files(checkpoint: Path) -> list[str]:
    return [name for name in _REQUIRED if not (checkpoint / name).is_file()]


def is_complete_checkpoint(path: Path) -> bool:
    return checkpoint_step(path) is not None and not missing_files(path)


def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest step first."""
    found = [p for p in run_dir.iterdir() if is_complete_checkpoint(p)] if run_dir.is_dir() else []
    return sorted(found, key=checkpoint_step)


def last_checkpoint(run_dir: Path) -> Optional[Path]:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def checkpoint_global_step(checkpoint: Path) -> int:
    """The optimisation step the checkpoint was taken at, from its trainer state."""
    return int(json.loads((checkpoint / TRAINER_STATE_FILE).read_text(encoding="utf-8"))["global_step"])


def run_models(run_dir: str | Path) -> list[RunModel]:
    """Every ``checkpoint-N`` in step order (incomplete ones marked), then the final model when there is one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError("run directory not found", run_dir)
    found = sorted((p for p in run_dir.iterdir() if checkpoint_step(p) is not None), key=checkpoint_step)
    models = []
    for path in found:
        missing = missing_files(path)
        models.append(RunModel(path.name, path, f"incomplete checkpoint: no {', '.join(missing)}" if missing else None))
    if _has_final_model(run_dir):
        models.append(RunModel(FINAL, run_dir))
    if not models:
        raise UserError(f"no {CHECKPOINT_PREFIX}-* directories and no final model weights here", run_dir)
    return models


def _has_final_model(run_dir: Path) -> bool:
    from embedkit.modeling.embedder import resolve_spec, tower_dirs
    from embedkit.modeling.loading import weight_files

    try:
        spec = resolve_spec(run_dir)
    except UserError:
        return False
    return all(weight_files(d) for d in tower_dirs(run_dir, spec) if d is not None)

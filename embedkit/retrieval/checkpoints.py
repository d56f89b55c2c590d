"""The models a training run holds, as evaluation and training find them: ``checkpoint-N`` dirs and the final model.

This module alone decides whether a checkpoint is complete. embedkit's trainer stages each save and, last,
writes a manifest (``embedkit-checkpoint.json``: every other file's size and sha256); a checkpoint is complete
when its manifest verifies, so a save cut short, a truncated or missing file and changed bytes are all caught.

- Resuming requires the manifest: optimizer, scheduler and RNG state must be exactly what was saved, or the
  resumed run silently differs from an uninterrupted one.
- Evaluation sweeps (``eval --evaluate-all``) also take checkpoints without one (PaddleNLP's or Hugging Face's
  trainer, or copied by hand) when their trainer state, which every trainer writes last, parses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from embedkit.errors import UserError
from embedkit.filenames import CHECKPOINT_MANIFEST_FILE, CHECKPOINT_PREFIX, TRAINER_STATE_FILE
from embedkit.fsutil import write_json
from embedkit.integrity import file_records, mismatch

_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}-(\d+)$")
FINAL = "final"


@dataclass(frozen=True)
class RunModel:
    """One model of a run: a checkpoint, or the final model at the top of the run dir."""

    name: str
    path: Path
    incomplete: Optional[str] = None  # why it cannot be used, when it cannot


@dataclass(frozen=True)
class ResumePoint:
    """The newest complete checkpoint, and the newer ones passed over with the reason each was."""

    checkpoint: Optional[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def checkpoint_step(path: Path) -> Optional[int]:
    match = _CHECKPOINT_RE.match(path.name)
    return int(match.group(1)) if match and path.is_dir() else None


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Every ``checkpoint-N`` directory, complete or not, oldest step first."""
    found = [p for p in run_dir.iterdir() if checkpoint_step(p) is not None] if run_dir.is_dir() else []
    return sorted(found, key=checkpoint_step)


def write_manifest(checkpoint: Path) -> None:
    """Record every file of ``checkpoint`` (subfolders included); call it last, once everything else is written."""
    names = [p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*")
             if p.is_file() and p.name != CHECKPOINT_MANIFEST_FILE]
    write_json(checkpoint / CHECKPOINT_MANIFEST_FILE, {"files": file_records(checkpoint, names)})


def verify_checkpoint(path: Path, require_manifest: bool = True) -> Optional[str]:
    """Why ``path`` is not a complete checkpoint, or None when it is (see the module docstring for the two modes)."""
    if checkpoint_step(path) is None:
        return f"not a {CHECKPOINT_PREFIX}-N directory"
    manifest = path / CHECKPOINT_MANIFEST_FILE
    if not manifest.is_file():
        if require_manifest:
            return f"no {CHECKPOINT_MANIFEST_FILE} (its save was cut short, or another tool wrote it)"
        return _trainer_state_problem(path)
    try:
        records = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return f"{CHECKPOINT_MANIFEST_FILE} is unreadable"
    if not isinstance(records, dict) or TRAINER_STATE_FILE not in records:
        return f"{CHECKPOINT_MANIFEST_FILE} does not list {TRAINER_STATE_FILE}"
    if any(Path(name).is_absolute() or ".." in Path(name).parts for name in records):
        return f"{CHECKPOINT_MANIFEST_FILE} names a file outside the checkpoint"
    return mismatch(path, records)


def _trainer_state_problem(path: Path) -> Optional[str]:
    state = path / TRAINER_STATE_FILE
    if not state.is_file():
        return f"no {TRAINER_STATE_FILE}"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return f"{TRAINER_STATE_FILE} is not valid JSON"
    return None


def is_complete_checkpoint(path: Path) -> bool:
    return verify_checkpoint(path) is None


def resume_point(run_dir: Path) -> ResumePoint:
    """The newest checkpoint whose manifest verifies (older ones are not hashed once one does)."""
    skipped = []
    for path in reversed(checkpoint_dirs(run_dir)):
        reason = verify_checkpoint(path)
        if reason is None:
            return ResumePoint(path, skipped)
        skipped.append((path, reason))
    return ResumePoint(None, skipped)


def last_checkpoint(run_dir: Path) -> Optional[Path]:
    return resume_point(run_dir).checkpoint


def checkpoint_global_step(checkpoint: Path) -> int:
    """The optimisation step the checkpoint was taken at, from its trainer state."""
    return int(json.loads((checkpoint / TRAINER_STATE_FILE).read_text(encoding="utf-8"))["global_step"])


def run_models(run_dir: str | Path) -> list[RunModel]:
    """Every ``checkpoint-N`` in step order (incomplete ones marked), then the final model when there is one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError("run directory not found", run_dir)
    models = []
    for path in checkpoint_dirs(run_dir):
        reason = verify_checkpoint(path, require_manifest=False)
        models.append(RunModel(path.name, path, f"incomplete checkpoint: {reason}" if reason else None))
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

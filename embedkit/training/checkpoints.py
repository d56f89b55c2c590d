"""Run directories and checkpoints: resume automatically, overwrite only when asked, never load half a checkpoint.

The original example checked "output dir not empty" before looking for checkpoints, so its auto-resume could
never run. Here the order is: (1) ``--overwrite`` clears the run's previous outputs; (2) otherwise the last
*complete* ``checkpoint-N`` is resumed from; (3) otherwise a non-empty directory is refused.

PaddleNLP's Trainer writes a checkpoint in place, file by file; a kill mid-save leaves a directory that looks
like a checkpoint. :class:`EmbeddingTrainer` therefore saves into a hidden staging directory and renames it
to ``checkpoint-N`` when complete, and staging leftovers are removed here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from embedkit.errors import UserError
from embedkit.filenames import (
    CHECKPOINT_PREFIX,
    EXPORT_DIRNAME,
    MERGED_DIR,
    PASSAGE_TOWER_DIR,
    QUERY_TOWER_DIR,
    model_file_names,
)
from embedkit.retrieval.checkpoints import last_checkpoint

STAGING_PREFIX = ".checkpoint-staging-"
# Files a finished run writes at the top of its output dir (removed by --overwrite, with checkpoints and logs).
RUN_FILES = ("train_args.json", "recipe.yaml", "loss_curve.png", "README.md", "train_summary.json", "eval_before.json")


def remove_staging_leftovers(run_dir: Path) -> None:
    for leftover in run_dir.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def prepare_run_dir(run_dir: Path, overwrite: bool) -> Path | None:
    """Make ``run_dir`` ready and return the checkpoint to resume from (None: start fresh)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError("output_dir is a file", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_staging_leftovers(run_dir)
    if overwrite:
        clear_previous_run(run_dir)
        return None
    resume = last_checkpoint(run_dir)
    if resume is not None:
        return resume
    from embedkit.training.arguments import LOGGING_DIR

    # logs/ may already hold the multi-process launcher's logs of this very run.
    leftovers = sorted(p.name for p in run_dir.iterdir() if p.name != LOGGING_DIR)
    if leftovers:
        shown = ", ".join(leftovers[:5]) + (" ..." if len(leftovers) > 5 else "")
        raise UserError(f"output_dir is not empty and holds no checkpoint to resume from ({shown}); "
                        "pass --overwrite to start afresh or choose another output_dir", run_dir)
    return None


def clear_previous_run(run_dir: Path) -> None:
    """Remove checkpoints, logs, saved models and run files: what a previous embedkit run left here."""
    from embedkit.training.arguments import LOGGING_DIR

    logs = run_dir / LOGGING_DIR
    # VisualDL records go; logs/launch (the launcher's worker logs, possibly of this very run) stays.
    entries = [*run_dir.iterdir(), *(p for p in logs.iterdir() if p.name != "launch")] if logs.is_dir() else list(run_dir.iterdir())
    for path in entries:
        owned = (
            path.name.startswith(f"{CHECKPOINT_PREFIX}-")
            or path.parent == logs
            # .embedkit-export: inference graphs `embedkit eval` exported from the previous model
            or path.name in (MERGED_DIR, QUERY_TOWER_DIR, PASSAGE_TOWER_DIR, EXPORT_DIRNAME, *RUN_FILES)
            or _is_model_file(path)
        )
        if not owned:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _is_model_file(path: Path) -> bool:
    return path.is_file() and (path.name in model_file_names()
                               or re.match(r"model-\d+-of-\d+\.safetensors$", path.name) is not None)

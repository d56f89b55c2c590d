"""Run directories: claimed before anything is written, resumed from the newest complete checkpoint, and
cleared only of what embedkit wrote.

- A run dir is embedkit's when it holds ``.embedkit-run.json``, written when embedkit creates the dir or takes
  an empty one (the multi-process launcher's ``logs/launch`` may already be there). embedkit removes entries
  only in such a dir, and only ones with the names its runs write (checkpoints, logs, model files, run files,
  staging leftovers): a user's own files there stay.
- An output_dir that is the base model's directory, holds it or lies inside it is refused before anything is
  written: ``--overwrite`` would delete the model and training would write over it.
- A non-empty directory without the marker is refused, with or without ``--overwrite``: embedkit cannot tell
  its files from the user's there, so it removes nothing.
- In a claimed dir, ``--overwrite`` clears the previous run's outputs; otherwise the run resumes from the
  newest checkpoint whose manifest verifies (newer ones passed over are named, with the reason); with none,
  e.g. killed or stopped by a config error before the first checkpoint, it starts again at step 0 (reusing the
  stored ``eval_before.json``).

PaddleNLP's Trainer writes a checkpoint in place, file by file; a kill mid-save leaves a directory that looks
like a checkpoint. :class:`EmbeddingTrainer` therefore saves into a hidden staging directory, writes the
manifest last and renames it to ``checkpoint-N``; staging leftovers are removed here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Optional

import yaml

from embedkit import __version__
from embedkit.errors import UserError
from embedkit.filenames import (
    CHECKPOINT_PREFIX,
    EVAL_AFTER_FILE,
    EXPORT_DIRNAME,
    MERGED_DIR,
    PASSAGE_TOWER_DIR,
    QUERY_TOWER_DIR,
    RECIPE_FILE,
    RUN_MARKER_FILE,
    model_file_names,
)
from embedkit.fsutil import no_space_message, write_json
from embedkit.retrieval.checkpoints import resume_point
from embedkit.training.arguments import LOGGING_DIR

STAGING_PREFIX = ".checkpoint-staging-"
FINAL_STAGING_PREFIX = ".final-model-"
LAUNCH_LOG_DIR = "launch"  # the launcher's worker logs, under logs/ (training.command)
# Files a finished run writes at the top of its output dir (removed by --overwrite, with checkpoints and logs).
RUN_FILES = ("train_args.json", RECIPE_FILE, "loss_curve.png", "README.md", "train_summary.json", "eval_before.json",
             EVAL_AFTER_FILE)
# Settings that may differ on resume without a warning: the same run dir can be named by another path.
UNCOMPARED_SETTINGS = ("output_dir",)


def check_output_dir(run_dir: Path, model_dir: Path) -> None:
    """Refuse an output_dir that is the base model's directory, holds it or lies inside it."""
    run_dir, model_dir = run_dir.resolve(), model_dir.resolve()
    if run_dir == model_dir:
        relation = "is the base model's directory"
    elif model_dir.is_relative_to(run_dir):
        relation = f"holds the base model ({model_dir})"
    elif run_dir.is_relative_to(model_dir):
        relation = f"is inside the base model's directory ({model_dir})"
    else:
        return
    raise UserError(f"output_dir {relation}: training writes its outputs there and --overwrite would delete "
                    "the model; choose an output_dir outside the model", run_dir)


def prepare_run_dir(run_dir: Path, overwrite: bool, warn: Callable[[str], None]) -> Optional[Path]:
    """Make ``run_dir`` ready and return the checkpoint to resume from (None: start at step 0)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError("output_dir is a file", run_dir)
    if not (run_dir / RUN_MARKER_FILE).is_file():
        _claim(run_dir, overwrite)
        return None
    remove_staging_leftovers(run_dir)
    if overwrite:
        clear_previous_run(run_dir)
        return None
    point = resume_point(run_dir)
    for path, reason in point.skipped:
        warn(f"{path}: not resumed from: {reason}")
    if point.checkpoint is None and point.skipped:
        warn(f"{run_dir}: no complete checkpoint to resume from; training starts again at step 0")
    return point.checkpoint


def _claim(run_dir: Path, overwrite: bool) -> None:
    """Mark a new or empty ``run_dir`` as embedkit's; refuse any other."""
    if run_dir.is_dir() and not _empty_but_for_launch_logs(run_dir):
        shown = sorted(p.name for p in run_dir.iterdir())
        shown = ", ".join(shown[:5]) + (" ..." if len(shown) > 5 else "")
        if overwrite:
            raise UserError(f"output_dir was not created by embedkit (no {RUN_MARKER_FILE}; it holds {shown}): "
                            "--overwrite removes only an embedkit run's own outputs, so nothing was removed; "
                            "choose a new or empty output_dir", run_dir)
        raise UserError(f"output_dir is not empty and is not an embedkit run dir (no {RUN_MARKER_FILE}; it holds "
                        f"{shown}); choose a new or empty output_dir", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / RUN_MARKER_FILE, {"created_by": "embedkit train", "embedkit_version": __version__})


def _empty_but_for_launch_logs(run_dir: Path) -> bool:
    """True when the dir holds nothing, or only the logs the launcher wrote for this very run."""
    for entry in run_dir.iterdir():
        if not (entry.name == LOGGING_DIR and entry.is_dir()
                and all(p.name == LAUNCH_LOG_DIR for p in entry.iterdir())):
            return False
    return True


def remove_staging_leftovers(run_dir: Path) -> None:
    """What a kill during a checkpoint save or the final model's publication left behind."""
    for pattern in (f"{STAGING_PREFIX}*", f"{FINAL_STAGING_PREFIX}*"):
        for leftover in run_dir.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def clear_previous_run(run_dir: Path) -> None:
    """Remove checkpoints, logs, saved models and run files: what a previous embedkit run left here."""
    logs = run_dir / LOGGING_DIR
    # VisualDL records go; logs/launch (the launcher's worker logs, possibly of this very run) stays.
    entries = [*run_dir.iterdir(), *(p for p in logs.iterdir() if p.name != LAUNCH_LOG_DIR)] if logs.is_dir() else list(run_dir.iterdir())
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


def changed_settings(checkpoint: Path, recipe_yaml: str) -> list[str]:
    """``key: before -> now`` for each setting that differs from the recipe ``checkpoint`` was trained with."""
    saved = checkpoint / RECIPE_FILE
    if not saved.is_file():
        return []
    before, now = _flat(yaml.safe_load(saved.read_text(encoding="utf-8"))), _flat(yaml.safe_load(recipe_yaml))
    unset = "(unset)"
    keys = sorted(k for k in before.keys() | now.keys()
                  if k not in UNCOMPARED_SETTINGS and before.get(k, unset) != now.get(k, unset))
    return [f"{k}: {before.get(k, unset)} -> {now.get(k, unset)}" for k in keys]


def _flat(settings: dict, prefix: str = "") -> dict[str, object]:
    """Nested sections (``eval:``, ``lora:``) as dotted keys, the way ``--set`` names them."""
    flat: dict[str, object] = {}
    for key, value in (settings or {}).items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@contextlib.contextmanager
def disk_full_message(path: Path) -> Iterator[None]:
    """``PATH: no space left on device`` for a full disk while saving a model or checkpoint under ``path``.

    Paddle's writers raise OSError (``no_space_message`` handles it); the safetensors writer raises its own
    SafetensorError instead, naming the OS error only in its text.
    """
    from safetensors import SafetensorError

    with no_space_message(path):
        try:
            yield
        except SafetensorError as exc:
            if f"os error {errno.ENOSPC})" not in str(exc):
                raise
            raise OSError(errno.ENOSPC, str(exc)) from exc


def make_readable(directory: Path) -> None:
    """Give a saved model the modes the umask gives new files: the safetensors writer leaves 0600, so the
    published weights were private while their config and tokenizer were not."""
    current = os.umask(0o022)  # os has no getter: set and restore
    os.umask(current)
    for path in [directory, *directory.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~current)


def fsync_tree(directory: Path) -> None:
    """Flush every file and folder under ``directory`` (the directory last) to disk before it is renamed in."""
    for path in [*directory.rglob("*"), directory]:
        fsync_path(path)


def fsync_path(path: Path) -> None:
    """Flush one file, or one directory's entries (so a rename in it survives a power cut)."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)

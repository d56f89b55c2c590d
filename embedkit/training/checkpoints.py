"""Run directories and checkpoints: resume automatically, overwrite only when asked, never load half a checkpoint.

The original example checked "output dir not empty" before looking for checkpoints, so its auto-resume could
never run. Here the order is: (1) ``--overwrite`` clears the run's previous outputs; (2) otherwise the last
*complete* ``checkpoint-N`` is resumed from; (3) otherwise a non-empty directory is refused.

PaddleNLP's Trainer writes a checkpoint in place, file by file; a kill mid-save leaves a directory that looks
like a checkpoint. :class:`EmbeddingTrainer` therefore saves into a hidden staging directory and renames it
to ``checkpoint-N`` when complete, and staging leftovers are removed here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from embedkit.errors import UserError

CHECKPOINT_PREFIX = "checkpoint"
STAGING_PREFIX = ".checkpoint-staging-"
_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}-(\d+)$")
# Written first and last into a staged checkpoint (the model's spec, the trainer state); the staging rename
# makes a checkpoint all-or-nothing, so these stand for "complete" even for dirs from other tools or crashes.
_REQUIRED = ("embedkit.json", "trainer_state.json")
# Files a finished run writes at the top of its output dir (removed by --overwrite, with checkpoints and logs).
RUN_FILES = ("train_args.json", "recipe.yaml", "loss_curve.png", "README.md", "train_summary.json", "eval_before.json")


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT_RE.match(path.name)
    return int(match.group(1)) if match and path.is_dir() else None


def is_complete_checkpoint(path: Path) -> bool:
    return checkpoint_step(path) is not None and all((path / name).is_file() for name in _REQUIRED)


def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest step first."""
    found = [p for p in run_dir.iterdir() if is_complete_checkpoint(p)] if run_dir.is_dir() else []
    return sorted(found, key=checkpoint_step)


def checkpoint_global_step(checkpoint: Path) -> int:
    """The optimisation step the checkpoint was taken at, from its trainer state."""
    return int(json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])


def last_checkpoint(run_dir: Path) -> Path | None:
    found = checkpoints(run_dir)
    return found[-1] if found else None


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
            or path.name in ("merged", "query_model", "passage_model", ".embedkit-export", *RUN_FILES)
            or _is_model_file(path)
        )
        if not owned:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _is_model_file(path: Path) -> bool:
    names = ("config.json", "embedkit.json", "model.safetensors", "model.safetensors.index.json",
             "model_state.pdparams", "lora_config.json", "lora_model_state.pdparams", "vocab.txt", "tokenizer.json",
             "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "sentencepiece.bpe.model",
             "spm.model", "tokenizer.model", "vocab.json", "merges.txt", "chat_template.json", "generation_config.json")
    return path.is_file() and (path.name in names or re.match(r"model-\d+-of-\d+\.safetensors$", path.name) is not None)

"""What a finished run keeps of its checkpoints: their weights, not the optimizer and scheduler states.

Those states are only for continuing training, and are most of a checkpoint's size (Adam keeps two moments per
parameter: 2x the weights). A run that may be extended later sets ``keep_optimizer_state: true``.
"""

from __future__ import annotations

from pathlib import Path

from embedkit.errors import UserError
from embedkit.retrieval.checkpoints import checkpoint_dirs, write_manifest

# What PaddleNLP's Trainer saves to resume training (names from paddlenlp.trainer.trainer; sharded runs add
# suffixes to the optimizer's): the optimizer, the learning-rate scheduler, the fp16 loss scaler.
OPTIMIZER_STATE_PATTERNS = ("optimizer*.pdopt", "scheduler.pdparams", "scaler.pdparams")


def _state_files(checkpoint: Path) -> list[Path]:
    return [f for pattern in OPTIMIZER_STATE_PATTERNS for f in checkpoint.glob(pattern) if f.is_file()]


def drop_optimizer_states(run_dir: Path) -> int:
    """Delete the optimizer, scheduler and scaler states of every checkpoint in ``run_dir``; bytes freed.

    Each checkpoint's manifest is written again for the files it keeps, so it still verifies.
    """
    freed = 0
    for checkpoint in checkpoint_dirs(run_dir):
        states = _state_files(checkpoint)
        for state in states:
            freed += state.stat().st_size
            state.unlink()
        if states:
            write_manifest(checkpoint)
    return freed


def check_resumable(checkpoint: Path) -> None:
    """Refuse to continue training from a checkpoint whose optimizer state was dropped (PaddleNLP would fail)."""
    if not _state_files(checkpoint):
        raise UserError(f"{checkpoint.name} has no optimizer state to continue training from: it was dropped when "
                        "the run finished (set keep_optimizer_state: true to keep it); pass --overwrite to train "
                        "afresh", checkpoint)

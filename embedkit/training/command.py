"""``embedkit train`` between the CLI and the service: recipe + flags → TrainConfig, and ``--nproc`` relaunch."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Optional

from embedkit.config import TrainConfig, apply_overrides, load_recipe
from embedkit.errors import UserError


def build_config(recipe: Optional[Path], sets: list[str], model: Optional[str] = None, data: Optional[str] = None,
                 output_dir: Optional[str] = None, merge_lora: bool = False) -> TrainConfig:
    """The recipe (or defaults), then ``--set`` overrides, then the explicit flags."""
    config = load_recipe(recipe, TrainConfig) if recipe is not None else TrainConfig()
    config = apply_overrides(config, sets)
    if model is not None:
        config.model_name_or_path = model
    if data is not None:
        config.train_data = data
    if output_dir is not None:
        config.output_dir = output_dir
    if merge_lora:
        if config.fine_tune_type != "lora":
            raise UserError(f"--merge-lora applies to LoRA runs; this recipe's fine_tune_type is {config.fine_tune_type}")
        config.merge_lora = True
    if not config.model_name_or_path:
        raise UserError("no model: set model_name_or_path in the recipe or pass --model", recipe)
    if not config.train_data:
        raise UserError("no training data: set train_data in the recipe or pass --data", recipe)
    return config


def is_launched_worker() -> bool:
    """True inside a process started by ``paddle.distributed.launch``."""
    return "PADDLE_TRAINER_ID" in os.environ and "PADDLE_TRAINERS_NUM" in os.environ


def relaunch(config: TrainConfig, nproc: int, gpus: Optional[str], argv: list[str]) -> int:
    """Run this same command in ``nproc`` worker processes (one per ``--gpus`` id when only those are given);
    returns the launcher's exit code."""
    from embedkit.training.arguments import check_device_support
    from embedkit.training.launch import launcher_env, relaunch_command

    gpu_ids = [int(g) for g in gpus.split(",") if g.strip().isdigit()] if gpus else None
    if gpu_ids and nproc == 1:  # `--gpus 0,1,2,3` alone means one worker per listed GPU
        nproc = len(gpu_ids)
    check_device_support(config, nproc=nproc, gpu_ids=gpu_ids)  # refuse before starting N processes
    log_dir = Path(config.output_dir) / "logs" / "launch"
    command = relaunch_command(nproc, gpus, argv, log_dir=str(log_dir))
    return subprocess.call(command, env=launcher_env(gpus))

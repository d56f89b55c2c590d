"""`embedkit train`: fine-tune an embedding model from a recipe, on one process or several."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from embedkit import console
from embedkit.cli.options import RecipeOpt, SetOpt, output_options
from embedkit.cli.params import count_option
from embedkit.console import Output


@output_options
def train_command(
    recipe: RecipeOpt = None,
    overrides: SetOpt = None,
    model: Annotated[Optional[str], typer.Option(help="Base model: a directory, a name fetched by `embedkit download`, pkg:PACKAGE or tiny-bert (model_name_or_path).")] = None,
    data: Annotated[Optional[str], typer.Option(help="Training JSONL (file or directory) or a BEIR/T2Ranking directory (train_data).")] = None,
    output_dir: Annotated[Optional[str], typer.Option(help="Run directory (output_dir).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start afresh: remove this run's checkpoints and outputs instead of resuming.")] = False,
    merge_lora: Annotated[bool, typer.Option("--merge-lora", help="LoRA runs: also save the adapter merged into a full model (merged/).")] = False,
    nproc: Annotated[int, count_option("--nproc", help="Worker processes (one per GPU; gloo processes on CPU).")] = 1,
    gpus: Annotated[Optional[str], typer.Option(metavar="IDS", help="GPU ids for the workers, e.g. 0,1,2,3.")] = None,
    *,
    out: Output,
) -> None:
    """Fine-tune an embedding model: resumes from the last checkpoint, evaluates before and after (eval.data)."""
    from embedkit.training.command import build_config, is_launched_worker, relaunch

    worker_rank = int(os.environ.get("PADDLE_TRAINER_ID", "0")) if is_launched_worker() else 0
    if worker_rank > 0:  # rank 0 reports for the run; the other workers print only their errors
        out = console.configure(json_mode=False, verbose=0, quiet=True)
    config = build_config(recipe, overrides or [], model, data, output_dir, merge_lora)
    if (nproc > 1 or gpus) and not is_launched_worker():
        raise typer.Exit(relaunch(config, nproc, gpus, sys.argv[1:]))
    from embedkit.training.run import render, train

    result = train(config, overwrite=overwrite, out=out)
    if worker_rank == 0:
        render(result, out)
        out.result(result.to_dict())

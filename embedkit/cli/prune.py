"""`embedkit prune`: remove the least useful transformer layers, with the cost in quality and speed measured."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from typer._click.exceptions import UsageError

from embedkit.choices import EngineChoice, PruneMetric, Reduce, Selection
from embedkit.cli.options import BatchSizeOpt, output_options
from embedkit.cli.params import choice_option, count_option
from embedkit.console import Output


def _layer_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--layers expects 0-based layer numbers such as 3,4, got {text!r}") from None


@output_options
def prune_command(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="Model directory (any that eval takes; a LoRA adapter dir is merged first).")],
    output: Annotated[Path, typer.Option("--output", metavar="DIR", help="The pruned model dir to write (new or empty, outside MODEL).")],
    n_prune_layers: Annotated[Optional[int], count_option("--n-prune-layers", help="How many layers to remove.")] = None,
    layers: Annotated[Optional[str], typer.Option("--layers", metavar="I,J", parser=_layer_list, help="Remove exactly these layers (0-based); no scores are computed.")] = None,
    metric: Annotated[str, choice_option(PruneMetric, "--metric", help="Layer score: bi (1 - cos, ShortGPT) or angular (arccos/π).")] = PruneMetric.BI.value,
    reduce: Annotated[str, choice_option(Reduce, "--reduce", help="Per-token scores averaged (mean) or summed (sum, as the original script).")] = Reduce.MEAN.value,
    include_padding: Annotated[bool, typer.Option("--include-padding", help="Count padded positions too (the original script's numbers, with --reduce sum).")] = False,
    select: Annotated[str, choice_option(Selection, "--select", help="bi: the N lowest scores; eval: greedy, one layer per round, by NDCG@10 on --select-data.")] = Selection.BI.value,
    calibration: Annotated[Optional[Path], typer.Option("--calibration", metavar="DATA", help="Texts to score layers on: a BEIR/T2Ranking dir, training JSONL, or a .txt file (default: --eval-data).")] = None,
    calibration_split: Annotated[Optional[str], typer.Option(help="Split whose queries a retrieval dataset calibrates with (default: --split; its judgments are not used).")] = None,
    calibration_samples: Annotated[int, count_option("--calibration-samples", help="Texts sampled for the scores (seeded; half queries when there are enough).")] = 512,
    max_length: Annotated[Optional[int], count_option("--max-length", help="Max tokens per calibration text (default: each side's max length).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the calibration and selection samples.")] = 42,
    eval_data: Annotated[Optional[Path], typer.Option("--eval-data", metavar="DIR", help="Evaluate before and after on this BEIR/T2Ranking dir (NDCG@10, MRR@10, Recall@100, docs/s).")] = None,
    split: Annotated[str, typer.Option(help="Split of --eval-data reported.")] = "test",
    select_data: Annotated[Optional[Path], typer.Option("--select-data", metavar="DIR", help="--select eval: the dataset layers are chosen on (default: --eval-data).")] = None,
    select_split: Annotated[str, typer.Option(help="--select eval: its split; must not be the reported one.")] = "train",
    candidates: Annotated[Optional[int], count_option("--candidates", help="--select eval: try only the K lowest-scoring remaining layers per round.")] = None,
    select_z: Annotated[Optional[float], typer.Option("--select-z", min=0.0, metavar="Z", help="--select eval: a trial beats another only by Z standard errors of their per-query NDCG@10 difference; ties go to the lower layer score (default 1.96, a 95 % interval; 0: the best mean wins).")] = None,
    select_corpus: Annotated[Optional[int], count_option("--select-corpus", help="--select eval: evaluate against this many documents (all judged ones plus a seeded sample), not the whole corpus.")] = None,
    heal: Annotated[Optional[Path], typer.Option("--heal", metavar="RECIPE", help="Fine-tune the pruned model with this recipe into OUTPUT-healed (resumable), then evaluate it too.")] = None,
    engine: Annotated[str, choice_option(EngineChoice, "--engine", help="Engine for the evaluations (default: auto, the fastest here).")] = EngineChoice.AUTO.value,
    batch_size: BatchSizeOpt = None,
    *,
    out: Output,
) -> None:
    """Remove transformer layers (ShortGPT block influence, calibrated on the task) and report the cost."""
    from embedkit.compression import PruneRequest, prune
    from embedkit.compression.report import render

    request = PruneRequest(
        model=model, output=output, n_prune_layers=n_prune_layers, layers=layers, metric=metric, reduce=reduce,
        include_padding=include_padding, select=select, calibration=calibration, calibration_split=calibration_split,
        calibration_samples=calibration_samples, max_length=max_length, seed=seed, eval_data=eval_data,
        split=split, select_data=select_data, select_split=select_split, candidates=candidates,
        select_corpus=select_corpus, heal=heal, engine=engine, batch_size=batch_size or 32,
        show_progress=out.verbosity >= 0, **({} if select_z is None else {"select_z": select_z}),
    )
    result = prune(request)
    out.result(result.to_dict())
    render(result, out)

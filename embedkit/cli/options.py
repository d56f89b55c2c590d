"""Options more than one command takes, declared once; `output_options` adds --json, -v and -q to a command."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from embedkit import console
from embedkit.choices import DeviceChoice, EngineChoice, Pooling
from embedkit.cli.params import choice_option, count_option

RecipeOpt = Annotated[Optional[Path], typer.Option("--recipe", help="Recipe YAML with the run's settings.")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a recipe value: key=value, dotted keys for sections (repeatable)."),
]

# How a model is run.
EngineOpt = Annotated[Optional[str], choice_option(
    EngineChoice, "--engine", help="auto (fastest here), paddle, paddle-inference or onnx (default: auto).")]
BatchSizeOpt = Annotated[Optional[int], count_option(
    "--batch-size", help="Most texts per encoder batch (default: 32); on CPU a batch also holds at most 1024 padded "
                         "tokens, the fastest size there.")]
DeviceOpt = Annotated[str, choice_option(DeviceChoice, "--device", help="Where the model runs: auto (gpu when one is visible), cpu or gpu.")]
ThreadsOpt = Annotated[Optional[int], typer.Option(help="Threads per engine. (default: usable cores).")]

# Embedding settings for a checkpoint without embedkit.json (or an experiment on one with it).
PoolingOpt = Annotated[Optional[str], choice_option(
    Pooling, "--pooling", help="cls, mean or last (for a checkpoint without embedkit.json).")]
NormalizeOpt = Annotated[Optional[bool], typer.Option(
    "--normalize/--no-normalize", help="L2-normalise embeddings (default: the model's).")]
QueryInstructionOpt = Annotated[Optional[str], typer.Option(help="Prefix for queries (default: the model's).")]
PassageInstructionOpt = Annotated[Optional[str], typer.Option(help="Prefix for passages (default: the model's).")]
MaxLengthOpt = Annotated[Optional[int], count_option(
    "--max-length", help="Max tokens per passage, and per query unless --query-max-length.")]
QueryMaxLengthOpt = Annotated[Optional[int], count_option("--query-max-length", help="Max tokens per query.")]


def spec_overrides(pooling: Optional[str] = None, normalize: Optional[bool] = None,
                   query_instruction: Optional[str] = None, passage_instruction: Optional[str] = None,
                   max_length: Optional[int] = None, query_max_length: Optional[int] = None) -> dict[str, Any]:
    """The EmbedderSpec fields the flags above set, for `Encoder.from_model_dir(overrides=...)`."""
    fields = {
        "pooling": pooling,
        "normalized": normalize,
        "query_instruction": query_instruction,
        "passage_instruction": passage_instruction,
        "passage_max_len": max_length,
        "query_max_len": query_max_length if query_max_length is not None else max_length,
    }
    return {k: v for k, v in fields.items() if v is not None}


_OUTPUT_OPTIONS = [
    inspect.Parameter("json_out", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--json", help="Print the result as JSON on stdout; human output goes to stderr.")]),
    inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=0, annotation=Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail (repeatable).")]),
    inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors.")]),
]


def output_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the --json, -v/--verbose and -q/--quiet options; it receives the configured
    `console.Output` as its keyword-only ``out`` parameter.

    Options of the command itself (not of the top-level app), so they go after the command name, as in
    ``embedkit eval MODEL --json``.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for name, p in signature.parameters.items() if name != "out"]

    @functools.wraps(command)
    def run(*args: Any, json_out: bool, verbose: int, quiet: bool, **kwargs: Any) -> None:
        command(*args, out=console.configure(json_out, verbose, quiet), **kwargs)

    # Typer reads a command's options from its signature.
    run.__signature__ = signature.replace(parameters=[*own, *_OUTPUT_OPTIONS])
    run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
    return run

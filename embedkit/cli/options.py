"""Options more than one command takes, declared once: single options as annotated types, sets of options as
decorators (`output_options`: --json, -v, -q; `embedding_options`: the settings of a plain checkpoint)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from embedkit import console
from embedkit.choices import DeviceChoice, EngineChoice, Pooling, PrecisionChoice
from embedkit.cli.params import choice_option, count_option

RecipeOpt = Annotated[Optional[Path], typer.Option("--recipe", help="Recipe YAML with the run's settings.")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a recipe value: key=value, dotted keys for sections (repeatable)."),
]

# How a model is run.
EngineOpt = Annotated[Optional[str], choice_option(
    EngineChoice, "--engine", help="auto (fastest here), paddle, paddle-inference, onnx or openvino (default: auto).")]
PrecisionOpt = Annotated[Optional[str], choice_option(
    PrecisionChoice, "--precision", help="What the engine computes in: auto (bf16 where the engine and the CPU have "
                                         "it, else fp32), fp32 or bf16 (openvino on a CPU with AMX-BF16 or "
                                         "AVX512-BF16). (default: auto; bench: each precision the engine has here).")]
BatchSizeOpt = Annotated[Optional[int], count_option(
    "--batch-size", help="Most texts per encoder batch (default: 32); on CPU a batch also holds at most 1024 padded "
                         "tokens, the fastest size there.")]
DeviceOpt = Annotated[str, choice_option(
    DeviceChoice, "--device", help="Where the model runs: auto (gpu when one is visible), cpu or gpu.")]
ThreadsOpt = Annotated[Optional[int], typer.Option(help="Threads per engine. (default: usable cores).")]

# Embedding settings for a checkpoint without embedkit.json (or an experiment on one with it).
PoolingOpt = Annotated[Optional[str], choice_option(
    Pooling, "--pooling", help="cls, mean or last (for a checkpoint without embedkit.json).")]
NormalizeOpt = Annotated[Optional[bool], typer.Option(
    "--normalize/--no-normalize", help="L2-normalise embeddings (default: the model's).")]


def spec_overrides(embedding: dict[str, Any]) -> dict[str, Any]:
    """The EmbedderSpec fields that `embedding_options`' values set, for `Encoder.from_model_dir(overrides=...)`."""
    from embedkit.modeling.overrides import embedding_overrides

    return embedding_overrides(**embedding)


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _option_group(receiver: str, options: list[inspect.Parameter], build: Callable[..., Any]):
    """A decorator that gives a command ``options`` (after its own) and calls it with their values gathered by
    ``build`` into its keyword-only parameter ``receiver``: a set of options declared once for many commands."""
    names = [option.name for option in options]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for name, p in signature.parameters.items() if name != receiver]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> None:
            gathered = build(**{name: kwargs.pop(name) for name in names})
            command(*args, **kwargs, **{receiver: gathered})

        # Typer reads a command's options from its signature.
        run.__signature__ = signature.replace(parameters=[*own, *options])
        run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
        return run

    return decorate


_embedding_group = _option_group("embedding", [
    _keyword("pooling", PoolingOpt, None),
    _keyword("normalize", NormalizeOpt, None),
    _keyword("query_instruction", Annotated[Optional[str], typer.Option(
        help="Prefix for queries (default: the model's).")], None),
    _keyword("passage_instruction", Annotated[Optional[str], typer.Option(
        help="Prefix for passages (default: the model's).")], None),
    _keyword("max_length", Annotated[Optional[int], count_option(
        "--max-length", help="Max tokens per passage, and per query unless --query-max-length.")], None),
    _keyword("query_max_length", Annotated[Optional[int], count_option(
        "--query-max-length", help="Max tokens per query.")], None),
], dict)
_output_group = _option_group("out", [
    _keyword("json_mode", Annotated[bool, typer.Option(
        "--json", help="Print the result as JSON on stdout; human output goes to stderr.")], False),
    _keyword("verbose", Annotated[int, typer.Option(
        "--verbose", "-v", count=True, help="More detail (repeatable).")], 0),
    _keyword("quiet", Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")], False),
], console.configure)


def embedding_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the embedding settings for a plain checkpoint (--pooling, --normalize, instructions, max
    lengths); it receives their values as the dict ``embedding``, keyed by the names `EvalRequest` uses."""
    return _embedding_group(command)


def output_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` --json, -v/--verbose and -q/--quiet; it receives the configured `console.Output` as ``out``.

    Options of each command rather than of the top-level app, so they go after the command name, as in
    ``embedkit eval MODEL --json``.
    """
    return _output_group(command)

"""Options more than one command takes, declared once: single options as annotated types, sets of options as
decorators (`output_options`: --json, -v, -q; `embedding_options`: the settings of a plain checkpoint)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer._click.exceptions import UsageError

from embedkit import console
from embedkit.choices import DeviceChoice, EngineChoice, Pooling, PrecisionChoice
from embedkit.cli.params import choice_option, count_option, flag_option, switch

# Help panels, so `--help` groups options by what they are about (and each panel's table fits 80 columns).
ENGINE_PANEL = "Engine"
EMBEDDING_PANEL = "Embedding (a checkpoint without embedkit.json)"

RecipeOpt = Annotated[Optional[Path], typer.Option("--recipe", metavar="FILE", help="Recipe YAML with the run's settings.")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="KEY=VALUE",
                 help="Override a recipe value; dotted keys reach sections (repeatable)."),
]

# How a model is run.
EngineOpt = Annotated[Optional[str], choice_option(
    EngineChoice, "--engine", rich_help_panel=ENGINE_PANEL,
    help="auto (the fastest here), paddle, paddle-inference, onnx or openvino (default: auto).")]
PrecisionOpt = Annotated[Optional[str], choice_option(
    PrecisionChoice, "--precision", rich_help_panel=ENGINE_PANEL,
    help="What the engine computes in: fp32, bf16 (openvino on a CPU with AMX-BF16 or AVX512-BF16) or auto "
         "(bf16 where the engine and CPU have it). (default: auto; bench: every one the engine has here).")]
BatchSizeOpt = Annotated[Optional[int], count_option(
    "--batch-size", rich_help_panel=ENGINE_PANEL,
    help="Most texts per batch (default: 32); on CPU also at most 1024 padded tokens.")]
DeviceOpt = Annotated[str, choice_option(
    DeviceChoice, "--device", rich_help_panel=ENGINE_PANEL, help="auto (gpu when one is visible), cpu or gpu.")]
ThreadsOpt = Annotated[Optional[int], count_option(
    "--threads", rich_help_panel=ENGINE_PANEL, help="Threads per engine. (default: usable cores).")]

# Embedding settings for a checkpoint without embedkit.json (or an experiment on one with it). Flags are named
# after the recipe keys; a help text names the key where the flag's name differs.
PoolingOpt = Annotated[Optional[str], choice_option(
    Pooling, "--pooling", rich_help_panel=EMBEDDING_PANEL,
    help="Token pooling, the recipe's sentence_pooling_method (default: the model's).")]
NormalizeOpt = Annotated[bool, flag_option(
    "--normalize", rich_help_panel=EMBEDDING_PANEL,
    help="L2-normalise embeddings, the recipe's normalized; --no-normalize: do not (default: the model's).")]
NoNormalizeOpt = Annotated[bool, flag_option("--no-normalize", hidden=True)]


def normalize_value(normalize: bool, no_normalize: bool) -> Optional[bool]:
    """--normalize / --no-normalize as the spec's ``normalized`` (None: the model's)."""
    return switch(normalize, no_normalize, "--normalize", "--no-normalize")


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


def _old_name(new: Optional[Any], old: Optional[Any], new_flag: str, old_flag: str) -> Optional[Any]:
    """The value of an option given under its new flag or its old one (kept, hidden, so scripts keep working)."""
    if old is None:
        return new
    if new is not None and new != old:
        raise UsageError(f"{old_flag} is the old name of {new_flag}: give one of them")
    return old


def _embedding_values(no_normalize: bool = False, query_max_length: Optional[int] = None,
                      **values: Any) -> dict[str, Any]:
    values["normalize"] = normalize_value(values["normalize"], no_normalize)
    values["query_max_len"] = _old_name(values["query_max_len"], query_max_length, "--query-max-len",
                                        "--query-max-length")
    return values


def _embedding_option(*flags: str, **option: Any) -> Any:
    return typer.Option(*flags, rich_help_panel=EMBEDDING_PANEL, **option)


def _embedding_count(flag: str, **option: Any) -> Any:
    return count_option(flag, rich_help_panel=EMBEDDING_PANEL, **option)


_embedding_group = _option_group("embedding", [
    _keyword("pooling", PoolingOpt, None),
    _keyword("normalize", NormalizeOpt, False),
    _keyword("no_normalize", NoNormalizeOpt, False),
    _keyword("query_instruction", Annotated[Optional[str], _embedding_option(
        "--query-instruction", metavar="TEXT", help="Prefix for queries, the recipe's query_instruction_for_retrieval.")], None),
    _keyword("passage_instruction", Annotated[Optional[str], _embedding_option(
        "--passage-instruction", metavar="TEXT", help="Prefix for passages, the recipe's passage_instruction_for_retrieval.")],
        None),
    _keyword("query_max_len", Annotated[Optional[int], _embedding_count(
        "--query-max-len", help="Max tokens per query (before: --query-max-length).")], None),
    _keyword("passage_max_len", Annotated[Optional[int], _embedding_count(
        "--passage-max-len", help="Max tokens per passage.")], None),
    _keyword("max_length", Annotated[Optional[int], _embedding_count(
        "--max-length", help="Max tokens per query and per passage, as eval.max_length in a recipe "
                             "(--query-max-len and --passage-max-len win).")], None),
    _keyword("query_max_length", Annotated[Optional[int], count_option("--query-max-length", hidden=True)], None),
], _embedding_values)
_output_group = _option_group("out", [
    _keyword("json_mode", Annotated[bool, flag_option(
        "--json", help="Print the result as JSON on stdout; human output goes to stderr.")], False),
    _keyword("verbose", Annotated[int, typer.Option(
        "--verbose", "-v", count=True, metavar="", help="More detail (repeatable).")], 0),
    _keyword("quiet", Annotated[bool, flag_option("--quiet", "-q", help="Only errors.")], False),
], console.configure)


def passage_max_len_option(default: int, description: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--passage-max-len for a command that encodes passages only (its old name --max-length kept, hidden); the
    command receives it as ``passage_max_len``."""
    def value(passage_max_len: int, max_length: Optional[int]) -> int:
        if max_length is None:
            return passage_max_len
        return _old_name(None if passage_max_len == default else passage_max_len, max_length, "--passage-max-len",
                         "--max-length")

    return _option_group("passage_max_len", [
        _keyword("passage_max_len", Annotated[int, count_option(
            "--passage-max-len", help=f"{description} (before: --max-length)")], default),
        _keyword("max_length", Annotated[Optional[int], count_option("--max-length", hidden=True)], None),
    ], value)


def embedding_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the embedding settings for a plain checkpoint (--pooling, --normalize, instructions, max
    lengths); it receives their values as the dict ``embedding``, keyed by the names `EvalRequest` uses (and
    `embedding_overrides` takes)."""
    return _embedding_group(command)


def output_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` --json, -v/--verbose and -q/--quiet; it receives the configured `console.Output` as ``out``.

    Options of each command rather than of the top-level app, so they go after the command name, as in
    ``embedkit eval MODEL --json``.
    """
    return _output_group(command)

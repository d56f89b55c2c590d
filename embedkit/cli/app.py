"""The `embedkit` Typer app: the top-level options and the commands, each defined in its own module."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

import embedkit
from embedkit.cli import data, recipe
from embedkit.cli.bench import bench_command
from embedkit.cli.download import download_command
from embedkit.cli.encode import encode_command
from embedkit.cli.eval import eval_command
from embedkit.cli.export import export_command
from embedkit.cli.prune import prune_command
from embedkit.cli.quantize import quantize_command
from embedkit.cli.serve import serve_command
from embedkit.cli.train import train_command

app = typer.Typer(name="embedkit", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _print_version(requested: bool) -> None:
    if requested:
        sys.stdout.write(f"embedkit {embedkit.__version__}\n")
        raise typer.Exit()


@app.callback()
def embedkit_app(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print embedkit's version and exit.")] = False,
) -> None:
    """Train, evaluate, benchmark, prune, quantize, export and serve text-embedding models on PaddlePaddle."""


app.add_typer(data.app, name="data")
app.add_typer(recipe.app, name="recipe")
app.command("train")(train_command)
app.command("eval")(eval_command)
app.command("bench")(bench_command)
app.command("encode")(encode_command)
app.command("export")(export_command)
app.command("serve")(serve_command)
app.command("download")(download_command)
app.command("prune")(prune_command)
app.command("quantize")(quantize_command)

"""`embedkit data check`: validate a dataset and report what is in it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from embedkit.cli.options import output_options
from embedkit.console import Output
from embedkit.errors import EXIT_USAGE

app = typer.Typer(help="Inspect and validate datasets.", no_args_is_help=True)


@app.command("check")
@output_options
def check_command(
    path: Annotated[Path, typer.Argument(help="Training JSONL (file or directory), a BEIR directory or a T2Ranking directory.")],
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer (model dir) for token-length statistics.")] = None,
    split: Annotated[Optional[str], typer.Option(help="qrels split to check (BEIR/T2Ranking); all splits by default.")] = None,
    *,
    out: Output,
) -> None:
    """Validate a dataset and print counts, length statistics and problems."""
    from embedkit.data.check import check_dataset, render_report

    def load_tokenizer():
        from embedkit.modeling.loading import load_tokenizer

        return load_tokenizer(tokenizer)

    report = check_dataset(path, tokenizer=load_tokenizer if tokenizer else None, split=split)
    render_report(report, out)
    if report.errors:
        # sys.exit, not typer.Exit: under main()'s standalone_mode=False click returns typer.Exit's code
        # instead of raising it, and main() then exits 0.
        sys.exit(EXIT_USAGE)

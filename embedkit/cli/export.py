"""`embedkit export`: write a model as a sentence-transformers model or an ONNX serving dir."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from embedkit.choices import ExportFormat
from embedkit.cli.options import embedding_options, output_options, spec_overrides
from embedkit.cli.params import choice_option
from embedkit.console import Output


@output_options
@embedding_options
def export_command(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="Model directory (any that eval takes).")],
    fmt: Annotated[str, choice_option(ExportFormat, "--format", help="sentence-transformers: a dir SentenceTransformer(DIR) loads; onnx: the checked ONNX graph with its tokenizer, for embedkit load/eval/bench/serve.")],
    output: Annotated[Path, typer.Option("--output", metavar="DIR", help="New (or empty) directory to write.")],
    *,
    embedding: dict[str, Any],
    out: Output,
) -> None:
    """Export a model for sentence-transformers or as a self-contained ONNX serving dir, checked against embedkit."""
    from embedkit.export import export_model

    result = export_model(model, fmt, output, spec_overrides(embedding) or None)
    out.result(result.to_dict())
    out.info(Text(f"{result.format} export of {result.source} -> {result.output} in {result.seconds:.1f} s"))

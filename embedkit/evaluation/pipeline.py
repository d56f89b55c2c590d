"""The evaluation flow: data -> encode (through the cache) -> search -> metrics -> report.

`evaluate` is the service behind `embedkit eval` and the trainer's before/after table; `evaluate_encoder`
scores an already-loaded encoder on one dataset; `evaluate_checkpoints` sweeps a training run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

from embedkit import console
from embedkit.data import RetrievalData
from embedkit.errors import UserError
from embedkit.evaluation.datasets import EvalDataset, dataset_name, load_dataset, unique_names
from embedkit.evaluation.matryoshka import check_dims, truncation
from embedkit.evaluation.metrics import score_run
from embedkit.evaluation.options import EvalOptions, check_search
from embedkit.evaluation.outputs import write_checkpoints, write_report
from embedkit.evaluation.report import CheckpointResult, CheckpointsReport, DatasetResult, EvalReport, Timings
from embedkit.progress import bar, progress_bars
from embedkit.retrieval.cache import EmbeddingCache
from embedkit.retrieval.checkpoints import run_models
from embedkit.retrieval.embed import embed
from embedkit.retrieval.runs import build_run
from embedkit.retrieval.search import search_passes, search_with_stats

DatasetArg = Union[str, Path, EvalDataset, RetrievalData]


def load_datasets(datasets: Sequence[DatasetArg], split: str) -> list[EvalDataset]:
    """Paths are loaded (and validated) here, before any model is, so data problems surface in seconds."""
    loaded = []
    for item in datasets:
        if isinstance(item, EvalDataset):
            loaded.append(item)
        elif isinstance(item, RetrievalData):
            loaded.append(EvalDataset(dataset_name(item.source), item))
        else:
            loaded.append(load_dataset(item, split))
    if not loaded:
        raise UserError("no dataset to evaluate: give --data DIR (repeatable)")
    return unique_names(loaded)


def load_encoder(model_dir: str | Path, options: EvalOptions):
    from embedkit.inference import Encoder

    return Encoder.from_model_dir(model_dir, engine=options.engine, precision=options.precision,
                                  overrides=options.overrides or None,
                                  batch_size=options.batch_size)


def evaluate(model_dir: str | Path, datasets: Sequence[DatasetArg], options: Optional[EvalOptions] = None) -> EvalReport:
    """Evaluate the model in ``model_dir`` on each dataset (BEIR/T2Ranking dirs or loaded data).

    Writes ``results.json``, TREC run files and the Matryoshka plot when ``options.output_dir`` is set.
    """
    options = options or EvalOptions()
    loaded = load_datasets(datasets, options.split)
    encoder = load_encoder(model_dir, options)
    report = evaluate_loaded(encoder, str(model_dir), loaded, options)
    if options.output_dir is not None:
        write_report(report, options.output_dir)
    return report


def evaluate_loaded(encoder, model_name: str, datasets: Sequence[EvalDataset], options: EvalOptions) -> EvalReport:
    cache = EmbeddingCache() if options.use_cache else None
    with progress_bars(options.show_progress) as progress:
        results = [evaluate_encoder(encoder, dataset, options, cache=cache, progress=progress) for dataset in datasets]
    return EvalReport(model=model_name, engine=encoder.engine, precision=encoder.precision,
                      fingerprint=encoder.fingerprint, dim=encoder.dim,
                      spec=encoder.spec.model_dump(mode="json"), datasets=results)


def evaluate_encoder(encoder, data: DatasetArg, options: Optional[EvalOptions] = None, *,
                     cache: Optional[EmbeddingCache] = None, progress=None) -> DatasetResult:
    """Encode one dataset's queries and corpus with ``encoder``, search, and score the run.

    ``encoder`` is an `embedkit.inference.Encoder` (or anything with its ``encode_queries``/``encode_passages``,
    ``spec``, ``dim``, ``engine``, ``precision``, ``identity`` and ``fingerprint``). ``cache`` None means encode without the cache.
    """
    options = options or EvalOptions()
    (dataset,) = load_datasets([data], options.split)
    dims = check_dims(options.dims, encoder.dim)
    check_search(options, [encoder.dim, *dims])
    timings = Timings()

    queries = embed(encoder, dataset.query_texts(), "query", cache,
                    bar(progress, f"{dataset.name}: encode queries", len(dataset.data.queries)))
    timings.encode_queries_s = queries.seconds
    corpus = embed(encoder, dataset.doc_texts(), "passage", cache,
                   bar(progress, f"{dataset.name}: encode corpus", len(dataset.data.corpus)))
    timings.encode_corpus_s = corpus.seconds
    timings.docs_per_s = corpus.per_second

    drop_identical = options.ignore_identical_ids
    if drop_identical is None:
        drop_identical = dataset.mteb_ignores_identical_ids()
    query_ids, doc_ids = dataset.query_ids, dataset.doc_ids

    def run_for(transform=None, label=""):
        searches = search_passes(len(doc_ids), options.search) * len(query_ids)
        advance = bar(progress, f"{dataset.name}: search{label}", searches)
        started = time.perf_counter()
        scores, indices, stats = search_with_stats(queries.vectors, corpus.vectors, options.top_k, options.search,
                                                   advance, transform)
        elapsed = time.perf_counter() - started
        return build_run(query_ids, doc_ids, scores, indices, drop_identical), elapsed, stats, indices.shape[1]

    run, timings.search_s, stats, depth = run_for()
    started = time.perf_counter()
    metrics = score_run(dataset.data.qrels, run)
    timings.scoring_s = time.perf_counter() - started
    by_dim = {}
    for dim in dims:
        truncated_run, *_ = run_for(truncation(dim, encoder.spec.normalized), f" @ dim {dim}")
        by_dim[dim] = score_run(dataset.data.qrels, truncated_run)

    return DatasetResult(
        name=dataset.name, path=str(dataset.data.source), split=dataset.data.split, format=dataset.data.format,
        num_docs=len(doc_ids), num_queries=len(query_ids), metrics=metrics, timings=timings,
        cached={"queries": queries.from_cache, "corpus": corpus.from_cache}, index=options.search.index,
        top_k=options.top_k, ignore_identical_ids=drop_identical, index_dtype=stats.dtype,
        index_bytes=stats.index_bytes, rescore=stats.rescore, rescore_bytes=stats.rescore_bytes, depth=depth,
        by_dim=by_dim, run=run,
    )


def evaluate_checkpoints(run_dir: str | Path, datasets: Sequence[DatasetArg],
                         options: Optional[EvalOptions] = None) -> CheckpointsReport:
    """Evaluate every checkpoint of a training run; ones that cannot be loaded are reported as skipped."""
    options = options or EvalOptions()
    loaded = load_datasets(datasets, options.split)
    out = console.get()
    results = []
    for model in run_models(run_dir):
        reason = model.incomplete
        if reason is None:
            try:
                encoder = load_encoder(model.path, options)
            except Exception as exc:  # a sweep reports a broken checkpoint and goes on with the others
                reason = exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        if reason is not None:
            out.info(f"[yellow]skipped[/] {model.name}: {reason}")
            results.append(CheckpointResult(model.name, str(model.path), skipped=reason))
            continue
        out.info(f"evaluating {model.name}")
        results.append(CheckpointResult(model.name, str(model.path),
                                        report=evaluate_loaded(encoder, str(model.path), loaded, options)))
    report = CheckpointsReport(str(run_dir), results)
    if options.output_dir is not None:
        write_checkpoints(report, options.output_dir)
    return report

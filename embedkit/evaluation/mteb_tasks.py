"""`embedkit eval --mteb`: MTEB retrieval tasks through `mteb.evaluate`, from local files or MTEB's own loaders.

With ``--data DIR`` a task is built from the directory (BEIR or T2Ranking) by overriding ``load_data``: nothing is
fetched, so it works with ``HF_HUB_OFFLINE=1``. When the name is a built-in MTEB task, its metadata and settings
(main score, ``ignore_identical_ids``...) are kept, so results match that task; any other name becomes a
custom retrieval task. Results are MTEB `TaskResult` JSON files under ``--output``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from embedkit.errors import UserError
from embedkit.evaluation.datasets import EvalDataset
from embedkit.evaluation.options import EvalOptions
from embedkit.retrieval.cache import EmbeddingCache, texts_digest


@dataclass
class MtebTaskScores:
    task: str
    split: str
    subset: str
    scores: dict[str, Any]
    local_data: Optional[str]

    @property
    def main_score(self) -> float:
        return self.scores["main_score"]


@dataclass
class MtebReport:
    model: str
    engine: str
    fingerprint: str
    tasks: list[MtebTaskScores]
    results_dir: Optional[str] = None
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "engine": self.engine, "fingerprint": self.fingerprint,
            "results_dir": self.results_dir, "files": self.files,
            "tasks": [{"task": t.task, "split": t.split, "subset": t.subset, "local_data": t.local_data,
                       "main_score": t.main_score, "scores": t.scores} for t in self.tasks],
        }


def builtin_retrieval_task(name: str):
    """The installed MTEB task called ``name`` (None when there is none); a UserError if it is not retrieval."""
    import mteb
    from mteb.abstasks import AbsTaskRetrieval

    try:
        task = mteb.get_task(name)
    except KeyError:
        return None
    if not isinstance(task, AbsTaskRetrieval):
        raise UserError(f"MTEB task {name} is a {task.metadata.type} task; embedkit eval runs retrieval tasks", "--mteb")
    return task


def local_task(name: str, dataset: EvalDataset):
    """An `AbsTaskRetrieval` named ``name`` whose data is ``dataset`` (never downloaded)."""
    from mteb.abstasks import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata

    split = dataset.data.split
    revision = "local-" + texts_digest([*dataset.doc_ids, *dataset.doc_texts(), *dataset.query_ids])[:16]
    source = {"path": str(dataset.data.source), "revision": revision}
    builtin = builtin_retrieval_task(name)
    if builtin is not None:
        base = type(builtin)
        langs = builtin.metadata.eval_langs
        if isinstance(langs, dict):  # one local directory is one subset, whatever languages it mixes
            langs = sorted({code for codes in langs.values() for code in codes})
        metadata = builtin.metadata.model_copy(update={"dataset": source, "eval_splits": [split], "eval_langs": langs})
    else:
        base = AbsTaskRetrieval
        metadata = TaskMetadata(
            name=name, description=f"Local retrieval data from {dataset.data.source} (embedkit).", dataset=source,
            type="Retrieval", category="t2t", modalities=["text"], eval_splits=[split], eval_langs=["und"],
            main_score="ndcg_at_10",
        )

    def load_data(self, num_proc: Optional[int] = None, **kwargs: Any) -> None:
        from datasets import Dataset

        if self.data_loaded:
            return
        docs = dataset.data.corpus
        corpus = Dataset.from_dict({"id": dataset.doc_ids, "title": [d.title or "" for d in docs.values()],
                                    "text": [d.text for d in docs.values()]})
        queries = Dataset.from_dict({"id": dataset.query_ids, "text": dataset.query_texts()})
        qrels = {qid: dict(judged) for qid, judged in dataset.data.qrels.items()}
        self.dataset = {"default": {split: {"corpus": corpus, "queries": queries, "relevant_docs": qrels,
                                            "top_ranked": None}}}
        self.data_loaded = True

    cls = type(f"{base.__name__}FromLocalFiles", (base,), {"metadata": metadata, "load_data": load_data})
    return cls()


def hub_task(name: str, split: str):
    """A built-in task loaded by MTEB itself (from the Hub or the local HF cache); a clear UserError offline."""
    task = builtin_retrieval_task(name)
    if task is None:
        import difflib

        import mteb

        names = [t.metadata.name for t in mteb.get_tasks(task_types=["Retrieval"])]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"no MTEB retrieval task named {name!r}{hint}; to use local data under that name, add --data DIR",
                        "--mteb")
    if split not in task.metadata.eval_splits:
        raise UserError(f"MTEB task {name} has no split {split!r} (it has {', '.join(task.metadata.eval_splits)})",
                        "--split")
    task.filter_eval_splits([split])
    try:
        task.load_data()
    except Exception as exc:  # datasets raises many types offline (ConnectionError, OfflineModeIsEnabled, ...)
        raise UserError(
            f"could not load MTEB task {name} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            f"Without network access the data must be given locally: --mteb {name} --data DIR "
            "(a BEIR directory with corpus.jsonl, queries.jsonl, qrels/<split>.tsv)", "--mteb") from None
    return task


def _quiet_mteb() -> None:
    """MTEB logs each phase at INFO and `datasets` draws a bar per map; with -v they stay."""
    import logging

    from embedkit import console

    if console.get().verbosity > 0:
        return
    logging.getLogger("mteb").setLevel(logging.WARNING)
    import datasets

    datasets.disable_progress_bars()


def run_mteb(model_dir: str | Path, task_names: list[str], datasets: list[EvalDataset],
             options: Optional[EvalOptions] = None) -> MtebReport:
    """Run each task through `mteb.evaluate`; ``datasets`` pair with ``task_names`` in order, or are empty."""
    options = options or EvalOptions()
    if datasets and len(datasets) != len(task_names):
        raise UserError(f"--mteb names {len(task_names)} task(s) but --data gives {len(datasets)} directories; "
                        "give one --data per task, in the same order", "--data")
    from embedkit.evaluation.pipeline import load_encoder
    from embedkit.progress import progress_bars

    encoder = load_encoder(model_dir, options)  # Paddle first: mteb imports torch
    _quiet_mteb()
    import mteb

    from embedkit.evaluation.mteb_encoder import MtebEncoder

    tasks = ([local_task(name, dataset) for name, dataset in zip(task_names, datasets, strict=True)] if datasets
             else [hub_task(name, options.split) for name in task_names])
    cache = mteb.ResultCache(cache_path=options.output_dir) if options.output_dir is not None else None
    with progress_bars(options.show_progress) as progress:
        model = MtebEncoder(encoder, model_dir, EmbeddingCache() if options.use_cache else None, progress)
        # embedkit shows its own progress bars; MTEB's would interleave with them.
        result = mteb.evaluate(model, tasks, cache=cache, overwrite_strategy="always",
                               encode_kwargs={"batch_size": options.batch_size, "show_progress_bar": False},
                               show_progress_bar=False, co2_tracker=False)
    by_name = {t.metadata.name: (str(d.data.source) if datasets else None) for t, d in
               zip(tasks, datasets or [None] * len(tasks), strict=True)}
    scores = [
        MtebTaskScores(task_result.task_name, split, entry["hf_subset"], entry, by_name.get(task_result.task_name))
        for task_result in result.task_results for split, entries in task_result.scores.items() for entry in entries
    ]
    files = []
    if cache is not None:
        meta = model.mteb_model_meta
        files = [str(cache.get_task_result_path(t.metadata.name, meta)) for t in tasks]
    return MtebReport(model=str(model_dir), engine=encoder.engine, fingerprint=encoder.fingerprint, tasks=scores,
                      results_dir=str(options.output_dir) if options.output_dir is not None else None, files=files)

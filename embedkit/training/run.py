"""``embedkit train``: the service behind the command.

recipe → device check → base model → run dir (refused if it is the model's, then resume / overwrite) →
tokenised data → eval before →
PaddleNLP Trainer → final model + run files → eval after → :class:`TrainResult`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from embedkit import __version__, console
from embedkit.config import TrainConfig
from embedkit.config.render import recipe_to_yaml
from embedkit.console import Output
from embedkit.errors import UserError
from embedkit.filenames import EVAL_AFTER_FILE, RECIPE_FILE
from embedkit.fsutil import write_json, write_text
from embedkit.retrieval.checkpoints import checkpoint_global_step
from embedkit.training.arguments import check_device_support, training_arguments
from embedkit.training.checkpoints import (
    FINAL_STAGING_PREFIX,
    changed_settings,
    check_output_dir,
    disk_full_message,
    make_readable,
    prepare_run_dir,
)

SUMMARY_FILE = "train_summary.json"
EVAL_BEFORE_FILE = "eval_before.json"
MERGED_DIR = "merged"


@dataclass
class TrainResult:
    output_dir: str
    base_model: str  # as the recipe names it (a path, pkg:NAME, tiny-bert)
    base_model_dir: str  # the directory it resolved to
    fine_tune_type: str
    resumed_from: Optional[str]
    global_step: int
    final_loss: Optional[float]
    examples_per_second: float
    wall_time_s: float
    train_time_s: float
    parameters: dict[str, int]
    data: list[dict]
    loss_curve: Optional[str]
    merged_dir: Optional[str] = None
    eval_before: Optional[dict] = None
    eval_after: Optional[dict] = None
    embedkit_version: str = __version__
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def process_rank() -> int:
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def train(config: TrainConfig, *, overwrite: bool = False, out: Optional[Output] = None) -> TrainResult:
    """Train (or resume) the run described by ``config``; only rank 0 writes run files and evaluates."""
    started = time.perf_counter()
    out = out or console.get()
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    check_device_support(config, nproc=world)
    _check_paths(config)
    import paddle

    from embedkit.modeling.loading import quiet_paddlenlp

    quiet_paddlenlp()
    run_dir = Path(config.output_dir).expanduser().resolve()
    is_main = process_rank() == 0
    args = training_arguments(config, run_dir)  # initialises the process group under a launcher

    from paddlenlp.trainer import PrinterCallback
    from paddlenlp.trainer.integrations import VisualDLCallback
    from paddlenlp.trainer.trainer_utils import set_seed

    from embedkit.training.base_model import resolve_base_model
    from embedkit.training.callbacks import FinalStepCallback, RichProgressCallback, VisualDLLogCallback
    from embedkit.training.collator import EmbedCollator
    from embedkit.training.dataset import TrainDataset, describe_sources, load_training_data
    from embedkit.training.modeling import BiEncoderForTraining, count_parameters, load_embedder_for_training
    from embedkit.training.preflight import check_against_model
    from embedkit.training.trainer import EmbeddingTrainer

    with _main_process_first(world, is_main):  # a built-in model is written once, by rank 0
        base_dir = resolve_base_model(config.model_name_or_path, lambda: _vocabulary_texts(config), seed=0)
    check_against_model(config, base_dir)
    check_output_dir(run_dir, base_dir)  # before the run dir is touched: --overwrite must not reach the model
    recipe_yaml = recipe_to_yaml(config)
    if is_main:
        resume = prepare_run_dir(run_dir, overwrite, out.warning)
    if world > 1:
        paddle.distributed.barrier()
    if not is_main:
        from embedkit.retrieval.checkpoints import last_checkpoint

        resume = None if overwrite else last_checkpoint(run_dir)
    if resume is not None:
        out.info(f"Resuming from [bold]{resume}[/] (pass --overwrite to start afresh)")
        changed = changed_settings(resume, recipe_yaml)
        if changed:
            out.warning(f"{resume}: resuming with settings changed since this checkpoint was saved: "
                        + "; ".join(changed))
    base_reference = config.model_name_or_path if not Path(config.model_name_or_path).is_dir() else str(base_dir)
    set_seed(config.seed)
    # Optimizer state is saved under Paddle's generated parameter and accumulator names, which count every layer
    # and optimizer this process made before (tiny-bert built on a first run but not on its resume, an earlier
    # embedkit.train call): fresh names make them the same in every run.
    with paddle.utils.unique_name.guard():
        embedder, tokenizer = load_embedder_for_training(base_dir, config, base_reference)
    params = count_parameters(embedder)
    out.info(f"Model [bold]{base_reference}[/] ({config.fine_tune_type}): trainable parameters "
             f"{params.trainable:,} / {params.total:,} ({params.fraction:.2%})")

    with _main_process_first(world, is_main), _LazyProgress(out, "tokenise") as progress:
        # other ranks then read rank 0's cache
        data = load_training_data(config, tokenizer, progress.advance, append_eos=embedder.spec.appends_eos(),
                                  masked_query_tokens=embedder.masked_tokens.get("query"))
    cached = all(s.cache_hit for s in data.sources)
    out.info(f"Training data: {len(data.tokens):,} examples, {len(data.tokens.passage_tokens):,} passages"
             + (" (tokenised earlier, from the cache)" if cached else ""))

    eval_before = None
    if is_main and config.eval.data:
        eval_before = _eval_before(config, base_dir, embedder.spec, run_dir, out)

    group_size = 1 if config.use_inbatch_neg else config.train_group_size
    dataset = TrainDataset(data.tokens, group_size, config.seed)
    icl = None
    if config.icl.examples_per_query:
        from embedkit.training.icl import InBatchExamples

        icl = InBatchExamples(tokenizer, config.icl, config.query_max_len, embedder.spec.appends_eos(), config.seed)
    collator = EmbedCollator(tokenizer.pad_token_id or 0, group_size, padding_side=embedder.spec.padding_side,
                             with_token_type_ids="token_type_ids" in getattr(tokenizer, "model_input_names", ()),
                             icl=icl)
    model = BiEncoderForTraining(embedder, config)
    examples_per_step = config.per_device_train_batch_size * config.gradient_accumulation_steps * world
    progress_cb = RichProgressCallback(out.err, examples_per_step)
    trainer = EmbeddingTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                               tokenizer=tokenizer, callbacks=[FinalStepCallback(), progress_cb],
                               recipe_yaml=recipe_yaml)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(VisualDLCallback)  # replaced: see VisualDLLogCallback
    trainer.add_callback(VisualDLLogCallback())
    train_started = time.perf_counter()
    if resume is not None and checkpoint_global_step(resume) >= trainer.planned_max_steps():
        out.info(f"{resume.name} is the end of this run: nothing left to train")
        trainer.finish_from_checkpoint(resume)
    else:
        if resume is not None:
            from embedkit.training.retention import check_resumable

            check_resumable(resume)
        with paddle.utils.unique_name.guard():  # the optimizer's accumulator names (see the model load)
            trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
    train_time = time.perf_counter() - train_started
    if icl is not None and icl.dropped and not icl.placed:
        out.warning(f"icl: none of the {icl.dropped} in-context examples drawn fit beside a query in query_max_len "
                    f"{config.query_max_len}: raise query_max_len or lower icl.example_query_max_len/"
                    "example_passage_max_len")
    steps_run = trainer.state.global_step - progress_cb.first_step if progress_cb.first_step is not None else 0

    from embedkit.training.report import final_loss, loss_points, plot_loss_curve, write_model_card

    points = loss_points(trainer.loss_history)
    result = TrainResult(
        output_dir=str(run_dir), base_model=base_reference, base_model_dir=str(base_dir),
        fine_tune_type=config.fine_tune_type,
        resumed_from=str(resume) if resume is not None else None, global_step=trainer.state.global_step,
        final_loss=final_loss(points),
        examples_per_second=steps_run * examples_per_step / progress_cb.train_seconds if progress_cb.train_seconds else 0.0,
        wall_time_s=0.0, train_time_s=train_time, parameters={"trainable": params.trainable, "total": params.total},
        data=describe_sources(data.sources), loss_curve=None, eval_before=eval_before,
    )
    if not is_main:
        return result

    _publish_model(embedder, tokenizer, run_dir)
    if config.fine_tune_type == "lora" and config.merge_lora:
        result.merged_dir = str(_save_merged(embedder, tokenizer, run_dir))
    write_text(run_dir / RECIPE_FILE, recipe_yaml)
    write_json(run_dir / "train_args.json", args.to_dict())  # (PaddleNLP's to_json_string double-encodes)
    if config.eval.data:
        result.eval_after = _evaluate(config, run_dir, out, "after training")
        write_json(run_dir / EVAL_AFTER_FILE, result.eval_after)
    evals = [(step, report["metrics"]["ndcg_at_10"], label) for step, report, label in
             ((0, eval_before, "before"), (result.global_step, result.eval_after, "after")) if report]
    curve = plot_loss_curve(points, run_dir / "loss_curve.png", f"{run_dir.name}: training loss", evals)
    result.loss_curve = str(curve) if curve else None
    if not config.keep_optimizer_state:
        from embedkit.training.retention import drop_optimizer_states

        drop_optimizer_states(run_dir)
    result.wall_time_s = time.perf_counter() - started
    result.files = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))
    write_model_card(run_dir, result.to_dict(), recipe_yaml)
    write_json(run_dir / SUMMARY_FILE, result.to_dict())
    return result


@contextlib.contextmanager
def _main_process_first(world: int, is_main: bool):
    """Rank 0 runs the block first (filling a cache), the other ranks after it: one barrier on each side."""
    import paddle

    if world > 1 and not is_main:
        paddle.distributed.barrier()
    yield
    if world > 1 and is_main:
        paddle.distributed.barrier()


def _check_paths(config: TrainConfig) -> None:
    """Fail on a mistyped data path in the first second, not after the model has loaded."""
    from embedkit.data import detect_format

    if not config.train_data:
        raise UserError("train_data is not set: give a training JSONL file or directory, or a BEIR directory")
    detect_format(config.train_data)
    if config.eval.data:
        if detect_format(config.eval.data) == "train-jsonl":
            raise UserError("eval.data must be a BEIR or T2Ranking directory (training JSONL has no qrels)",
                            config.eval.data)


def _vocabulary_texts(config: TrainConfig):
    """Texts of the training data (queries and passages), for the built-in tiny model's vocabulary."""
    from embedkit.data import detect_format, load_retrieval, passage_text
    from embedkit.data.train_jsonl import iter_train_jsonl

    if detect_format(config.train_data) == "train-jsonl":
        for example in iter_train_jsonl(config.train_data):
            yield example.query
            yield from example.pos
            yield from example.neg
    else:
        data = load_retrieval(config.train_data, config.train_split)
        yield from data.queries.values()
        yield from (passage_text(doc) for doc in data.corpus.values())


def _eval_before(config: TrainConfig, base_dir: Path, spec, run_dir: Path, out: Output) -> Optional[dict]:
    """The base model scored with the trained model's spec (pooling, instructions, lengths): a fair baseline.

    Stored in the run dir, so a resumed run reports it without evaluating the base model again.
    """
    stored = run_dir / EVAL_BEFORE_FILE
    if stored.is_file():
        return json.loads(stored.read_text(encoding="utf-8"))
    result = _evaluate(config, base_dir, out, "before training", like=spec)
    write_json(stored, result)
    return result


def _evaluate(config: TrainConfig, model_dir: Path, out: Output, label: str, like=None) -> dict:
    from embedkit.evaluation.comparison import evaluation_summary
    from embedkit.evaluation.options import EvalOptions

    out.info(f"Evaluating {label} on [bold]{config.eval.data}[/] ({config.eval.split})")
    options = EvalOptions.from_config(config.eval, show_progress=out.verbosity >= 0)
    return evaluation_summary(model_dir, config.eval.data, options, like=like)


def _publish_model(embedder, tokenizer, run_dir: Path) -> None:
    """Save the final model at the top of the run dir: staged beside it, then each entry renamed in."""
    staged = Path(tempfile.mkdtemp(prefix=FINAL_STAGING_PREFIX, dir=run_dir))
    try:
        with disk_full_message(run_dir):
            embedder.save_pretrained(staged, tokenizer)
        make_readable(staged)
        for entry in staged.iterdir():
            target = run_dir / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _save_merged(embedder, tokenizer, run_dir: Path) -> Path:
    """LoRA merged into the base weights: a plain model ``load_embedder`` loads without the base."""
    from embedkit.fsutil import atomic_path
    from embedkit.modeling.embedder import Embedder
    from embedkit.modeling.lora import merged_backbone

    query = merged_backbone(embedder.query_backbone)
    passage = merged_backbone(embedder.passage_backbone) if embedder.passage_backbone is not None else None
    target = run_dir / MERGED_DIR
    with atomic_path(target, replace_dir=True) as staged:  # the run's own merged/
        Embedder(query, embedder.spec, passage).save_pretrained(staged, tokenizer)
        make_readable(staged)
    return target


class _LazyProgress:
    """A rich progress bar on stderr for tokenisation, shown only once there is work (not on a cache hit)."""

    def __init__(self, out: Output, label: str):
        self.progress = Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=out.err, transient=True)
        self.task = None

    def advance(self, n: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("", total=None)
        self.progress.advance(self.task, n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.task is not None:
            self.progress.stop()


def render(result: TrainResult, out: Output) -> None:
    table = Table(title="embedkit train", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("steps", str(result.global_step) + (f" (resumed from {Path(result.resumed_from).name})"
                                                       if result.resumed_from else ""))
    table.add_row("final loss", f"{result.final_loss:.4f}" if result.final_loss is not None else "-")
    table.add_row("examples/s", f"{result.examples_per_second:.1f}")
    table.add_row("wall time", f"{result.wall_time_s:.0f} s (training {result.train_time_s:.0f} s)")
    table.add_row("parameters", f"{result.parameters['trainable']:,} trained of {result.parameters['total']:,}")
    table.add_row("output dir", result.output_dir)
    if result.merged_dir:
        table.add_row("merged model", result.merged_dir)
    out.info(table)
    if result.eval_before or result.eval_after:
        scores = Table(title=f"{(result.eval_after or result.eval_before)['dataset']} "
                             f"({(result.eval_after or result.eval_before)['split']})")
        scores.add_column("metric")
        scores.add_column("before", justify="right")
        scores.add_column("after", justify="right")
        scores.add_column("change", justify="right")
        for key, label in (("ndcg_at_10", "NDCG@10"), ("recall_at_100", "Recall@100"), ("mrr_at_10", "MRR@10")):
            before = (result.eval_before or {}).get("metrics", {}).get(key)
            after = (result.eval_after or {}).get("metrics", {}).get(key)
            change = f"{after - before:+.4f}" if before is not None and after is not None else "-"
            scores.add_row(label, f"{before:.4f}" if before is not None else "-",
                           f"{after:.4f}" if after is not None else "-", change)
        out.info(scores)


def parse_gpus(gpus: Optional[str]) -> list[int]:
    """``--gpus 0,1,2,3`` as integers."""
    if not gpus:
        return []
    try:
        return [int(g) for g in gpus.split(",") if g.strip()]
    except ValueError:
        raise UserError(f"--gpus: expected comma-separated GPU ids such as 0,1,2,3, got {gpus!r}") from None

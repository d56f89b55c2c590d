"""`embedkit eval`: turn the command line (and an optional recipe) into one evaluation and render its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from embedkit.console import Output
from embedkit.errors import UserError
from embedkit.evaluation.options import EvalOptions, check_search
from embedkit.evaluation.report import CheckpointsReport, EvalReport
from embedkit.fsutil import check_dir_target
from embedkit.modeling.overrides import embedding_overrides
from embedkit.retrieval.search import SearchSettings

if TYPE_CHECKING:
    from embedkit.evaluation.mteb_tasks import MtebReport


@dataclass
class EvalRequest:
    """What the user asked for; None means "not given" so a recipe's value or the default applies."""

    model: Optional[Path] = None
    data: list[Path] = field(default_factory=list)
    mteb: Optional[str] = None
    evaluate_all: Optional[Path] = None
    recipe: Optional[Path] = None
    overrides_set: list[str] = field(default_factory=list)
    split: Optional[str] = None
    engine: Optional[str] = None
    precision: Optional[str] = None
    batch_size: Optional[int] = None
    top_k: Optional[int] = None
    index: str = "flat"
    index_dtype: str = "float32"
    rescore: Optional[int] = None
    nprobe: int = 32
    ef_search: int = 256
    pooling: Optional[str] = None
    normalize: Optional[bool] = None
    query_instruction: Optional[str] = None
    passage_instruction: Optional[str] = None
    max_length: Optional[int] = None  # both sides, unless query_max_len / passage_max_len says otherwise
    query_max_len: Optional[int] = None
    passage_max_len: Optional[int] = None
    use_cache: bool = True
    dims: Optional[str] = None
    ignore_identical_ids: Optional[bool] = None
    output: Optional[Path] = None
    show_progress: bool = True


Result = Union[EvalReport, CheckpointsReport, "MtebReport"]


def parse_list(text: Optional[str], flag: str) -> list[str]:
    items = [part.strip() for part in (text or "").split(",") if part.strip()]
    if text is not None and not items:
        raise UserError("expected a comma-separated list", flag)
    return items


def parse_dims(text: Optional[str]) -> list[int]:
    dims = []
    for item in parse_list(text, "--dims"):
        try:
            dims.append(int(item))
        except ValueError:
            raise UserError(f"not an integer dimension: {item!r}", "--dims") from None
    return dims


def refuse_lengths_beyond_model(model: Path, request: EvalRequest) -> None:
    """A max length the model's position embeddings cannot take fails now, not once encoding has begun."""
    from embedkit.modeling.limits import model_limits

    lengths = (("--max-length", request.max_length), ("--query-max-len", request.query_max_len),
               ("--passage-max-len", request.passage_max_len))
    if all(length is None for _, length in lengths) or not model.is_dir():
        return
    limits = model_limits(model)
    for flag, length in lengths:
        problem = limits.length_problem(length) if limits is not None else None
        if problem is not None:
            raise UserError(problem, flag)


def build_options(request: EvalRequest) -> tuple[EvalOptions, list[Path], Optional[Path]]:
    """(options, data dirs, model dir): flags first, then the recipe's ``eval:`` section, then defaults."""
    data, model = list(request.data), request.model
    options = EvalOptions()
    if request.recipe is not None:
        from embedkit.config import TrainConfig, apply_overrides, load_recipe

        recipe = apply_overrides(load_recipe(request.recipe, TrainConfig), request.overrides_set)
        options = EvalOptions.from_config(recipe.eval)
        if not data and recipe.eval.data:
            data = [Path(recipe.eval.data)]
        if model is None and request.evaluate_all is None:
            model = Path(recipe.output_dir)
    elif request.overrides_set:
        raise UserError("--set needs --recipe", "--set")
    options.overrides = {**options.overrides, **embedding_overrides(
        request.pooling, request.normalize, request.query_instruction, request.passage_instruction,
        request.max_length, request.query_max_len, request.passage_max_len)}
    if model is not None:
        refuse_lengths_beyond_model(model, request)
    for name in ("split", "engine", "precision", "batch_size", "top_k"):
        value = getattr(request, name)
        if value is not None:
            setattr(options, name, value)
    if options.batch_size < 1 or options.top_k < 1:
        raise UserError("--batch-size and --top-k must be positive")
    options.search = SearchSettings(index=request.index, nprobe=request.nprobe, ef_search=request.ef_search,
                                    dtype=request.index_dtype, rescore=request.rescore)
    options.use_cache = request.use_cache
    options.dims = parse_dims(request.dims)
    check_search(options, options.dims)  # the model's own dim is checked once it is loaded, before encoding
    options.ignore_identical_ids = request.ignore_identical_ids
    if request.output is not None:  # a bad --output found after the whole eval would waste it
        check_dir_target(request.output)
    options.output_dir = request.output
    options.show_progress = request.show_progress
    return options, data, model


def run_eval_command(request: EvalRequest) -> Result:
    options, data, model = build_options(request)
    if request.evaluate_all is not None:
        if request.model is not None:
            raise UserError("give either a MODEL or --evaluate-all RUN_DIR, not both")
        if request.mteb is not None:
            raise UserError("--evaluate-all works on --data directories, not with --mteb")
        from embedkit.evaluation.pipeline import evaluate_checkpoints

        return evaluate_checkpoints(request.evaluate_all, data, options)
    if model is None:
        raise UserError("missing MODEL: the model directory to evaluate (or --evaluate-all RUN_DIR)")
    if request.mteb is not None:
        if options.dims:
            raise UserError("--dims works with --data evaluation, not with --mteb")
        if options.search.dtype != "float32" or options.search.rescore is not None:
            raise UserError("--index-dtype and --rescore work with --data evaluation, not with --mteb "
                            "(MTEB runs its own float32 search)")
        from embedkit.evaluation.mteb_tasks import run_mteb
        from embedkit.evaluation.pipeline import load_datasets

        names = parse_list(request.mteb, "--mteb")
        datasets = load_datasets(data, options.split) if data else []
        report = run_mteb(model, names, datasets, options)
        if options.output_dir is not None:
            from embedkit.fsutil import write_json

            write_json(Path(options.output_dir) / "results.json", report.to_dict())
        return report
    from embedkit.evaluation.pipeline import evaluate

    return evaluate(model, data, options)


def render(result: Result, out: Output, output_dir: Optional[Path] = None) -> None:
    from embedkit.evaluation.mteb_tasks import MtebReport
    from embedkit.evaluation.render import render_checkpoints, render_mteb, render_report

    out.result(result.to_dict())
    if out.json_mode:
        return
    if isinstance(result, EvalReport):
        render_report(result, out)
        if output_dir is None and any(d.by_dim for d in result.datasets):
            out.info("add --output DIR to save the Matryoshka curve as a PNG")
    elif isinstance(result, CheckpointsReport):
        render_checkpoints(result, out)
    elif isinstance(result, MtebReport):
        render_mteb(result, out)
    if output_dir is not None:
        out.info(f"results written to {output_dir}")

"""`embedkit prune`: remove transformer layers from an embedding model and show what it costs.

request checks → model (a LoRA adapter merged) → calibration texts → scores per layer → selection → pruned model
dir (atomically) → evaluation before and after, same engine, no cache → optional healing fine-tune → report.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from embedkit import console
from embedkit.choices import PruneMetric, Reduce, Selection
from embedkit.compression.calibration import DEFAULT_SAMPLES, Calibration, load_calibration
from embedkit.compression.layer_scores import calibration_batches, layer_scores
from embedkit.compression.report import PruneResult, Scored
from embedkit.compression.selection import DEFAULT_SELECT_Z, corpus_subset, explicit, greedy, lowest
from embedkit.compression.towers import Tower, parameter_count, save_embedder, towers_of, without_layers
from embedkit.compression.trials import TrialSettings, evaluate_model, evaluate_without
from embedkit.errors import UserError
from embedkit.filenames import SPEC_FILE
from embedkit.fsutil import atomic_path

HEALED_SUFFIX = "-healed"  # beside the pruned model, not inside it: a run dir never lies inside its base model


@dataclass
class PruneRequest:
    model: Path
    output: Path
    n_prune_layers: Optional[int] = None  # None with ``layers``: as many as listed
    layers: Optional[list[int]] = None  # explicit 0-based layers; no scores needed then
    metric: str = PruneMetric.BI
    reduce: str = Reduce.MEAN
    include_padding: bool = False
    select: str = Selection.BI
    calibration: Optional[Path] = None  # None: the eval data
    calibration_split: Optional[str] = None  # a retrieval dataset's queries of this split; None: ``split``
    calibration_samples: int = DEFAULT_SAMPLES
    max_length: Optional[int] = None  # calibration tokens per text; None: each side's max length
    seed: int = 42
    eval_data: Optional[Path] = None
    split: str = "test"
    select_data: Optional[Path] = None  # None: the eval data
    select_split: str = "train"
    candidates: Optional[int] = None
    select_z: float = DEFAULT_SELECT_Z  # standard errors a trial must lead by to outvote the layer scores
    select_corpus: Optional[int] = None  # documents the selection evaluates against; None: the whole corpus
    engine: str = "auto"
    batch_size: int = 32
    heal: Optional[Path] = None  # a training recipe
    show_progress: bool = True


def prune(request: PruneRequest) -> PruneResult:
    out = console.get()
    started = time.perf_counter()
    _check_request(request)
    output = request.output.expanduser().resolve()
    existing = _finished_output(output, request)

    from embedkit.modeling.embedder import load_embedder

    embedder, tokenizer = load_embedder(request.model)
    towers = towers_of(embedder)
    spec = embedder.spec
    seconds: dict[str, float] = {}

    calibration = None
    scores: dict[str, list[float]] = {t.name: [] for t in towers}
    if existing is not None:
        out.info(f"{output} already holds this pruned model: keeping it")
        record = existing
        scores, removed = record["scores"], record["removed_layers"]
    else:
        if request.layers is None:
            phase = time.perf_counter()
            calibration = load_calibration(request.calibration or request.eval_data, split=request.calibration_split or request.split,
                                           samples=request.calibration_samples, seed=request.seed,
                                           max_length=request.max_length)
            out.info(f"Scoring layers on {len(calibration.texts)} calibration texts from {calibration.source} "
                     f"({', '.join(f'{n} {side}' for side, n in calibration.counts().items())})")
            scores = {t.name: _tower_scores(t, calibration, tokenizer, spec, request) for t in towers}
            seconds["scores"] = time.perf_counter() - phase
        phase = time.perf_counter()
        removed, selection = _select(request, towers, scores, tokenizer, spec, output)
        seconds["selection"] = time.perf_counter() - phase
        record = _record(request, removed, scores, calibration, selection)
        spec.pruned = record
        if spec.base_model is None:
            spec.base_model = str(request.model)
        pruned_towers = without_layers(towers, removed)
        _publish(output, lambda staged: save_embedder(pruned_towers, spec, tokenizer, staged))
        out.info(f"Pruned model written to {output}")
    if existing is not None:
        pruned_towers = towers_of(_load_embedder(output))
    params_before, bytes_before = parameter_count(towers)
    params_after, bytes_after = parameter_count(pruned_towers)
    result = PruneResult(
        model=str(request.model), output=str(output), architecture=_architecture_name(towers),
        layer_choice=record["layer_choice"], num_layers_before={t.name: t.num_layers for t in towers},
        removed_layers=removed, layer_scores=scores, metric=record["metric"], reduce=record["reduce"],
        include_padding=record["include_padding"], select=record["select"], calibration=record["calibration"],
        selection=record.get("selection"), parameters_before=params_before, parameters_after=params_after,
        size_bytes_before=bytes_before, size_bytes_after=bytes_after, seconds=seconds,
    )
    if request.eval_data is not None:
        phase = time.perf_counter()
        result.eval_data, result.split = str(request.eval_data), request.split
        result.before = score(request.model, request.eval_data, request, spec, "before pruning")
        result.after = score(output, request.eval_data, request, spec, "after pruning")
        seconds["eval"] = time.perf_counter() - phase
    if request.heal is not None:
        phase = time.perf_counter()
        result.healed_dir = str(heal(output, request.heal))
        seconds["heal"] = time.perf_counter() - phase
        if request.eval_data is not None:
            result.healed = score(Path(result.healed_dir), request.eval_data, request, spec, "after healing")
    seconds["total"] = time.perf_counter() - started
    return result


def _check_request(request: PruneRequest) -> None:
    """Everything that can be refused before a model is loaded."""
    if request.n_prune_layers is None and request.layers is None:
        raise UserError("give --n-prune-layers N (or --layers I,J to name them)")
    if request.n_prune_layers is not None and request.n_prune_layers < 1:
        raise UserError(f"--n-prune-layers must be at least 1, got {request.n_prune_layers}")
    if request.layers is not None:
        if request.n_prune_layers is not None and request.n_prune_layers != len(request.layers):
            raise UserError(f"--n-prune-layers {request.n_prune_layers} but --layers names {len(request.layers)}")
        if not request.layers:
            raise UserError("--layers names no layer")
    model = request.model.expanduser().resolve()
    if not model.is_dir():
        raise UserError("model directory not found", request.model)
    output = request.output.expanduser().resolve()
    if output == model or model in output.parents:
        raise UserError("the output must be outside the model directory (a pruned model is a new model dir)",
                        request.output)
    if output in model.parents:
        raise UserError("the output would contain the model directory", request.output)
    _check_count(request)
    if request.layers is None and request.calibration is None and request.eval_data is None:
        raise UserError("nothing to calibrate the layer scores on: give --calibration DATA (a BEIR directory, "
                        "training JSONL, or a .txt file of texts) or --eval-data DIR")
    if request.select == Selection.EVAL and request.layers is None:
        select_data = request.select_data or request.eval_data
        if select_data is None:
            raise UserError("--select eval needs --select-data DIR (a BEIR or T2Ranking directory) or --eval-data")
        same_data = request.eval_data is not None and Path(select_data).resolve() == Path(request.eval_data).resolve()
        if same_data and request.select_split == request.split:
            raise UserError(f"--select-split {request.select_split} is the split the report evaluates: choosing "
                            "layers on it would overstate the result; select on another split (e.g. train or dev)")
        from embedkit.data import open_retrieval

        open_retrieval(select_data).qrels_path(request.select_split)  # a missing split fails now, not after scoring
    if request.heal is not None and not Path(request.heal).is_file():
        raise UserError("no such recipe file", request.heal)


def _check_count(request: PruneRequest) -> None:
    """N against each tower's ``num_hidden_layers`` in its config.json (read before any weights are)."""
    from embedkit.filenames import MODEL_CONFIG_FILE
    from embedkit.modeling.architectures import config_layer_count
    from embedkit.modeling.embedder import resolve_spec, tower_dirs

    n = request.n_prune_layers if request.n_prune_layers is not None else len(request.layers)
    spec = resolve_spec(request.model)
    for name, tower_dir in zip(("query", "passage"), tower_dirs(request.model, spec), strict=True):
        if tower_dir is None:
            continue
        config = _base_dir(tower_dir) / MODEL_CONFIG_FILE
        try:
            layers = config_layer_count(json.loads(config.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise UserError("not a model directory: no readable config.json with num_hidden_layers", tower_dir) \
                from None
        if n >= layers:
            where = f" {name} tower's" if spec.two_tower else " model's"
            raise UserError(f"cannot remove {n} of the{where} {layers} layers: at most {layers - 1}", request.model)


def _base_dir(model_dir: Path) -> Path:
    """Where a model's config.json is: its own dir, or the base model's for a LoRA adapter dir."""
    from embedkit.modeling.lora import adapter_config, is_adapter_dir

    return adapter_config(model_dir)[1] if is_adapter_dir(model_dir) else model_dir


def _finished_output(output: Path, request: PruneRequest) -> Optional[dict]:
    """The record of an earlier prune of the same model into ``output`` when healing is asked (to resume it);
    None for a missing or empty dir; anything else is refused."""
    if not output.exists():
        return None
    if not output.is_dir():
        raise UserError("the output exists and is not a directory", request.output)
    if not any(output.iterdir()):
        return None
    record = None
    if (output / SPEC_FILE).is_file():
        try:
            record = json.loads((output / SPEC_FILE).read_text(encoding="utf-8")).get("pruned")
        except (json.JSONDecodeError, AttributeError):
            record = None
    resumable = request.heal is not None and isinstance(record, dict) and record.get("request") == _settings(request)
    if not resumable:
        raise UserError("the output directory exists and is not empty (embedkit writes a new model dir; choose "
                        "another path or remove it)", request.output)
    return record


def _tower_scores(tower: Tower, calibration: Calibration, tokenizer, spec, request: PruneRequest) -> list[float]:
    texts = calibration.for_side(tower.sides)
    if not texts:
        raise UserError(f"no calibration texts for the {tower.name} tower (the data has no "
                        f"{'/'.join(tower.sides)} texts)", calibration.source)
    batches = calibration_batches(texts, tokenizer, spec, calibration.max_length)
    return layer_scores(tower.backbone, batches, request.metric, request.reduce, request.include_padding)


def _select(request: PruneRequest, towers: list[Tower], scores: dict[str, list[float]], tokenizer, spec,
            output: Path) -> tuple[dict[str, list[int]], Optional[dict]]:
    """Layers to remove per tower, and what the eval-guided selection measured (None for the others)."""
    if request.layers is not None:
        return {t.name: explicit(request.layers, t.num_layers) for t in towers}, None
    if request.select == Selection.BI:
        return {t.name: lowest(scores[t.name], request.n_prune_layers) for t in towers}, None
    if len({t.num_layers for t in towers}) > 1:
        raise UserError("--select eval removes the same layers from both towers, which differ in depth: use "
                        "--select bi or --layers", request.model)
    from embedkit.data import load_retrieval

    # Two towers are scored as one model: the candidates' order is their summed score.
    summed = [sum(values) for values in zip(*scores.values(), strict=True)]
    data = corpus_subset(load_retrieval(request.select_data or request.eval_data, request.select_split),
                         request.select_corpus, request.seed)
    out = console.get()
    out.info(f"Selecting by NDCG@10 on {data.source} ({data.split}: {len(data.queries)} queries, "
             f"{len(data.corpus)} documents)")

    settings = TrialSettings(request.select_split, request.engine, request.batch_size)

    def ndcg_without(layers: list[int]) -> dict[str, float]:
        trial_started = time.perf_counter()
        scored = evaluate_without(towers, layers, spec, tokenizer, data, settings, output.parent)
        out.info(f"  without layer(s) {','.join(map(str, layers))}: NDCG@10 {scored.metrics['ndcg_at_10']:.4f} "
                 f"({time.perf_counter() - trial_started:.0f} s)")
        return scored.ndcg_at_10_by_query

    chosen = greedy(request.n_prune_layers, summed, ndcg_without, request.candidates, request.select_z)
    for number, round_ in enumerate(chosen.rounds, 1):
        if round_.chosen != round_.best:
            out.info(f"  round {number}: removing {round_.chosen}, not {round_.best} (best NDCG@10): their difference "
                     f"is within {request.select_z:g} standard errors on {round_.queries} queries, and "
                     f"{round_.chosen} scores lower")
    selection = {"data": str(data.source), "split": data.split, "queries": len(data.queries),
                 "documents": len(data.corpus), "candidates": request.candidates, "z": request.select_z,
                 "rounds": [r.to_dict() for r in chosen.rounds]}
    return {t.name: list(chosen.removed) for t in towers}, selection


def _record(request: PruneRequest, removed: dict[str, list[int]], scores: dict[str, list[float]],
            calibration: Optional[Calibration], selection: Optional[dict]) -> dict:
    """What ``embedkit.json`` keeps under ``pruned``: enough to tell how the model was made."""
    choice = "shared" if len(removed) == 1 or request.layers is not None or request.select == Selection.EVAL \
        else "per tower"
    return {
        "source": str(request.model.expanduser().resolve()), "request": _settings(request),
        "removed_layers": removed, "layer_choice": choice,
        "metric": str(request.metric), "reduce": str(request.reduce), "include_padding": request.include_padding,
        "select": "layers" if request.layers is not None else str(request.select),
        "calibration": None if calibration is None else {
            "source": calibration.source, "fingerprint": calibration.fingerprint, "texts": calibration.counts(),
            "max_length": calibration.max_length, "seed": request.seed},
        "scores": scores, "selection": selection,
    }


def _settings(request: PruneRequest) -> dict:
    """The request fields that decide which layers are removed: a rerun with the same ones may resume healing."""
    fields = ("n_prune_layers", "layers", "metric", "reduce", "include_padding", "select", "calibration",
              "calibration_split", "calibration_samples", "max_length", "seed", "select_data", "select_split",
              "candidates", "select_z", "select_corpus")
    settings = {name: getattr(request, name) for name in fields}
    settings = {name: str(value) if isinstance(value, Path) else value for name, value in settings.items()}
    return {"model": str(request.model.expanduser().resolve()), **settings}


def _publish(output: Path, write) -> None:
    """``write(dir)`` into a staged dir, renamed to ``output``; an empty ``output`` the user made is filled in place."""
    if not output.exists():
        with atomic_path(output) as staged:
            write(staged)
        return
    staged = Path(tempfile.mkdtemp(prefix=".embedkit-prune-", dir=output))
    try:
        write(staged / "model")
        for entry in (staged / "model").iterdir():
            os.replace(entry, output / entry.name)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _load_embedder(model_dir: Path):
    from embedkit.modeling.embedder import load_embedder

    return load_embedder(model_dir)[0]


def _architecture_name(towers: list[Tower]) -> str:
    from embedkit.modeling.architectures import architecture_of

    return architecture_of(towers[0].backbone).name


def score(model_dir: Path, data: Path, request: PruneRequest, spec, label: str) -> Scored:
    console.get().info(f"Evaluating {label} on {data} ({request.split})")
    settings = TrialSettings(request.split, request.engine, request.batch_size, request.show_progress)
    return evaluate_model(model_dir, data, spec, settings)


def heal(pruned_dir: Path, recipe: Path) -> Path:
    """Fine-tune the pruned model with ``recipe`` into ``<pruned_dir>-healed``, resuming an interrupted run.

    The recipe's own ``eval:`` is switched off: prune evaluates the healed model as it did the others.
    """
    from embedkit.config import TrainConfig, load_recipe
    from embedkit.training.run import train

    config = load_recipe(recipe, TrainConfig)
    config.model_name_or_path = str(pruned_dir)
    config.output_dir = str(pruned_dir.with_name(pruned_dir.name + HEALED_SUFFIX))
    config.eval.data = None
    console.get().info(f"Healing {pruned_dir} with {recipe}")
    return Path(train(config).output_dir)

"""The Python API: what the commands do, as functions returning result objects.

    import embedkit

    model = embedkit.load("runs/demo")                 # any model dir `embedkit eval` accepts
    queries = model.encode_queries(["what causes tides?"])
    passages = model.encode_passages(["Tides are caused by the Moon's gravity."])
    scores = queries @ passages.T                     # cosine similarity for normalised models

    report = embedkit.evaluate("runs/demo", "demo/scifact-mini")
    result = embedkit.train("recipes/demo.yaml", model_name_or_path="tiny-bert")
    quantized = embedkit.quantize("runs/demo", "int8", "runs/demo-int8", calibration="demo/scifact-mini")

Paddle is imported on first use, not by ``import embedkit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:
    from embedkit.compression.quant_report import QuantizeResult
    from embedkit.config import TrainConfig
    from embedkit.evaluation import EvalReport
    from embedkit.inference import Encoder
    from embedkit.training.run import TrainResult

PathLike = Union[str, Path]


def load(path: PathLike, *, engine: str = "auto", precision: str = "auto", device: str = "auto",
         batch_size: int = 32, threads: Optional[int] = None, **spec: Any) -> Encoder:
    """A model ready to encode, through the fastest engine available here (exported and checked on first use).

    ``encode_queries(texts)`` / ``encode_passages(texts)`` return float32 ``numpy`` arrays [len(texts), dim],
    L2-normalised when the model is, with the model's instructions, max lengths and pooling (``embedkit.json``).
    ``spec``: fields for a plain checkpoint without ``embedkit.json`` (``pooling="cls"``, ``normalized=False``,
    ``query_instruction=...``, ``passage_max_len=...``).
    """
    from embedkit.inference import Encoder

    return Encoder.from_model_dir(path, engine=engine, precision=precision, device=device, batch_size=batch_size,
                                  threads=threads, overrides=spec or None)


def evaluate(model: PathLike, data: Union[PathLike, Sequence[PathLike]], *, split: str = "test",
             engine: str = "auto", precision: str = "auto", batch_size: int = 32, top_k: int = 1000,
             use_cache: bool = True, output: Optional[PathLike] = None, show_progress: bool = False,
             **spec: Any) -> EvalReport:
    """Score ``model`` on BEIR or T2Ranking directories (one or several): what ``embedkit eval`` reports."""
    from embedkit.evaluation import EvalOptions
    from embedkit.evaluation import evaluate as run

    datasets = [data] if isinstance(data, (str, Path)) else list(data)
    options = EvalOptions(split=split, engine=engine, precision=precision, batch_size=batch_size, top_k=top_k,
                          overrides=spec, use_cache=use_cache, show_progress=show_progress,
                          output_dir=Path(output) if output is not None else None)
    return run(model, datasets, options)


def train(recipe: Union[PathLike, TrainConfig, None] = None, *, overrides: Sequence[str] = (),
          overwrite: bool = False, **settings: Any) -> TrainResult:
    """Fine-tune as ``embedkit train`` does: a recipe file (or a TrainConfig), ``key=value`` overrides, then
    ``settings`` (recipe keys, e.g. ``model_name_or_path="tiny-bert"``). Resumes an interrupted run."""
    from embedkit.config import TrainConfig, apply_overrides, load_recipe
    from embedkit.training.run import train as run

    if isinstance(recipe, TrainConfig):
        config = recipe
    else:
        config = load_recipe(recipe, TrainConfig) if recipe is not None else TrainConfig()
    config = apply_overrides(config, [*overrides, *(_assignment(k, v) for k, v in settings.items())])
    return run(config, overwrite=overwrite)


def quantize(model: PathLike, quant_type: str, output: PathLike, *, engine: str = "auto", group_size: int = 128,
             calibration: Optional[PathLike] = None, calibration_samples: int = 300,
             eval_data: Optional[PathLike] = None, split: str = "test") -> QuantizeResult:
    """What ``embedkit quantize`` does: an int8 or weight-only int8/int4 serving dir of ``model`` in ``output``
    (``embedkit.load(output)`` runs it), with the cost table when ``eval_data`` is given."""
    from embedkit.compression.quantization import QuantizeRequest
    from embedkit.compression.quantization import quantize as run

    return run(QuantizeRequest(model=Path(model), output=Path(output), quant_type=quant_type, engine=engine,
                               group_size=group_size, calibration=Path(calibration) if calibration else None,
                               calibration_samples=calibration_samples,
                               eval_data=Path(eval_data) if eval_data else None, split=split, show_progress=False))


def _assignment(key: str, value: Any) -> str:
    """``key=value`` as ``--set`` takes it (values are read as YAML, so dump them as YAML)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return f"{key}={text.removesuffix('...').strip()}"

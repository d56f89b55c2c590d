"""A BatchForward per encoder ("tower") of a model, for any engine; exported graphs are built on first use.

One-encoder models have a single ``shared`` tower serving both sides (one export, one predictor); two-tower
models have ``query`` and ``passage`` towers, each exported on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from embedkit import console
from embedkit.errors import UserError
from embedkit.inference import ort, paddle_inference
from embedkit.inference.engines import Device, Engine, resolve_device, resolve_engine
from embedkit.inference.export import (
    ONNX_OPSET,
    ExportInfo,
    Tower,
    build_export,
    check_against_dygraph,
    export_key,
    export_location,
    input_names,
    save_inference_model,
)
from embedkit.modeling.embedder import Side, resolve_spec, tower_dirs
from embedkit.modeling.encode import BatchForward, dygraph_forward
from embedkit.modeling.loading import load_tokenizer, weights_fingerprint
from embedkit.modeling.spec import EmbedderSpec

SHARED = "shared"


@dataclass
class TowerForward:
    tower: Tower
    engine: Engine
    device: Device
    forward: BatchForward
    tokenizer: Any
    export: Optional[ExportInfo]  # None for the dygraph engine


def model_towers(model_dir: Path, spec: EmbedderSpec) -> list[Tower]:
    query_dir, passage_dir = tower_dirs(model_dir, spec)
    if passage_dir is None:
        return [Tower(SHARED, query_dir, weights_fingerprint(query_dir))]
    return [Tower("query", query_dir, weights_fingerprint(query_dir)),
            Tower("passage", passage_dir, weights_fingerprint(passage_dir))]


def tower_name(spec: EmbedderSpec, side: Side) -> str:
    return side if spec.two_tower else SHARED


def _side(tower: Tower) -> Side:
    # The shared encoder is the same backbone for either side.
    return "passage" if tower.name == "passage" else "query"


def _max_len(spec: EmbedderSpec, tower: Tower) -> int:
    return {"query": spec.query_max_len, "passage": spec.passage_max_len}.get(
        tower.name, max(spec.query_max_len, spec.passage_max_len))


class _Dygraph:
    """The Paddle dygraph model, loaded only when needed (the paddle engine, or building an export)."""

    def __init__(self, model_dir: Path, overrides: Optional[dict]):
        self.model_dir = model_dir
        self.overrides = overrides
        self._embedder = None

    def embedder(self):
        if self._embedder is None:
            from embedkit.modeling.embedder import load_embedder

            self._embedder, _ = load_embedder(self.model_dir, self.overrides)
            self._embedder.eval()
        return self._embedder

    def forward(self, tower: Tower) -> BatchForward:
        return dygraph_forward(self.embedder(), _side(tower))


def _export_paddle_inference(model_dir: Path, spec: EmbedderSpec, tower: Tower, tokenizer, dygraph: _Dygraph,
                             device: Device, root: Optional[Path]) -> ExportInfo:
    names = input_names(tokenizer)
    key = export_key("paddle-inference", tower, spec, names)
    location = export_location(model_dir, "paddle-inference", tower, key, root)

    def write(staged: Path) -> dict:
        console.get().info(f"exporting the {tower.name} encoder for Paddle Inference (first use only) -> {location}")
        save_inference_model(dygraph.embedder(), _side(tower), names, staged / "model")
        forward = paddle_inference.paddle_inference_forward(staged, device)
        diff = check_against_dygraph(forward, dygraph.forward(tower), tokenizer, spec, _max_len(spec, tower),
                                     "paddle-inference")
        return {"max_abs_diff_vs_dygraph": diff}

    return build_export(location, key, paddle_inference.FILES, write)


def _export_onnx(model_dir: Path, spec: EmbedderSpec, tower: Tower, tokenizer, dygraph: _Dygraph,
                 device: Device, root: Optional[Path]) -> ExportInfo:
    graph = _export_paddle_inference(model_dir, spec, tower, tokenizer, dygraph, device, root)
    names = input_names(tokenizer)
    key = export_key("onnx", tower, spec, names)
    location = export_location(model_dir, "onnx", tower, key, root)

    def write(staged: Path) -> dict:
        console.get().info(f"converting the {tower.name} encoder to ONNX (first use only) -> {location}")
        ort.convert_to_onnx(graph.path / paddle_inference.MODEL_FILE, graph.path / paddle_inference.PARAMS_FILE,
                            staged / ort.MODEL_FILE, ONNX_OPSET, model_dir)
        forward = ort.onnx_forward(staged / ort.MODEL_FILE, device)
        diff = check_against_dygraph(forward, dygraph.forward(tower), tokenizer, spec, _max_len(spec, tower), "onnx")
        return {"max_abs_diff_vs_dygraph": diff}

    info = build_export(location, key, ort.FILES, write)
    # The first build of an ONNX graph includes the Paddle Inference graph it is converted from.
    return ExportInfo(info.path, info.built or graph.built, info.seconds + graph.seconds)


def load_tower_forwards(model_dir: str | Path, engine: str = "auto", overrides: Optional[dict] = None,
                        device: str = "auto", towers: Optional[list[str]] = None, threads: Optional[int] = None,
                        export_root: Optional[Path] = None) -> tuple[EmbedderSpec, dict[str, TowerForward]]:
    """(spec, {tower name: TowerForward}) for the model in ``model_dir`` (all towers unless ``towers`` names some).

    ``model_dir`` is an embedkit output dir, a sentence-transformers dir or a plain checkpoint (``overrides``
    supply the spec fields it lacks: pooling, normalized, ...). ``threads`` defaults to the usable cores.
    ``export_root`` puts exports there instead of beside the model or in the cache (e.g. to time a fresh build).
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError("model directory not found", model_dir)
    spec = resolve_spec(model_dir, overrides)
    resolved_device = resolve_device(device)
    resolved_engine = resolve_engine(engine, resolved_device)
    dygraph = _Dygraph(model_dir, overrides)
    loaded = {}
    for tower in model_towers(model_dir, spec):
        if towers is not None and tower.name not in towers:
            continue
        tokenizer = load_tokenizer(tower.weights_dir, padding_side=spec.padding_side)
        export = None
        if resolved_engine == "paddle":
            forward = dygraph.forward(tower)
        elif resolved_engine == "paddle-inference":
            export = _export_paddle_inference(model_dir, spec, tower, tokenizer, dygraph, resolved_device, export_root)
            forward = paddle_inference.paddle_inference_forward(export.path, resolved_device, threads)
        else:
            try:
                export = _export_onnx(model_dir, spec, tower, tokenizer, dygraph, resolved_device, export_root)
                forward = ort.onnx_forward(export.path / ort.MODEL_FILE, resolved_device, threads)
            except ort.OnnxConversionError as exc:
                if engine != "auto":
                    raise
                console.get().info(f"[yellow]ONNX is not available for this model, using Paddle Inference:[/] {exc}")
                return load_tower_forwards(model_dir, "paddle-inference", overrides, device, towers, threads,
                                           export_root)
        loaded[tower.name] = TowerForward(tower, resolved_engine, resolved_device, forward, tokenizer, export)
    return spec, loaded


def load_forward(model_dir: str | Path, side: Side = "passage", engine: str = "auto",
                 overrides: Optional[dict] = None, device: str = "auto", threads: Optional[int] = None,
                 export_root: Optional[Path] = None) -> TowerForward:
    """The TowerForward that encodes ``side`` of the model (its ``.forward`` is the BatchForward)."""
    spec = resolve_spec(model_dir, overrides) if Path(model_dir).is_dir() else None
    wanted = [tower_name(spec, side)] if spec is not None else None
    _, loaded = load_tower_forwards(model_dir, engine, overrides, device, wanted, threads, export_root)
    return next(iter(loaded.values()))

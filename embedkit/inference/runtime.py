"""A BatchForward per encoder ("tower") of a model, for any engine; exported graphs are built on first use.

One-encoder models have a single ``shared`` tower serving both sides (one export, one predictor); two-tower
models have ``query`` and ``passage`` towers, each exported on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from embedkit import console
from embedkit.choices import Precision, Side
from embedkit.errors import UserError
from embedkit.fsutil import write_json
from embedkit.inference import openvino, ort, paddle_inference
from embedkit.inference.engines import (
    Device,
    Engine,
    EngineUnavailableError,
    auto_engine,
    precision_reason,
    resolve_device,
    resolve_engine,
    resolve_precision,
)
from embedkit.inference.export import (
    ONNX_OPSET,
    ExportInfo,
    ExportMismatchError,
    Tower,
    build_export,
    cached_export,
    check_against_dygraph,
    export_key,
    export_location,
    input_names,
    save_inference_model,
    source_identity,
)
from embedkit.inference.identity import EmbeddingIdentity
from embedkit.inference.onnx_fusion import FusionNotApplicable, fuse_bert_attention
from embedkit.inference.serving_dir import (
    graph_file,
    is_serving_dir,
    serving_engine,
    serving_fingerprint,
    serving_graph,
)
from embedkit.modeling.embedder import resolve_spec, tower_dirs
from embedkit.modeling.encode import BatchForward, dygraph_forward
from embedkit.modeling.limits import fitted_to_model
from embedkit.modeling.loading import load_tokenizer, model_fingerprint
from embedkit.modeling.model_config import read_model_config
from embedkit.modeling.spec import EmbedderSpec

SHARED = "shared"
# On CPU every engine runs fastest at about 1,024 padded tokens per forward: in larger batches the attention
# scores (texts x heads x length² floats) spill out of cache. all-MiniLM-L6-v2, 256 tokens, 2 cores, batch 16
# uncapped -> capped: onnx 31.2 -> 37.4 docs/s, paddle-inference 24.3 -> 37.6, dygraph 7.0 -> 9.4; shorter
# texts peak at about the same token count (benchmarks/README.md, "Tokens per forward"). GPUs want full batches.
CPU_TOKENS_PER_BATCH = 1024
# The cap per engine and precision, from benchmarks/token_budget.py. OpenVINO's sweep (benchmarks/README.md,
# "OpenVINO") found no cap faster than 1,024 beyond the noise of a shared machine, in bf16 or fp32.
CPU_TOKENS_PER_BATCH_BY_ENGINE: dict[tuple[str, str], int] = {
    ("paddle", "fp32"): CPU_TOKENS_PER_BATCH, ("paddle-inference", "fp32"): CPU_TOKENS_PER_BATCH,
    ("onnx", "fp32"): CPU_TOKENS_PER_BATCH, ("openvino", "fp32"): CPU_TOKENS_PER_BATCH,
    ("openvino", "bf16"): CPU_TOKENS_PER_BATCH,
}


def cpu_tokens_per_batch(engine: Engine, precision: Precision) -> int:
    return CPU_TOKENS_PER_BATCH_BY_ENGINE[(str(engine), str(precision))]


@dataclass
class TowerForward:
    tower: Tower
    engine: Engine
    device: Device
    precision: Precision
    forward: BatchForward
    tokenizer: Any
    export: Optional[ExportInfo]  # None for the dygraph engine
    max_tokens: Optional[int]  # padded tokens per forward that run fastest (None: as many as batch_size allows)


def model_towers(model_dir: Path, spec: EmbedderSpec) -> list[Tower]:
    """The model's towers; each one's config.json is read first, so a broken one is named before any loading."""
    query_dir, passage_dir = tower_dirs(model_dir, spec)
    named = [(SHARED, query_dir)] if passage_dir is None else [("query", query_dir), ("passage", passage_dir)]
    return [_tower(name, directory) for name, directory in named]


def _tower(name: str, weights_dir: Path) -> Tower:
    if is_serving_dir(weights_dir):
        return Tower(name, weights_dir, serving_fingerprint(weights_dir))
    read_model_config(weights_dir)
    return Tower(name, weights_dir, model_fingerprint(weights_dir))


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
            for side in Side:
                # Hugging Face configs often say use_cache=true; PaddleNLP's BERT then concatenates every
                # layer's keys and values onto an empty cache, which costs a copy per layer and hides the
                # attention pattern from ONNX Runtime's fusions. Encoding never reuses a cache.
                self._embedder.backbone(side).config.use_cache = False
        return self._embedder

    def forward(self, tower: Tower) -> BatchForward:
        return dygraph_forward(self.embedder(), _side(tower))


def _export_paddle_inference(model_dir: Path, spec: EmbedderSpec, identity: EmbeddingIdentity, tower: Tower,
                             tokenizer, dygraph: _Dygraph, device: Device, root: Optional[Path]) -> ExportInfo:
    names = input_names(tokenizer)
    key = export_key("paddle-inference", tower, identity, names)
    location = export_location(model_dir, "paddle-inference", tower, key, root)

    def write(staged: Path) -> dict:
        console.get().info(f"exporting the {tower.name} encoder for Paddle Inference (first use only) -> {location}")
        save_inference_model(dygraph.embedder(), _side(tower), names, staged / "model", model_dir)
        forward = paddle_inference.paddle_inference_forward(staged, device)
        return check_against_dygraph(forward, dygraph.forward(tower), tokenizer, spec, _max_len(spec, tower),
                                     "paddle-inference", identity.precision).to_dict()

    return build_export(location, key, paddle_inference.FILES, write)


def _export_onnx(model_dir: Path, spec: EmbedderSpec, identity: EmbeddingIdentity, tower: Tower, tokenizer,
                 dygraph: _Dygraph, device: Device, root: Optional[Path]) -> ExportInfo:
    names = input_names(tokenizer)
    key = export_key("onnx", tower, identity, names)
    location = export_location(model_dir, "onnx", tower, key, root)
    if cached_export(location, key, ort.FILES):  # the Paddle Inference graph is not needed then
        return ExportInfo(location, built=False, seconds=0.0)
    graph = _export_paddle_inference(model_dir, spec, identity, tower, tokenizer, dygraph, device, root)

    def write(staged: Path) -> dict:
        console.get().info(f"converting the {tower.name} encoder to ONNX (first use only) -> {location}")
        converted = staged / "converted.onnx"
        ort.convert_to_onnx(graph.path / paddle_inference.MODEL_FILE, graph.path / paddle_inference.PARAMS_FILE,
                            converted, ONNX_OPSET, model_dir)
        final = staged / ort.MODEL_FILE
        reference = dygraph.forward(tower)
        max_len = _max_len(spec, tower)
        def check() -> dict:
            return check_against_dygraph(ort.onnx_forward(final, device), reference, tokenizer, spec, max_len, "onnx",
                                         identity.precision).to_dict()

        try:
            fused = _fuse_attention(converted, final, tower)
            checked = check()
            converted.unlink()
            return {**checked, "fused": fused}
        except (FusionNotApplicable, ExportMismatchError) as exc:  # the converted graph is still good
            console.get().debug(f"ONNX attention fusion not used: {exc}")
            converted.replace(final)
        return {**check(), "fused": None}

    info = build_export(location, key, ort.FILES, write)
    # Building an ONNX graph includes building the Paddle Inference graph it is converted from, if that was new.
    return ExportInfo(info.path, info.built, info.seconds + graph.seconds)


def _export_openvino(model_dir: Path, spec: EmbedderSpec, identity: EmbeddingIdentity, tower: Tower, tokenizer,
                     dygraph: _Dygraph, root: Optional[Path], threads: Optional[int]) -> tuple[ExportInfo, BatchForward]:
    """The onnx engine's graph (built if new), compiled by OpenVINO at ``identity.precision``.

    Each precision's check against dygraph runs once, before first use, and is recorded as an export of its own
    (``openvino-<precision>-<tower>/``, keyed by the ONNX graph's key): the ONNX export, shared with the onnx
    engine, keeps its file records as they were.
    """
    graph = _export_onnx(model_dir, spec, source_identity(identity), tower, tokenizer, dygraph, "cpu", root)
    onnx_file = graph.path / ort.MODEL_FILE
    names = input_names(tokenizer)
    key = export_key("openvino", tower, identity, names)
    location = export_location(model_dir, f"openvino-{identity.precision}", tower, key, root)
    compiled: list[BatchForward] = []

    def write(staged: Path) -> dict:
        console.get().info(f"checking OpenVINO {identity.precision} against dygraph (first use only) -> {location}")
        compiled.append(openvino.openvino_forward(onnx_file, identity.precision, threads))
        check = check_against_dygraph(compiled[0], dygraph.forward(tower), tokenizer, spec, _max_len(spec, tower),
                                      "openvino", identity.precision).to_dict()
        write_json(staged / openvino.CHECK_FILE, {**check, "graph": str(onnx_file)})
        return check

    info = build_export(location, key, openvino.FILES, write)
    forward = compiled[0] if compiled else openvino.openvino_forward(onnx_file, identity.precision, threads)
    return ExportInfo(info.path, info.built, info.seconds + graph.seconds), forward


def _fuse_attention(converted: Path, out: Path, tower: Tower) -> dict[str, int]:
    from embedkit.modeling.architectures import read_architecture

    if read_architecture(tower.weights_dir).decoder:  # the fusion matches BERT's bidirectional attention only
        raise FusionNotApplicable("a causal decoder")
    config = read_model_config(tower.weights_dir)
    heads, hidden = config.get("num_attention_heads"), config.get("hidden_size")
    if not heads or not hidden:
        raise FusionNotApplicable("config.json has no num_attention_heads/hidden_size")
    return fuse_bert_attention(converted, out, heads, hidden)


@dataclass
class LoadedModel:
    """A model ready to encode: its spec, the identity of the embeddings it gives, a forward per tower."""

    spec: EmbedderSpec
    identity: EmbeddingIdentity
    towers: dict[str, TowerForward]


def load_tower_forwards(model_dir: str | Path, engine: str = "auto", overrides: Optional[dict] = None,
                        device: str = "auto", towers: Optional[list[str]] = None, threads: Optional[int] = None,
                        export_root: Optional[str | Path] = None, tensorrt: bool = False,
                        max_batch_size: int = 32, precision: str = "auto") -> LoadedModel:
    """The model in ``model_dir``, with a TowerForward per tower (all towers unless ``towers`` names some).

    ``model_dir`` is an embedkit output dir, a sentence-transformers dir or a plain checkpoint (``overrides``
    supply the spec fields it lacks: pooling, normalized, ...). ``threads`` defaults to the usable cores.
    ``export_root`` puts exports there instead of beside the model or in the cache (e.g. to time a fresh build).
    ``tensorrt`` (paddle-inference on GPU) builds TensorRT engines for batches up to ``max_batch_size``.
    ``precision``: auto (bf16 where the engine and the CPU have it, else fp32) or a Precision the engine has.
    """
    model_dir = Path(model_dir)
    export_root = Path(export_root) if export_root is not None else None
    if not model_dir.is_dir():
        raise UserError("model directory not found", model_dir)
    spec = fitted_to_model(model_dir, resolve_spec(model_dir, overrides), overrides)
    resolved_device = resolve_device(device)
    all_towers = model_towers(model_dir, spec)
    serving = is_serving_dir(all_towers[0].weights_dir)
    if serving:  # the graph's engine, checked as if asked for (installed, on a device it runs on)
        engine_of_graph = serving_engine(engine, model_dir, all_towers[0].weights_dir)
        resolved_engine = resolve_engine(engine_of_graph, resolved_device)
    else:
        resolved_engine = resolve_engine(engine, resolved_device)
    resolved_precision = resolve_precision(resolved_engine, precision)
    if engine == "auto":
        console.get().debug(f"engine auto: {resolved_engine}, as {auto_engine(resolved_device)[1]}")
    if precision == "auto":
        console.get().debug(f"precision {resolved_precision} ({precision_reason(resolved_precision)})")
    if tensorrt and (resolved_device != "gpu" or resolved_engine != "paddle-inference"):
        raise UserError("TensorRT runs only with engine paddle-inference on a GPU")
    identity = EmbeddingIdentity.of({t.name: t.fingerprint for t in all_towers}, spec, resolved_engine,
                                    resolved_precision)
    dygraph = _Dygraph(model_dir, overrides)
    loaded = {}
    for tower in all_towers:
        if towers is not None and tower.name not in towers:
            continue
        tokenizer = load_tokenizer(tower.weights_dir, padding_side=spec.padding_side)
        export = None
        try:
            if serving:
                export = serving_graph(tower.weights_dir, spec)
                forward = (openvino.openvino_forward(graph_file(export.path), resolved_precision, threads)
                           if resolved_engine == "openvino" else
                           ort.onnx_forward(graph_file(export.path), resolved_device, threads))
            elif resolved_engine == "paddle":
                forward = dygraph.forward(tower)
            elif resolved_engine == "paddle-inference":
                export = _export_paddle_inference(model_dir, spec, identity, tower, tokenizer, dygraph,
                                                  resolved_device, export_root)
                forward = paddle_inference.paddle_inference_forward(export.path, resolved_device, threads, tensorrt,
                                                                    max_batch_size, _max_len(spec, tower))
            elif resolved_engine == "openvino":
                export, forward = _export_openvino(model_dir, spec, identity, tower, tokenizer, dygraph, export_root,
                                                   threads)
            else:
                export = _export_onnx(model_dir, spec, identity, tower, tokenizer, dygraph, resolved_device,
                                      export_root)
                forward = ort.onnx_forward(export.path / ort.MODEL_FILE, resolved_device, threads)
        except EngineUnavailableError as exc:
            if engine != "auto":
                raise
            console.get().info(f"[yellow]{resolved_engine} is not available for this model, using "
                               f"{exc.alternative}:[/] {exc.reason}")
            return load_tower_forwards(model_dir, exc.alternative, overrides, device, towers, threads, export_root,
                                       precision=precision)
        max_tokens = cpu_tokens_per_batch(resolved_engine, resolved_precision) if resolved_device == "cpu" else None
        loaded[tower.name] = TowerForward(tower, resolved_engine, resolved_device, resolved_precision, forward,
                                          tokenizer, export, max_tokens)
    return LoadedModel(spec, identity, loaded)


def load_forward(model_dir: str | Path, side: Side = "passage", engine: str = "auto",
                 overrides: Optional[dict] = None, device: str = "auto", threads: Optional[int] = None,
                 export_root: Optional[str | Path] = None, precision: str = "auto") -> TowerForward:
    """The TowerForward that encodes ``side`` of the model (its ``.forward`` is the BatchForward)."""
    spec = resolve_spec(model_dir, overrides) if Path(model_dir).is_dir() else None
    wanted = [tower_name(spec, side)] if spec is not None else None
    loaded = load_tower_forwards(model_dir, engine, overrides, device, wanted, threads, export_root,
                                 precision=precision)
    return next(iter(loaded.towers.values()))

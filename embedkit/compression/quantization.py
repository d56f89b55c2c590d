"""`embedkit quantize`: int8, or int8/int4 weight-only, versions of a model, each checked and its cost measured.

request checks → engine → source graph per tower (the checked fp32 ONNX export, or a serving dir's graph) →
calibration batches (int8) → NNCF on the OpenVINO model, or ONNX Runtime's quantizer → a serving dir (atomically)
whose ``embedkit.json`` records the quantization → the quantized graph compared with the source on fixed texts →
optional quality/cost table (evaluation.variants) on ``--eval-data``.

On GPU, ``weight_only_*`` with the paddle engine write the source weights with the quantization record, and
Paddle's weight-only Linear replaces each backbone Linear when the model is loaded there (modeling.weight_only:
the packed layout belongs to the GPU's SM architecture). That path is written to Paddle's documented API and has
not run here (no GPU); CPU-only Paddle builds refuse it up front.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from embedkit import console, paths
from embedkit.choices import Engine, EngineChoice, Precision, QuantType
from embedkit.compression.calibration import Calibration, load_calibration
from embedkit.compression.layer_scores import calibration_batches
from embedkit.compression.quant_report import QuantizeResult
from embedkit.errors import UserError
from embedkit.evaluation.variants import Variant, model_size_bytes, score_variants
from embedkit.filenames import SPEC_FILE
from embedkit.fsutil import atomic_path

DEFAULT_CALIBRATION_SAMPLES = 300
DEFAULT_GROUP_SIZE = 128
GROUP_SIZES = (64, 128)
WEIGHT_ONLY = (QuantType.WEIGHT_ONLY_INT8, QuantType.WEIGHT_ONLY_INT4)
# The engines a quantized model can be made for; each writes a serving dir for itself.
QUANTIZE_ENGINES = (Engine.OPENVINO, Engine.ONNX, Engine.PADDLE)
CALIBRATION_BATCH = 8


@dataclass
class QuantizeRequest:
    model: Path
    output: Optional[Path]  # None: only the source is checked (eval --quant-type writes into the cache)
    quant_type: str
    engine: str = EngineChoice.AUTO
    group_size: int = DEFAULT_GROUP_SIZE
    calibration: Optional[Path] = None  # None: the eval data (int8 on OpenVINO needs one of them)
    calibration_split: Optional[str] = None
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES
    seed: int = 42
    eval_data: Optional[Path] = None
    split: str = "test"
    device: str = "auto"
    batch_size: Optional[int] = None
    show_progress: bool = True


def quantize(request: QuantizeRequest) -> QuantizeResult:
    """Write the quantized model to ``request.output`` (then, with ``eval_data``, score it against its source)."""
    started = time.perf_counter()
    spec, engine = check_request(request)
    output = request.output.expanduser().resolve()
    calibration = _calibration(request, engine)
    with atomic_path(output) as staged:
        staged.mkdir()
        record, checks = write_quantized(request.model, staged, request.quant_type, engine, request.group_size,
                                         calibration, spec)
    console.get().info(f"Quantized model written to {output}")
    result = QuantizeResult(model=str(request.model), output=str(output), quant_type=request.quant_type,
                            engine=str(engine), quantization=record, checks=checks,
                            size_bytes_before=model_size_bytes(request.model), size_bytes_after=model_size_bytes(output))
    if request.eval_data is not None:
        result.table = cost_table(request.model, output, engine, request.eval_data, request.split, request.batch_size)
    result.seconds = time.perf_counter() - started
    return result


def check_request(request: QuantizeRequest):
    """Everything refused before a graph is built; returns (the source spec, the engine to quantize for)."""
    from embedkit.modeling.embedder import resolve_spec

    if request.quant_type not in QuantType.values():
        raise UserError(f"unknown quant type {request.quant_type!r} (choose from {', '.join(QuantType.values())})",
                        "--quant-type")
    model = Path(request.model)
    if not model.is_dir():
        raise UserError("model directory not found", model)
    if request.output is not None:
        output = Path(request.output).expanduser().resolve()
        if output == model.resolve() or output.is_relative_to(model.resolve()):
            raise UserError("--output must be outside the model directory (a new dir beside it)", request.output)
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise UserError("already exists and is not an empty directory; quantize into a new one", output)
    spec = resolve_spec(model)
    if spec.quantization is not None:
        raise UserError(f"this model is already quantized ({spec.quantization.get('type')}, "
                        f"{spec.quantization.get('engine')}); quantize its source model"
                        + (f" ({spec.base_model})" if spec.base_model else ""), model / SPEC_FILE)
    if request.quant_type == QuantType.WEIGHT_ONLY_INT4 and request.group_size not in GROUP_SIZES:
        raise UserError(f"--group-size must be {' or '.join(map(str, GROUP_SIZES))}, got {request.group_size}",
                        "--group-size")
    engine = quantize_engine(request.quant_type, request.engine, request.device)
    if request.quant_type == QuantType.WEIGHT_ONLY_INT4:
        check_group_size_divides(model, spec, request.group_size)
    if request.calibration is not None and request.quant_type in WEIGHT_ONLY:
        raise UserError(f"{request.quant_type} compresses weights without data; --calibration is used by int8 only",
                        "--calibration")
    return spec, engine


def quantize_engine(quant_type: str, engine: str, device: str) -> Engine:
    """The engine the quantized model is made for: auto is Paddle's weight-only on a GPU, else OpenVINO."""
    from embedkit.inference.engines import gpu_available, openvino_available, resolve_device

    engine = str(engine)
    if engine == EngineChoice.AUTO:
        on_gpu = resolve_device(device) == "gpu" if device != "auto" else gpu_available()
        if on_gpu and quant_type in WEIGHT_ONLY:
            engine = Engine.PADDLE
        else:
            engine = Engine.OPENVINO if openvino_available() else Engine.ONNX
    if engine not in QUANTIZE_ENGINES:
        raise UserError(f"quantize makes models for {', '.join(QUANTIZE_ENGINES)}, not {engine}", "--engine")
    if engine == Engine.PADDLE:
        from embedkit.modeling.weight_only import require_weight_only_gpu

        if quant_type not in WEIGHT_ONLY:
            raise UserError("--quant-type int8 (weights and activations) runs on OpenVINO or ONNX Runtime (CPU); "
                            "on Paddle use weight_only_int8 or weight_only_int4", "--engine")
        require_weight_only_gpu(quant_type, "gpu" if device == "auto" else device)
    if engine == Engine.ONNX and quant_type in WEIGHT_ONLY:
        raise UserError(f"{quant_type} on CPU is NNCF weight compression: use --engine openvino (ONNX Runtime "
                        "quantizes int8 weights and activations: --quant-type int8 --engine onnx)", "--engine")
    if engine == Engine.OPENVINO and not openvino_available():
        raise UserError("--engine openvino needs openvino and nncf: pip install openvino nncf", "--engine")
    return Engine(engine)


def check_group_size_divides(model: Path, spec, group_size: int) -> None:
    """int4 groups run along each Linear's input: the hidden and the intermediate size must divide by them."""
    from embedkit.modeling.embedder import tower_dirs
    from embedkit.modeling.model_config import read_model_config

    for tower_dir in (d for d in tower_dirs(model, spec) if d is not None):
        config = read_model_config(tower_dir)
        for key in ("hidden_size", "intermediate_size"):
            size = config.get(key)
            if isinstance(size, int) and size % group_size:
                raise UserError(f"--group-size {group_size} does not divide the model's {key} {size}; use a group "
                                f"size that does ({', '.join(str(g) for g in GROUP_SIZES if size % g == 0) or 'none of ' + str(GROUP_SIZES)})",
                                "--group-size")


def _calibration(request: QuantizeRequest, engine: Engine) -> Optional[Calibration]:
    if request.quant_type != QuantType.INT8:
        return None
    # ONNX Runtime calibrates (static QDQ) only when asked: on all-MiniLM-L6-v2 its static int8 encoded no faster
    # than fp32 (25.0 vs 23.5 docs/s) while dynamic int8 ran 1.9x (44.9), so --eval-data alone means dynamic.
    data = request.calibration or (request.eval_data if engine != Engine.ONNX else None)
    if data is None:
        if engine == Engine.ONNX:
            console.get().info("no --calibration: ONNX Runtime dynamic int8 (activation ranges per batch)")
            return None
        raise UserError("--quant-type int8 calibrates activation ranges on the task's texts: pass --calibration DATA "
                        "(a BEIR/T2Ranking dir, training JSONL or a .txt file) or --eval-data DIR", "--calibration")
    return load_calibration(data, split=request.calibration_split or request.split,
                            samples=request.calibration_samples, seed=request.seed)


def write_quantized(model: Path, out: Path, quant_type: str, engine: Engine, group_size: int,
                    calibration: Optional[Calibration], spec) -> tuple[dict[str, Any], dict[str, dict]]:
    """The quantized serving dir of ``model`` in ``out`` (an empty dir); returns (record, check per tower)."""
    record: dict[str, Any] = {"type": str(quant_type), "engine": str(engine),
                              "group_size": group_size if quant_type == QuantType.WEIGHT_ONLY_INT4 else None,
                              "calibration": _calibration_record(calibration)}
    if engine == Engine.PADDLE:
        return _write_paddle(model, out, record, spec), {}
    from embedkit.inference.runtime import load_tower_forwards
    from embedkit.inference.serving_dir import graph_engine, write_serving_tower
    from embedkit.modeling.embedder import tower_dirs

    source_engine = graph_engine(model) or Engine.ONNX
    try:
        source = load_tower_forwards(model, source_engine, device="cpu", precision=Precision.FP32)
    except UserError as exc:
        raise UserError(f"--quant-type {quant_type} quantizes the model's exported graph, and {exc.message}",
                        model) from exc
    graph_writer = _openvino_graph if engine == Engine.OPENVINO else _onnx_graph
    record |= _method(quant_type, engine, calibration)
    # The graph's part of the identity, as exports key theirs: the source's weights, with this quantization.
    identity = replace(source.identity, engine=str(engine), precision=Precision.FP32.value, quantization=record)
    query_dir, passage_dir = tower_dirs(out, spec)
    checks = {}
    for name, tower in source.towers.items():
        write_graph = graph_writer(tower, quant_type, group_size, calibration, source.spec, name)
        details = write_serving_tower(passage_dir if name == "passage" else query_dir, engine,
                                      {**identity.graph(name), "tower": name}, write_graph, tower.tower.weights_dir,
                                      tower.tokenizer)
        checks[name] = details["check"]
    quantized_spec = source.spec.model_copy(update={"quantization": record,
                                                    "base_model": source.spec.base_model or str(model)})
    quantized_spec.save(out)
    return record, checks


def _method(quant_type: str, engine: Engine, calibration: Optional[Calibration]) -> dict[str, Any]:
    """How the graph is quantized, and with what (recorded, and part of the embedding identity)."""
    if engine == Engine.OPENVINO:
        from embedkit.compression import openvino_quantize as backend

        method = backend.method(quant_type)
    else:
        from embedkit.compression import onnx_quantize as backend

        method = backend.method(calibration is not None)
    return {**method, "toolchain": backend.toolchain()}


def _calibration_record(calibration: Optional[Calibration]) -> Optional[dict[str, Any]]:
    if calibration is None:
        return None
    return {"source": calibration.source, "fingerprint": calibration.fingerprint, "samples": len(calibration.texts),
            "counts": calibration.counts()}


def _tower_batches(tower, calibration: Calibration, spec, name: str):
    from embedkit.inference.runtime import SHARED

    sides = ("query", "passage") if name == SHARED else (name,)
    return list(calibration_batches(calibration.for_side(sides), tower.tokenizer, spec, calibration.max_length,
                                    batch_size=CALIBRATION_BATCH))


def _check(forward, tower, spec, engine: Engine, quant_type: str) -> dict:
    from embedkit.inference.export import check_against_dygraph

    max_len = max(spec.query_max_len, spec.passage_max_len)
    check = check_against_dygraph(forward, tower.forward, tower.tokenizer, spec, max_len, engine, quant_type,
                                  strict=False)
    if not check.passed():
        console.get().warning(f"{quant_type} embeddings differ from the fp32 model's: min cosine "
                              f"{check.min_cosine:.4f} on the check texts (expected ≥ {check.cosine_floor}); "
                              "measure the cost with --eval-data before using it")
    return check.to_dict()


def _openvino_graph(tower, quant_type: str, group_size: int, calibration, spec, name: str):
    """write_graph for write_serving_tower: NNCF on the tower's graph read by OpenVINO, saved as IR, checked."""
    from embedkit.compression import openvino_quantize
    from embedkit.inference import openvino
    from embedkit.inference.engines import resolve_precision
    from embedkit.inference.serving_dir import graph_file

    def write_graph(staged: Path) -> dict:
        with tempfile.TemporaryDirectory(prefix=".embedkit-quantize-", dir=staged.parent) as tmp:
            model = openvino_quantize.read_graph(graph_file(tower.export.path), Path(tmp))
            if quant_type == QuantType.INT8:
                console.get().info(f"NNCF int8 quantization of the {name} encoder on {len(calibration.texts)} "
                                   "calibration texts")
                model = openvino_quantize.quantize_int8(model, _tower_batches(tower, calibration, spec, name),
                                                        len(calibration.texts))
            else:
                console.get().info(f"NNCF {quant_type} weight compression of the {name} encoder")
                model = openvino_quantize.compress_weights(model, quant_type, group_size)
            openvino.save_ir(model, staged)
        precision = resolve_precision(Engine.OPENVINO)
        forward = openvino.openvino_forward(graph_file(staged), precision)
        return {"check": {**_check(forward, tower, spec, Engine.OPENVINO, quant_type), "compiled": str(precision)}}

    return write_graph


def _onnx_graph(tower, quant_type: str, group_size: int, calibration, spec, name: str):
    """write_graph for write_serving_tower: ONNX Runtime's int8 of the tower's ONNX graph, checked."""
    from embedkit.compression import onnx_quantize
    from embedkit.inference import ort
    from embedkit.inference.serving_dir import graph_file

    def write_graph(staged: Path) -> dict:
        batches = _tower_batches(tower, calibration, spec, name) if calibration is not None else None
        console.get().info(f"ONNX Runtime int8 quantization of the {name} encoder "
                           f"({'static, calibrated' if batches else 'dynamic'})")
        onnx_quantize.quantize_onnx(graph_file(tower.export.path), staged / ort.MODEL_FILE, batches)
        forward = ort.onnx_forward(staged / ort.MODEL_FILE)
        return {"check": _check(forward, tower, spec, Engine.ONNX, quant_type)}

    return write_graph


def _write_paddle(model: Path, out: Path, record: dict, spec) -> dict:
    """GPU weight-only: the source weights as they are, plus the record that makes loading quantize them."""
    from embedkit.modeling.embedder import load_embedder

    embedder, tokenizer = load_embedder(model)  # a LoRA adapter merged, the layout embedkit saves
    record |= {"method": "paddle.nn.quant.weight_quantize at load (arch of the GPU)", "compute_dtype": "float16",
               "ignored": ["pooler"]}
    embedder.spec.quantization = record
    embedder.spec.base_model = embedder.spec.base_model or str(model)
    embedder.save(out, tokenizer)
    return record


def cost_table(source: Path, quantized: Path, engine: Engine, data: Path, split: str, batch_size: Optional[int]):
    """The source in fp32 (what a CPU without bf16 runs) and bf16 where the CPU has it, then the quantized model."""
    from embedkit.inference.engines import bf16_cpu_flag

    baseline_engine = Engine.ONNX if engine == Engine.ONNX else Engine.OPENVINO
    variants = [Variant(f"source fp32 ({baseline_engine})", Path(source), baseline_engine, Precision.FP32)]
    if baseline_engine == Engine.OPENVINO and bf16_cpu_flag() is not None:
        variants.append(Variant("source bf16 (openvino)", Path(source), Engine.OPENVINO, Precision.BF16))
    variants.append(Variant(f"{Path(quantized).name}", Path(quantized)))
    return score_variants(variants, Path(data), split, batch_size)


def quantized_cache_dir(model: Path, quant_type: str, engine: str = EngineChoice.AUTO, group_size: int = DEFAULT_GROUP_SIZE,
                        calibration: Optional[Path] = None, split: str = "test",
                        samples: int = DEFAULT_CALIBRATION_SAMPLES, device: str = "auto") -> Path:
    """`embedkit eval --quant-type`: the model quantized once into the cache, reused while it verifies.

    The entry is keyed by the source's weights and spec, the quantization settings and the calibration texts;
    a damaged entry (its graph no longer matches its record) is quantized again. embedkit owns the cache, so
    replacing an entry deletes only what it wrote.
    """
    from embedkit.inference.runtime import model_towers
    from embedkit.inference.serving_dir import serving_graph
    from embedkit.modeling.embedder import resolve_spec

    request = QuantizeRequest(model=Path(model), output=None, quant_type=quant_type,
                              engine=engine, group_size=group_size, calibration=calibration, split=split,
                              calibration_samples=samples, device=device)
    spec, resolved = check_request(request)
    calibration_data = _calibration(request, resolved)
    towers = model_towers(Path(model), spec)
    key = {"towers": {t.name: t.fingerprint for t in towers}, "spec": spec.model_dump(mode="json", exclude={"embedkit_version"}),
           "type": quant_type, "engine": str(resolved), "group_size": group_size,
           "calibration": calibration_data.fingerprint if calibration_data else None}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    entry = paths.cache_dir("quantized") / digest
    if entry.is_dir():
        try:
            cached_spec = resolve_spec(entry)
            for tower in model_towers(entry, cached_spec):
                serving_graph(tower.weights_dir, cached_spec)
            console.get().info(f"using the {quant_type} model quantized before: {entry}")
            return entry
        except UserError as exc:
            console.get().warning(f"quantizing again: the cached {quant_type} model is damaged ({exc.message})")
    with atomic_path(entry, replace_dir=True) as staged:
        staged.mkdir()
        write_quantized(Path(model), staged, quant_type, resolved, group_size, calibration_data, spec)
    return entry

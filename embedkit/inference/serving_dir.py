"""Serving dirs, as `embedkit export --format onnx|openvino` and `embedkit quantize` write them: per tower one
checked graph with the ``export.json`` it was checked and recorded with, the tokenizer and ``config.json``;
``embedkit.json`` on top.

The graph decides the engine: ``model.onnx`` runs on ONNX Runtime, an OpenVINO IR (``openvino_model.xml`` and
``.bin``) on OpenVINO. Such a dir has no Paddle weights. Its embedding identity is the source model's weights
fingerprint with the spec saved beside the graph (a quantized graph's record included), so caches keyed by it
stay valid and a quantized dir never shares vectors with its source. The graph bytes are verified against their
record before every load.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from embedkit.choices import Engine, EngineChoice
from embedkit.errors import UserError
from embedkit.filenames import EXPORT_META_FILE, MODEL_CONFIG_FILE, OPENVINO_MODEL_FILE, OPENVINO_WEIGHTS_FILE
from embedkit.fsutil import write_json
from embedkit.inference import ort
from embedkit.inference.export import ExportInfo
from embedkit.inference.identity import GRAPH_SPEC_FIELDS, spec_fields
from embedkit.integrity import file_records, mismatch
from embedkit.modeling.spec import EmbedderSpec
from embedkit.modeling.tokenizer_files import save_tokenizer

# The graph files of each engine's serving dir, the file the engine opens first.
GRAPH_FILES: dict[str, tuple[str, ...]] = {
    Engine.ONNX.value: ort.FILES,
    Engine.OPENVINO.value: (OPENVINO_MODEL_FILE, OPENVINO_WEIGHTS_FILE),
}


def _graph_kind(tower_dir: Path) -> Optional[Engine]:
    return next((Engine(engine) for engine, files in GRAPH_FILES.items() if (tower_dir / files[0]).is_file()), None)


def graph_engine(tower_dir: Path) -> Optional[Engine]:
    """The engine whose graph ``tower_dir`` holds beside an export record, or None (not a serving dir)."""
    return _graph_kind(tower_dir) if (tower_dir / EXPORT_META_FILE).is_file() else None


def is_serving_dir(tower_dir: Path) -> bool:
    return graph_engine(tower_dir) is not None


def graph_file(tower_dir: Path) -> Path:
    """The graph file an engine opens in ``tower_dir`` (a serving dir's tower, or an export being written)."""
    kind = _graph_kind(tower_dir)
    if kind is None:
        raise FileNotFoundError(f"no graph in {tower_dir}")
    return tower_dir / GRAPH_FILES[str(kind)][0]


def _key(tower_dir: Path) -> dict:
    path = tower_dir / EXPORT_META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        key = meta["key"]
        key["weights"]  # noqa: B018  (present in every export embedkit wrote)
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError("not an export record embedkit wrote (no key with the source weights)", path) from None
    return key


def serving_fingerprint(tower_dir: Path) -> str:
    """The weights fingerprint of the model the graph was exported from."""
    return _key(tower_dir)["weights"]


def serving_engine(engine: str, model_dir: Path, tower_dir: Path) -> Engine:
    """The engine of the dir's graph; ``engine`` must be it or auto."""
    wanted = graph_engine(tower_dir)
    if str(engine) not in (EngineChoice.AUTO, wanted):
        kind = "an OpenVINO IR" if wanted == Engine.OPENVINO else "an ONNX graph"
        raise UserError(f"this serving dir holds {kind}, which runs on {wanted} only: use --engine {wanted} or auto, "
                        f"not {engine}", model_dir)
    return wanted


def serving_engines(model_dir: Path, engines: list[Engine]) -> list[Engine]:
    """Of ``engines``, those that can run ``model_dir`` (all of them unless it is a serving dir)."""
    wanted = graph_engine(model_dir)
    return engines if wanted is None else [wanted]


def serving_graph(tower_dir: Path, spec: EmbedderSpec) -> ExportInfo:
    """The dir's graph, after checking it is the one recorded and that ``spec`` asks for what it computes."""
    meta = json.loads((tower_dir / EXPORT_META_FILE).read_text(encoding="utf-8"))
    problem = mismatch(tower_dir, meta.get("files"))
    if problem is not None:
        raise UserError(f"the graph does not match its record in {EXPORT_META_FILE}: {problem}; export (or "
                        "quantize) again", tower_dir)
    key, wanted = _key(tower_dir), spec_fields(spec)
    changed = [name for name in GRAPH_SPEC_FIELDS if key.get(name) != wanted[name]]
    if changed:
        baked = ", ".join(f"{name}={key.get(name)}" for name in changed)
        raise UserError(f"this graph computes {baked}; those are part of the graph: export the source model "
                        "again with the settings wanted", tower_dir)
    if key.get("quantization") != spec.quantization:
        raise UserError(f"the graph's quantization record {key.get('quantization')} is not the one in embedkit.json "
                        f"({spec.quantization}); quantize the source model again", tower_dir)
    return ExportInfo(tower_dir, built=False, seconds=0.0)


def write_serving_tower(target: Path, engine: Engine, key: dict, write_graph: Callable[[Path], dict],
                        config_dir: Path, tokenizer) -> dict:
    """One tower of a serving dir: ``write_graph(target)`` writes the graph and returns its check, then the
    config, the tokenizer and the export record (written last, so a dir without it is never taken for one)."""
    target.mkdir(parents=True, exist_ok=True)
    details = write_graph(target)
    # Encoder reads the embedding width from config.json.
    shutil.copyfile(config_dir / MODEL_CONFIG_FILE, target / MODEL_CONFIG_FILE)
    save_tokenizer(target, tokenizer)
    write_json(target / EXPORT_META_FILE, {"key": key, **details,
                                           "files": file_records(target, GRAPH_FILES[str(engine)])})
    return details

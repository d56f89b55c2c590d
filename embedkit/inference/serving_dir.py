"""ONNX serving dirs, as `embedkit export --format onnx` writes them: per tower the checked graph with the
``export.json`` it was checked and recorded with, the tokenizer and ``config.json``; ``embedkit.json`` on top.

Such a dir has no weights, so it runs on ONNX Runtime only. Its embedding identity is the source model's for the
onnx engine (the same graph bytes, verified against their record on load), so caches keyed by it stay valid.
"""

from __future__ import annotations

import json
from pathlib import Path

from embedkit.choices import Engine, EngineChoice
from embedkit.errors import UserError
from embedkit.filenames import EXPORT_META_FILE
from embedkit.inference import ort
from embedkit.inference.export import ExportInfo
from embedkit.inference.identity import GRAPH_SPEC_FIELDS, spec_fields
from embedkit.integrity import mismatch
from embedkit.modeling.spec import EmbedderSpec


def is_serving_dir(tower_dir: Path) -> bool:
    return (tower_dir / ort.MODEL_FILE).is_file() and (tower_dir / EXPORT_META_FILE).is_file()


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


def serving_engine(engine: str, model_dir: Path) -> Engine:
    if str(engine) not in (EngineChoice.AUTO, Engine.ONNX):
        raise UserError(f"an ONNX serving dir (from embedkit export --format onnx) runs on ONNX Runtime only: use "
                        f"--engine onnx or auto, not {engine}", model_dir)
    return Engine.ONNX


def serving_engines(model_dir: Path, engines: list[Engine]) -> list[Engine]:
    """Of ``engines``, those that can run ``model_dir`` (all of them unless it is a serving dir)."""
    return [Engine.ONNX] if is_serving_dir(model_dir) else engines


def serving_graph(tower_dir: Path, spec: EmbedderSpec) -> ExportInfo:
    """The dir's graph, after checking it is the one recorded and that ``spec`` asks for what it computes."""
    meta = json.loads((tower_dir / EXPORT_META_FILE).read_text(encoding="utf-8"))
    problem = mismatch(tower_dir, meta.get("files"))
    if problem is not None:
        raise UserError(f"the ONNX graph does not match its record in {EXPORT_META_FILE}: {problem}; export again",
                        tower_dir)
    key, wanted = _key(tower_dir), spec_fields(spec)
    changed = [name for name in GRAPH_SPEC_FIELDS if key.get(name) != wanted[name]]
    if changed:
        baked = ", ".join(f"{name}={key.get(name)}" for name in changed)
        raise UserError(f"this ONNX graph computes {baked}; those are part of the graph: export the source model "
                        "again with the settings wanted", tower_dir)
    return ExportInfo(tower_dir, built=False, seconds=0.0)

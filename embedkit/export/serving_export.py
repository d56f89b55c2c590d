"""A self-contained serving dir (layout: embedkit.inference.serving_dir) from any model dir embedkit runs.

``onnx``: each tower's checked ONNX export, copied. ``openvino``: that graph read by OpenVINO's runtime and
written as IR (fp32 weights; the precision is picked when it is compiled), checked against the ONNX graph. A
serving dir or a quantized model exports in the format of the graph it holds (its files copied and re-verified).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Optional

from embedkit.choices import Engine, ExportFormat, Precision
from embedkit.errors import UserError
from embedkit.filenames import EXPORT_META_FILE
from embedkit.inference import openvino
from embedkit.inference.export import check_against_dygraph
from embedkit.inference.runtime import load_tower_forwards
from embedkit.inference.serving_dir import GRAPH_FILES, graph_engine, graph_file, write_serving_tower
from embedkit.modeling.embedder import tower_dirs


def write_serving_dir(model_dir: Path, out: Path, fmt: str, overrides: Optional[dict]) -> dict[str, Any]:
    """Write the serving dir of ``model_dir`` as ``fmt`` into ``out``; returns each tower's check."""
    held = graph_engine(model_dir)
    wanted = Engine.OPENVINO if fmt == ExportFormat.OPENVINO else Engine.ONNX
    if held is not None and held != wanted:
        raise UserError(f"this dir holds a {held} graph; it exports as --format {held} only", model_dir)
    loaded = load_tower_forwards(model_dir, held or Engine.ONNX, overrides, "cpu", precision=Precision.FP32)
    spec = loaded.spec
    query_dir, passage_dir = tower_dirs(out, spec)
    checks = {}
    for name, tower in loaded.towers.items():
        target = passage_dir if name == "passage" else query_dir
        meta = json.loads((tower.export.path / EXPORT_META_FILE).read_text(encoding="utf-8"))
        if held is not None or wanted == Engine.ONNX:
            details = write_serving_tower(target, wanted, meta["key"], _copier(tower.export.path, wanted, meta),
                                          tower.tower.weights_dir, tower.tokenizer)
        else:
            key = {**meta["key"], "engine": str(wanted), "source": meta["key"], **openvino.toolchain()}
            details = write_serving_tower(target, wanted, key, _ir_writer(tower, spec), tower.tower.weights_dir,
                                          tower.tokenizer)
        checks[name] = {k: details[k] for k in ("max_abs_diff_vs_dygraph", "min_cosine_vs_dygraph") if k in details}
    spec.save(out)
    return {"checked": True, "towers": checks, "precision": loaded.identity.precision,
            "quantization": loaded.identity.quantization, "fingerprint": loaded.identity.digest}


def _copier(source: Path, engine: Engine, meta: dict):
    def write_graph(target: Path) -> dict:
        for name in GRAPH_FILES[str(engine)]:
            shutil.copyfile(source / name, target / name)
        return {k: v for k, v in meta.items() if k not in ("key", "files")}

    return write_graph


def _ir_writer(tower, spec):
    """The ONNX graph as IR, compared in fp32 with the ONNX graph it came from (itself checked against dygraph)."""
    def write_graph(target: Path) -> dict:
        openvino.export_ir(graph_file(tower.export.path), target)
        forward = openvino.openvino_forward(graph_file(target), Precision.FP32)
        max_len = max(spec.query_max_len, spec.passage_max_len)
        return check_against_dygraph(forward, tower.forward, tower.tokenizer, spec, max_len, Engine.OPENVINO).to_dict()

    return write_graph

"""Exported inference graphs: built once per (weights, spec, tower, engine), cached, checked against dygraph.

A graph lives beside the model in ``<model_dir>/.embedkit-export/<engine>-<tower>/`` when that directory is
writable and not part of a Python installation (an installed package's directory is not ours to write
into), else in the embedkit cache under ``exports/<key>/``. It is built in a temporary directory and
renamed into place only after its outputs matched the dygraph model, so a failed or interrupted export
never leaves a usable-looking graph behind. ``export.json`` records the key; a different key (new weights,
other pooling, newer Paddle) rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from embedkit import console, paths
from embedkit.choices import Precision, QuantType
from embedkit.filenames import EXPORT_DIRNAME
from embedkit.filenames import EXPORT_META_FILE as META_FILE
from embedkit.fsutil import atomic_path, write_json
from embedkit.inference.engines import Engine, EngineUnavailableError
from embedkit.inference.identity import EmbeddingIdentity
from embedkit.integrity import file_records, mismatch
from embedkit.modeling.encode import BatchForward
from embedkit.modeling.spec import EmbedderSpec
from embedkit.modeling.tokenize import pad_batch, tokenize

# Bump when the layout or the exported layer changes, so older exports are rebuilt.
EXPORT_FORMAT = 2
ONNX_OPSET = 14
# fp32 graphs: max abs difference to dygraph, relative to the embedding scale when that exceeds 1
# (unnormalised models). Reduced-precision graphs differ by design; they must keep the direction of every
# embedding: the lowest cosine to dygraph over the check batch, per precision.
TOLERANCE = 1e-4
COSINE_FLOORS: dict[str, float] = {Precision.BF16.value: 0.9999, Precision.FP16.value: 0.9999,
                                   Precision.INT8.value: 0.99, QuantType.WEIGHT_ONLY_INT8.value: 0.99,
                                   QuantType.WEIGHT_ONLY_INT4.value: 0.97}

# Real sentences of very different lengths (one is cut at the max length), English and Chinese, so the
# check covers padding, truncation and the multilingual vocabularies embedkit is used with.
PROBE_TEXTS = (
    "Vitamin D deficiency is associated with an increased risk of tuberculosis.",
    "ALDH1 expression is associated with poorer prognosis in breast cancer.",
    "What is the capital of France?",
    "北京是中国的首都。",
    "Hi",
    "Mutations in the BRCA1 gene increase the lifetime risk of breast and ovarian cancer; carriers are "
    "offered enhanced screening, and prophylactic surgery reduces, but does not remove, that risk. "
    "Population studies across several cohorts estimate the penetrance at 55 to 72 percent by age 70, "
    "with substantial variation by mutation site, family history and reproductive factors. " * 6,
)


class ExportUnsupportedError(EngineUnavailableError):
    """``paddle.jit.to_static`` cannot trace this model (PaddleNLP's decoder LLMs, typically): dygraph still runs it."""

    alternative = "paddle"


class ExportMismatchError(RuntimeError):
    """An exported graph whose embeddings differ from the dygraph model's: a bug, never cached."""


@dataclass(frozen=True)
class Tower:
    """One encoder of a model: ``shared`` for one-encoder models, else the ``query`` or ``passage`` tower."""

    name: str
    weights_dir: Path
    fingerprint: str


@dataclass
class ExportInfo:
    path: Path
    built: bool  # False when a cached graph was reused
    seconds: float  # building (and checking) it; 0 when reused


def input_names(tokenizer) -> list[str]:
    """The arrays a padded batch carries for this tokenizer (token_type_ids only for BERT-style ones)."""
    return sorted(pad_batch(tokenize(tokenizer, ["x"], 8), 0))


def export_key(engine: Engine, tower: Tower, identity: EmbeddingIdentity, names: list[str]) -> dict:
    """The graph's part of the embedding identity (for ``engine``: an ONNX graph is converted from a Paddle one),
    plus the toolchain that wrote it."""
    import paddle

    key = {"format": EXPORT_FORMAT, **identity.graph(tower.name), "engine": str(engine), "tower": tower.name,
           "inputs": names, "paddle": paddle.__version__, "code": _graph_code_digest()}
    if engine == "onnx":
        import onnxruntime
        import paddle2onnx

        from embedkit.inference.onnx_fusion import FUSION_VERSION

        # The fused graph uses onnxruntime contrib ops, so it belongs to the onnxruntime that wrote it.
        key |= {"paddle2onnx": paddle2onnx.__version__, "opset": ONNX_OPSET, "fusion": FUSION_VERSION,
                "onnxruntime": onnxruntime.__version__}
    elif engine == "openvino":
        from embedkit.inference import openvino

        # OpenVINO compiles the onnx engine's graph: a rebuilt graph, another OpenVINO or CPU re-checks it.
        key |= {"source": export_key("onnx", tower, source_identity(identity), names), **openvino.toolchain()}
    return key


def source_identity(identity: EmbeddingIdentity) -> EmbeddingIdentity:
    """The identity of the fp32 ONNX graph an OpenVINO model is compiled from (the onnx engine's export)."""
    return replace(identity, engine=Engine.ONNX.value, precision=Precision.FP32.value)


def _graph_code_digest() -> str:
    """The embedkit source that ends up in the graph: editing pooling or the exported layer rebuilds exports."""
    from embedkit.inference import layer
    from embedkit.modeling import embedder, pooling

    digest = hashlib.sha256()
    for module in (pooling, embedder, layer):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def _inside_python_install(path: Path) -> bool:
    roots = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib", "stdlib")}
    resolved = path.resolve()
    return any(resolved.is_relative_to(root) for root in roots)


def _can_write_beside(model_dir: Path) -> bool:
    """Try it: permissions alone say nothing for root or on read-only mounts and immutable dirs."""
    if _inside_python_install(model_dir):
        return False
    root = model_dir / EXPORT_DIRNAME
    created = not root.exists()
    try:
        root.mkdir(exist_ok=True)
        probe = root / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
        if created:  # the export makes it again; a failed export then leaves nothing beside the model
            root.rmdir()
        return True
    except OSError:
        return False


def export_location(model_dir: Path, engine: Engine, tower: Tower, key: dict, root: Optional[Path] = None) -> Path:
    """Where the export lives: under ``root`` when given, else beside the model, else in the cache."""
    leaf = f"{engine}-{tower.name}"
    if root is not None:
        return root / leaf
    if _can_write_beside(model_dir):
        return model_dir / EXPORT_DIRNAME / leaf
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return paths.cache_dir("exports", digest) / leaf


def cached_export(location: Path, key: dict, files: tuple[str, ...]) -> bool:
    """Whether ``location`` holds an export for ``key`` whose files match the records written with it.

    A truncated or damaged graph (a kill while copying, a disk error) is rebuilt, with a warning.
    """
    try:
        meta = json.loads((location / META_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    if not isinstance(meta, dict) or meta.get("key") != key:
        return False
    problem = mismatch(location, meta.get("files"))
    if problem is None and not all(name in meta["files"] for name in files):
        problem = "it lacks " + ", ".join(name for name in files if name not in meta["files"])
    if problem is not None:
        console.get().warning(f"rebuilding a damaged export {location}: {problem}")
    return problem is None


@dataclass(frozen=True)
class ExportCheck:
    """How far an exported graph is from the dygraph model on PROBE_TEXTS, and the bar it had to clear."""

    precision: str
    max_abs_diff: float
    min_cosine: float

    @property
    def cosine_floor(self) -> Optional[float]:
        return COSINE_FLOORS.get(self.precision)

    def passed(self) -> bool:
        if self.cosine_floor is None:
            return self.max_abs_diff <= TOLERANCE
        return self.min_cosine >= self.cosine_floor

    def to_dict(self) -> dict:
        return {"precision": self.precision, "max_abs_diff_vs_dygraph": self.max_abs_diff,
                "min_cosine_vs_dygraph": self.min_cosine,
                **({"cosine_floor": self.cosine_floor} if self.cosine_floor is not None else {"tolerance": TOLERANCE})}


def check_against_dygraph(forward: BatchForward, reference: BatchForward, tokenizer, spec: EmbedderSpec,
                          max_len: int, engine: Engine, precision: str = Precision.FP32.value,
                          strict: bool = True) -> ExportCheck:
    """Compare ``forward`` with ``reference`` on PROBE_TEXTS (one mixed batch, one single text).

    fp32 graphs must match within TOLERANCE; reduced-precision ones must keep every embedding's direction
    (COSINE_FLOORS). Raises ExportMismatchError otherwise, or with ``strict=False`` (a quantized graph, whose
    distance is a cost to report, not a bug) only for a wrong shape or non-finite values.
    """
    features = tokenize(tokenizer, PROBE_TEXTS, max_len, append_eos=spec.appends_eos())
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    worst_abs, worst_cosine = 0.0, 1.0
    for group in (features, features[-1:]):
        batch = pad_batch(group, pad_id, spec.padding_side)
        got, want = forward(batch), reference(batch)
        if got.shape != want.shape:
            raise ExportMismatchError(f"{engine} export returns shape {got.shape}, dygraph {want.shape}")
        if not np.isfinite(got).all():  # max() and min() below would pass NaN over
            raise ExportMismatchError(f"{engine} {precision} export returns NaN or infinite values; not cached")
        scale = max(1.0, float(np.abs(want).max()))
        worst_abs = max(worst_abs, float(np.abs(got - want).max()) / scale)
        worst_cosine = min(worst_cosine, float(row_cosines(got, want).min()))
    check = ExportCheck(str(precision), worst_abs, worst_cosine)
    if strict and not check.passed():
        bar = (f"min cosine {worst_cosine:.6f} (floor {check.cosine_floor})" if check.cosine_floor is not None
               else f"{worst_abs:.3g} (tolerance {TOLERANCE:g})")
        raise ExportMismatchError(f"{engine} {precision} export differs from the dygraph model by {bar}; "
                                  "not cached. Use --engine paddle meanwhile, and please report this.")
    return check


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1.0), 0.0)


def build_export(location: Path, key: dict, files: tuple[str, ...],
                 write: Callable[[Path], Optional[dict]]) -> ExportInfo:
    """Reuse the export at ``location`` if its key matches, else ``write(staging_dir)`` and rename it into place.

    ``write`` builds and checks the graph; the dict it returns is stored in ``export.json`` for reference.
    """
    if cached_export(location, key, files):
        return ExportInfo(location, built=False, seconds=0.0)
    start = time.perf_counter()
    with atomic_path(location, replace_dir=True) as staged:  # an export dir: embedkit's own
        staged.mkdir()
        details = write(staged) or {}
        written = [p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()]
        write_json(staged / META_FILE, {"key": key, **details, "files": file_records(staged, written)})
    return ExportInfo(location, built=True, seconds=time.perf_counter() - start)


def save_inference_model(embedder, side: str, names: list[str], prefix: Path, model_dir: Optional[Path] = None) -> None:
    """``paddle.jit.save`` of one side, batch and sequence dims dynamic ([None, None] int64 inputs)."""
    import paddle

    from embedkit.inference.layer import SideEmbedding
    from embedkit.inference.traceable import traceable

    layer = SideEmbedding(embedder, side)
    layer.eval()
    spec = [{name: paddle.static.InputSpec([None, None], "int64", name) for name in names}]
    try:
        with traceable(layer):  # the trace runs in jit.save
            static = paddle.jit.to_static(layer, input_spec=spec, full_graph=True)
            paddle.jit.save(static, str(prefix))
    except Exception as exc:  # noqa: BLE001  (the tracer raises whatever the model's Python code raises)
        first_line = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        reason = next((line.strip() for line in reversed(str(exc).splitlines()) if "Error:" in line), first_line)
        if not reason.startswith(type(exc).__name__):
            reason = f"{type(exc).__name__}: {reason}"
        raise ExportUnsupportedError(f"this model cannot be exported to a static graph ({reason[:300]})",
                                     model_dir) from exc

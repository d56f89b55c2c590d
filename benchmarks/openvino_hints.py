"""Which OpenVINO performance hint encodes fastest the way embedkit encodes (one synchronous request per batch).

Behind embedkit.inference.openvino.PERFORMANCE_HINT. all-MiniLM-L6-v2's ONNX export (the onnx engine's) is
compiled per precision with PERFORMANCE_HINT LATENCY and THROUGHPUT (and LATENCY without CPU pinning, since
pinned threads suffer when other processes share the cores); each encodes the first 64 SciFact documents at
256 tokens in length-sorted batches of at most 16 texts and embedkit's token cap. Variants take turns within
each repeat; docs/s is the best repeat. Writes benchmarks/results/openvino_hints.json.

    .venv/bin/python benchmarks/openvino_hints.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA_CANDIDATES = (REPO.parent / "shared" / "data" / "scifact", REPO / "demo" / "scifact-mini")
RESULT = REPO / "benchmarks" / "results" / "openvino_hints.json"
VARIANTS = {"LATENCY": {"PERFORMANCE_HINT": "LATENCY"}, "THROUGHPUT": {"PERFORMANCE_HINT": "THROUGHPUT"},
            "LATENCY, no pinning": {"PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}}


def main() -> None:
    import openvino
    import paddle  # noqa: F401  (before anything imports torch, as everywhere in embedkit)

    from embedkit.benchmark.encode_speed import default_model_dir, load_texts, machine_info
    from embedkit.fsutil import write_json
    from embedkit.inference import load_forward
    from embedkit.inference.engines import cpu_cores
    from embedkit.inference.openvino import compile_config
    from embedkit.modeling.encode import encode_texts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=next((p for p in DATA_CANDIDATES if p.is_dir()), None))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    machine = machine_info(cpu_cores())
    texts = load_texts(args.data, 64)
    tower = load_forward(default_model_dir(), "passage", "openvino", {"passage_max_len": 256}, "cpu",
                         precision="fp32")
    onnx_file = json.loads((tower.export.path / "check.json").read_text())["graph"]
    core = openvino.Core()
    forwards = {}
    for precision in ("bf16", "fp32"):
        for name, variant in VARIANTS.items():
            compiled = core.compile_model(str(onnx_file), "CPU", {**compile_config(precision), **variant})
            forwards[(precision, name)] = _forward(compiled)
            print(f"{precision} {name}: {compiled.get_property('NUM_STREAMS')} streams", flush=True)

    def run(forward) -> float:
        start = time.perf_counter()
        encode_texts(texts, tower.tokenizer, forward, 256, batch_size=16, max_tokens=tower.max_tokens)
        return len(texts) / (time.perf_counter() - start)

    for forward in forwards.values():
        run(forward)  # warm-up
    speeds = {key: [] for key in forwards}
    for _ in range(args.repeats):
        for key, forward in forwards.items():
            time.sleep(0.3)
            speeds[key].append(run(forward))
    rows = [{"precision": p, "variant": v, "docs_per_s": round(max(runs), 2), "runs": [round(r, 2) for r in runs]}
            for (p, v), runs in speeds.items()]
    for row in rows:
        print(f"{row['precision']} {row['variant']:22s} {row['docs_per_s']:7.2f} docs/s  {row['runs']}", flush=True)
    machine["load_average_end"] = list(os.getloadavg())
    write_json(RESULT, {"model": "all-MiniLM-L6-v2", "data": str(args.data), "docs": len(texts), "max_len": 256,
                        "batch_size": 16, "tokens_per_batch": tower.max_tokens, "repeats": args.repeats,
                        "machine": machine, "rows": rows})
    print(json.dumps({"result": str(RESULT)}))


def _forward(compiled):
    request = compiled.create_infer_request()
    names = [port.get_any_name() for port in compiled.inputs]
    return lambda batch: request.infer({name: batch[name] for name in names})[0]


if __name__ == "__main__":
    main()

"""`embedkit bench`: one run measures every engine and the sentence-transformers reference on the same docs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from embedkit.benchmark.encode_speed import REFERENCE, BenchSettings, run_bench
from embedkit.benchmark.memory import PeakRss, rss_mib

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo" / "scifact-mini"


def _settings(model, **changes) -> BenchSettings:
    base = dict(model_dir=model, data_dir=DEMO_DATA, docs=10, max_len=64, batch_sizes=[4], repeats=2,
                engines=["paddle-inference", "onnx"])
    return BenchSettings(**{**base, **changes})


def _faked_cpu(monkeypatch, flags):
    from embedkit.inference import engines

    monkeypatch.setattr(engines, "cpu_flags", lambda: frozenset(flags))


def test_engines_and_reference_in_one_run(tiny_hf_bert, monkeypatch):
    _faked_cpu(monkeypatch, {"avx512f"})  # no bf16: one reference row per batch size
    result = run_bench(_settings(tiny_hf_bert, batch_sizes=[4, 8], fresh_export=True), progress=False)
    rows = {(m.runner, m.batch_size): m for m in result.measurements}
    assert set(rows) == {(r, b) for r in ("paddle-inference", "onnx", REFERENCE) for b in (4, 8)}
    assert result.skipped == {f"{REFERENCE} bf16": "this CPU has no bf16 instructions"}
    for (_, batch_size), m in rows.items():
        assert m.precision == "fp32"
        assert len(m.runs_docs_per_s) == 2 and m.docs_per_s == max(m.runs_docs_per_s) > 0
        # warm-up excluded: exactly the timed runs' batches are in the latency percentiles
        assert m.timed_batches == 2 * math.ceil(10 / batch_size)
        assert 0 < m.batch_ms_p50 <= m.batch_ms_p95
        assert m.ratio_vs_reference == pytest.approx(m.docs_per_s / rows[(REFERENCE, batch_size)].docs_per_s, rel=1e-2)
        # a plain HF checkpoint: ST is built from the same spec (mean pooling, normalised), so outputs agree
        assert m.max_abs_diff_vs_reference <= 1e-4 and m.min_cosine_vs_reference >= 0.99999
    # fresh exports: both graphs were built in this run and timed apart from steady state
    assert rows[("paddle-inference", 4)].export_s > 0 and rows[("onnx", 4)].export_s > 0
    assert rows[(REFERENCE, 4)].export_s is None
    payload = result.to_dict()
    assert json.loads(json.dumps(payload))["best"]["runner"] in ("paddle-inference", "onnx")
    assert "avx512f" in payload["machine"]["cpu_flags"] and payload["machine"]["bf16"] is None


def test_openvino_in_both_precisions_against_both_references(tiny_hf_bert, monkeypatch, run_cli):
    _faked_cpu(monkeypatch, {"avx512f", "avx512_bf16"})
    result = run_bench(_settings(tiny_hf_bert, engines=["openvino", "onnx"], repeats=1), progress=False)
    rows = {(m.runner, m.precision): m for m in result.measurements}
    assert set(rows) == {("openvino", "bf16"), ("openvino", "fp32"), ("onnx", "fp32"), (REFERENCE, "fp32"),
                         (REFERENCE, "bf16")}
    peer_best = max(rows[(REFERENCE, "fp32")].docs_per_s, rows[(REFERENCE, "bf16")].docs_per_s)
    for m in rows.values():
        assert m.ratio_vs_reference == pytest.approx(m.docs_per_s / peer_best, rel=1e-2)
    # cosines against ST fp32: exact for fp32 rows, close for bf16 ones
    assert rows[(REFERENCE, "fp32")].min_cosine_vs_reference == 1.0
    assert rows[("openvino", "fp32")].min_cosine_vs_reference >= 0.99999
    assert rows[("openvino", "bf16")].min_cosine_vs_reference >= 0.999
    # computed in bf16 indeed: further from the fp32 reference than the fp32 graph is
    assert rows[("openvino", "bf16")].max_abs_diff_vs_reference > 10 * rows[("openvino", "fp32")].max_abs_diff_vs_reference
    payload = result.to_dict()
    assert payload["best_reference"]["docs_per_s"] == peer_best and payload["machine"]["bf16"] == "avx512_bf16"
    assert payload["best_vs_best_reference"] == pytest.approx(payload["best"]["docs_per_s"] / peer_best, rel=1e-2)

    only_bf16 = run_bench(_settings(tiny_hf_bert, engines=["openvino", "onnx"], repeats=1, precision="bf16",
                                    reference=False), progress=False)
    assert [(m.runner, m.precision) for m in only_bf16.measurements] == [("openvino", "bf16")]
    assert only_bf16.skipped["onnx"] == "computes in fp32 only, not bf16"
    _faked_cpu(monkeypatch, {"avx512f"})
    refused = run_cli("bench", tiny_hf_bert, "--data", DEMO_DATA, "--engine", "openvino", "--precision", "bf16",
                      "--no-reference")
    assert refused.exit_code == 2 and "avx512_bf16" in refused.stderr.replace("\n", "")


def test_reference_follows_the_spec_override(tiny_hf_bert):
    result = run_bench(_settings(tiny_hf_bert, engines=["onnx"], repeats=1, overrides={"pooling": "cls",
                                                                                         "normalized": False}),
                       progress=False)
    assert all(m.max_abs_diff_vs_reference <= 1e-4 for m in result.measurements if m.precision == "fp32")


def test_paddle_weights_skip_the_reference_and_say_why(tmp_path):
    from embedkit.modeling.tiny import build_tiny_bert

    model = build_tiny_bert(tmp_path / "paddle-tiny", ["cells divide", "proteins fold"])
    result = run_bench(_settings(model, engines=["onnx"], repeats=1), progress=False)
    assert [m.runner for m in result.measurements] == ["onnx"]
    assert "Paddle layout" in result.skipped[REFERENCE]
    assert result.measurements[0].ratio_vs_reference is None


def test_cached_export_is_not_counted_as_export_time(tiny_hf_bert, tmp_path):
    model = shutil.copytree(tiny_hf_bert, tmp_path / "model")  # no export beside it yet
    first = run_bench(_settings(model, engines=["paddle-inference"], repeats=1, reference=False), progress=False)
    second = run_bench(_settings(model, engines=["paddle-inference"], repeats=1, reference=False), progress=False)
    assert first.measurements[0].export_s > 0
    assert second.measurements[0].export_s is None
    assert second.skipped == {REFERENCE: "not requested (--no-reference)"}


def test_peak_rss_sees_a_transient_allocation():
    before = rss_mib()
    with PeakRss() as peak:
        block = np.ones(40 * 1024 * 1024 // 8)  # 40 MiB, freed before the block ends
        del block
    assert peak.mib - before >= 35


def test_cli_json_table_and_output_file(run_cli, tiny_hf_bert, tmp_path):
    out_file = tmp_path / "bench.json"
    result = run_cli("bench", tiny_hf_bert, "--data", DEMO_DATA, "--docs", "6", "--max-length", "32",
                     "--batch-size", "3", "--repeats", "1", "--engine", "onnx", "--no-reference", "--json",
                     "--output", out_file)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload == json.loads(out_file.read_text())
    assert payload["docs"] == 6 and payload["measurements"][0]["runner"] == "onnx"
    assert "docs/s" in result.stderr and "onnx" in result.stderr


def test_cli_progress_is_one_line_per_timed_run_when_stderr_is_not_a_terminal(run_cli, tiny_hf_bert):
    args = ["bench", tiny_hf_bert, "--data", DEMO_DATA, "--docs", "6", "--passage-max-len", "32", "--batch-size", "3",
            "--batch-size", "6", "--repeats", "2", "--engine", "onnx", "--no-reference"]
    result = run_cli(*args)  # stderr is captured: not a terminal, so no live bar
    assert result.exit_code == 0, result.stderr
    runs = [line.split(":")[0] for line in result.stderr.splitlines() if line.startswith("[")]
    assert runs == ["[1/4] onnx fp32 batch 3 run 1/2", "[2/4] onnx fp32 batch 6 run 1/2",
                    "[3/4] onnx fp32 batch 3 run 2/2", "[4/4] onnx fp32 batch 6 run 2/2"]
    assert "loaded onnx fp32 in" in result.stderr and "warming up: 1 runners x 2 batch sizes" in result.stderr
    assert "\x1b[" not in result.stderr and "━" not in result.stderr
    quiet = run_cli(*args, "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


@pytest.mark.parametrize(("args", "message"), [
    (["--docs", "0"], "--docs must be at least 1"),
    (["--docs", "100000"], "fewer than --docs"),
    (["--engine", "tensorflow"], "unknown engine"),
])
def test_cli_bad_input_is_a_one_line_error(run_cli, tiny_hf_bert, args, message):
    result = run_cli("bench", tiny_hf_bert, "--data", DEMO_DATA, "--repeats", "1", "--no-reference", *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_cli_missing_data_dir(run_cli, tiny_hf_bert, tmp_path):
    result = run_cli("bench", tiny_hf_bert, "--data", tmp_path / "nope", "--no-reference")
    assert result.exit_code == 2 and "nope" in result.stderr


def test_token_cap_is_eval_s_by_default_and_can_be_lifted(tiny_hf_bert):
    from embedkit.inference.runtime import CPU_TOKENS_PER_BATCH

    default = run_bench(_settings(tiny_hf_bert, engines=["onnx"], repeats=1), progress=False)
    lifted = run_bench(_settings(tiny_hf_bert, engines=["onnx"], repeats=1, tokens_per_batch=0,
                                 reference=False), progress=False)
    tight = run_bench(_settings(tiny_hf_bert, engines=["onnx"], repeats=1, tokens_per_batch=64,
                                reference=False), progress=False)
    assert (default.tokens_per_batch, lifted.tokens_per_batch, tight.tokens_per_batch) == (CPU_TOKENS_PER_BATCH, None, 64)
    # 10 docs of up to 64 tokens: one text per forward under a 64-token cap, batches of 4 otherwise
    assert tight.measurements[0].timed_batches == 10 and lifted.measurements[0].timed_batches == 3
    payload = default.to_dict()
    assert payload["best_vs_best_reference"] == pytest.approx(
        payload["best"]["docs_per_s"] / payload["best_reference"]["docs_per_s"], rel=1e-2)


def test_negative_token_cap_is_bad_input(tiny_hf_bert):
    from embedkit.errors import UserError

    with pytest.raises(UserError, match="tokens-per-batch"):
        run_bench(_settings(tiny_hf_bert, tokens_per_batch=-1), progress=False)

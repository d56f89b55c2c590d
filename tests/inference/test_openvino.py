"""The openvino engine: the onnx engine's export compiled in fp32 or bf16, checked per precision, cached compiled."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from inference_support import DEMO_DATA, MIXED_TEXTS

from embedkit.errors import UserError
from embedkit.inference import Encoder, ExportMismatchError, ort
from embedkit.inference import engines as engines_mod
from embedkit.inference import openvino as openvino_mod
from embedkit.inference.engines import resolve_engine, resolve_precision
from embedkit.inference.export import EXPORT_DIRNAME, META_FILE, cached_export, row_cosines

NO_BF16 = frozenset({"avx512f", "avx512_vnni"})
BF16 = frozenset({"avx512f", "avx512_bf16"})
needs_bf16_cpu = pytest.mark.skipif(engines_mod.bf16_cpu_flag() is None, reason="this CPU has no bf16 instructions")


def _fake_cpu(monkeypatch, flags: frozenset[str]) -> None:
    monkeypatch.setattr(engines_mod, "cpu_flags", lambda: flags)


def _dygraph(model_dir) -> np.ndarray:
    return Encoder.from_model_dir(model_dir, engine="paddle").encode_passages(MIXED_TEXTS)


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=needs_bf16_cpu)])
def test_openvino_matches_dygraph_and_records_its_check(tiny_bert, precision):
    encoder = Encoder.from_model_dir(tiny_bert, engine="openvino", precision=precision)
    assert (encoder.engine, encoder.precision) == ("openvino", precision)
    got, want = encoder.encode_passages(MIXED_TEXTS), _dygraph(tiny_bert)
    if precision == "fp32":
        assert np.abs(got - want).max() <= 1e-4
    else:
        assert row_cosines(got, want).min() >= 0.9999
    location = encoder.exports["shared"].path
    assert location == tiny_bert / EXPORT_DIRNAME / f"openvino-{precision}-shared"
    meta = json.loads((location / META_FILE).read_text())
    check = json.loads((location / openvino_mod.CHECK_FILE).read_text())
    assert meta["key"]["precision"] == check["precision"] == precision
    assert meta["key"]["source"]["engine"] == "onnx" and meta["key"]["source"]["precision"] == "fp32"
    assert check["max_abs_diff_vs_dygraph"] == meta["max_abs_diff_vs_dygraph"]
    bar = {"fp32": ("tolerance", 1e-4), "bf16": ("cosine_floor", 0.9999)}[precision]
    assert meta[bar[0]] == bar[1] and meta["min_cosine_vs_dygraph"] >= 0.9999
    assert cached_export(location, meta["key"], openvino_mod.FILES)


def test_openvino_compiles_the_onnx_engines_export_and_leaves_its_records_valid(tiny_bert):
    onnx = Encoder.from_model_dir(tiny_bert, engine="onnx").exports["shared"]
    meta_file = onnx.path / META_FILE
    before = meta_file.read_bytes()
    Encoder.from_model_dir(tiny_bert, engine="openvino", precision="fp32")
    assert sorted(p.name for p in (tiny_bert / EXPORT_DIRNAME).iterdir()) == [
        "onnx-shared", "openvino-fp32-shared", "paddle-inference-shared"]
    assert meta_file.read_bytes() == before  # not rebuilt, not rewritten
    assert cached_export(onnx.path, json.loads(before)["key"], ort.FILES)
    assert not Encoder.from_model_dir(tiny_bert, engine="onnx").exports["shared"].built


def test_compiled_models_are_cached_under_embedkit_home_and_reused(tiny_bert, embedkit_home):
    first = Encoder.from_model_dir(tiny_bert, engine="openvino", precision="fp32")
    assert first.exports["shared"].built
    blobs = {p.name: p.stat().st_mtime_ns for p in (embedkit_home / "openvino").iterdir()}
    assert blobs and all(name.endswith(".blob") for name in blobs)
    second = Encoder.from_model_dir(tiny_bert, engine="openvino", precision="fp32")
    assert not second.exports["shared"].built
    assert {p.name: p.stat().st_mtime_ns for p in (embedkit_home / "openvino").iterdir()} == blobs
    np.testing.assert_array_equal(first.encode_passages(MIXED_TEXTS), second.encode_passages(MIXED_TEXTS))


def test_threads_reach_the_compiled_model(monkeypatch):
    assert openvino_mod.compile_config("bf16", 1)["INFERENCE_NUM_THREADS"] == 1
    monkeypatch.setattr(openvino_mod, "cpu_cores", lambda: 3)
    config = openvino_mod.compile_config("fp32")
    assert config["INFERENCE_NUM_THREADS"] == 3 and config["INFERENCE_PRECISION_HINT"] == "f32"


def test_a_compiled_model_that_differs_from_dygraph_is_refused_and_not_recorded(tiny_bert, monkeypatch):
    real = openvino_mod.openvino_forward

    def drifting(onnx_file, precision, threads=None):
        forward = real(onnx_file, precision, threads)
        return lambda batch: forward(batch) + np.linspace(0, 1, forward(batch).shape[1], dtype=np.float32)

    monkeypatch.setattr(openvino_mod, "openvino_forward", drifting)
    with pytest.raises(ExportMismatchError, match="openvino fp32"):
        Encoder.from_model_dir(tiny_bert, engine="openvino", precision="fp32")
    assert not (tiny_bert / EXPORT_DIRNAME / "openvino-fp32-shared").exists()


def test_bf16_on_a_cpu_without_bf16_is_refused_naming_the_feature(tiny_bert, run_cli, monkeypatch, tmp_path):
    _fake_cpu(monkeypatch, NO_BF16)
    eval_run = run_cli("eval", tiny_bert, "--data", DEMO_DATA, "--engine", "openvino", "--precision", "bf16")
    texts = tmp_path / "texts.txt"
    texts.write_text("cells divide\n", encoding="utf-8")
    encode_run = run_cli("encode", tiny_bert, "--input", texts, "--side", "query", "--output", tmp_path / "v.npy",
                         "--precision", "bf16")
    for result in (eval_run, encode_run):
        assert result.exit_code == 2 and "Traceback" not in result.stderr
        assert "--precision" in result.stderr and "avx512_bf16" in result.stderr.replace("\n", "")
    assert not (tiny_bert / EXPORT_DIRNAME).exists()  # refused before anything was built
    with pytest.raises(UserError, match="fp32 only"):
        resolve_precision("onnx", "bf16")


def test_auto_picks_openvino_bf16_on_a_bf16_cpu_and_the_fp32_winner_elsewhere(monkeypatch):
    _fake_cpu(monkeypatch, BF16)
    assert (resolve_engine("auto", "cpu"), resolve_precision("openvino", "auto")) == ("openvino", "bf16")
    assert resolve_precision("onnx", "auto") == "fp32"
    _fake_cpu(monkeypatch, NO_BF16)
    assert (resolve_engine("auto", "cpu"), resolve_precision("openvino", "auto")) == ("openvino", "fp32")
    assert resolve_engine("auto", "gpu") == "paddle-inference"
    monkeypatch.setattr(engines_mod, "openvino_available", lambda: False)
    assert resolve_engine("auto", "cpu") == "onnx"


def test_auto_says_what_it_picked_and_why_at_v(tiny_bert, run_cli, monkeypatch):
    _fake_cpu(monkeypatch, NO_BF16)
    result = run_cli("eval", tiny_bert, "--data", DEMO_DATA, "-v", "--json")
    assert result.exit_code == 0, result.stderr
    said = result.stderr.replace("\n", " ")
    assert "engine auto: openvino" in said and "precision fp32 (auto: fp32, this CPU has no bf16" in said
    payload = json.loads(result.stdout)
    assert (payload["engine"], payload["precision"]) == ("openvino", "fp32")


def test_openvino_runs_on_cpu_only():
    with pytest.raises(UserError, match="CPU only"):
        resolve_engine("openvino", "gpu")


@needs_bf16_cpu
def test_a_bf16_encoding_does_not_reuse_fp32_vectors(tiny_bert, run_cli):
    def evaluate(precision: str) -> dict:
        result = run_cli("eval", tiny_bert, "--data", DEMO_DATA, "--engine", "openvino", "--precision", precision,
                         "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    fp32, bf16, fp32_again = evaluate("fp32"), evaluate("bf16"), evaluate("fp32")
    assert fp32["precision"] == "fp32" and bf16["precision"] == "bf16"
    assert bf16["datasets"][0]["cached"] == {"queries": False, "corpus": False}
    assert fp32_again["datasets"][0]["cached"] == {"queries": True, "corpus": True}
    assert bf16["fingerprint"] != fp32["fingerprint"] == fp32_again["fingerprint"]


def test_loading_and_encoding_never_reach_the_network(tiny_bert, monkeypatch):
    """`import openvino` imports ovc, whose telemetry embedkit leaves on ovc's no-op stub (a fresh process:
    tests/cli/test_cli_library_logs.py)."""
    def refuse(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    encoder = Encoder.from_model_dir(tiny_bert, engine="openvino", precision="fp32")
    assert encoder.encode_queries(["cells divide"]).shape == (1, encoder.dim)
    import openvino.tools.ovc.telemetry_utils as telemetry

    assert telemetry.tm.__name__ == "openvino.tools.ovc.telemetry_stub"


def test_a_model_that_cannot_be_traced_is_a_clear_error_under_openvino(tmp_path):
    """NV-Embed's Mistral (under auto it falls back to dygraph: test_decoder_models.py)."""
    from embedkit.modeling.tiny import build_tiny_nv_embed

    model = build_tiny_nv_embed(tmp_path / "nv-embed", MIXED_TEXTS)
    with pytest.raises(UserError, match="static graph"):
        Encoder.from_model_dir(model, engine="openvino", precision="fp32")


def test_every_engine_and_precision_has_a_cpu_token_cap():
    from embedkit.inference.engines import ENGINE_PRECISIONS
    from embedkit.inference.runtime import CPU_TOKENS_PER_BATCH_BY_ENGINE

    assert set(CPU_TOKENS_PER_BATCH_BY_ENGINE) == {(e, p) for e, ps in ENGINE_PRECISIONS.items() for p in ps}

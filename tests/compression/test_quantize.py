"""`embedkit quantize` on tiny models: the quantized dirs keep each embedding's direction, load and evaluate like
any model, carry their record into the embedding identity, and what cannot work is refused with exit 2."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from prune_support import demo_texts, write_beir

import embedkit
from embedkit.compression.quantization import QuantizeRequest, quantize
from embedkit.errors import UserError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from inference_support import build_tiny_qwen2  # noqa: E402

TEXTS = ["a", "short query about cells", *demo_texts(10)]
FLOORS = {"int8": 0.99, "weight_only_int8": 0.99, "weight_only_int4": 0.97}


@pytest.fixture(scope="module")
def quant_templates(tmp_path_factory) -> dict[str, Path]:
    """Widths int4 groups of 64 divide (hidden 64, intermediate 128), as real models' do."""
    from embedkit.modeling.spec import EmbedderSpec
    from embedkit.modeling.tiny import build_tiny_bert, build_tiny_qwen3

    root = tmp_path_factory.mktemp("quant-models")
    bert = build_tiny_bert(root / "bert", demo_texts(), hidden=64, heads=2)
    EmbedderSpec(pooling="mean").save(bert)
    return {"bert": bert, "qwen3": build_tiny_qwen3(root / "qwen3", demo_texts()),
            "qwen2": build_tiny_qwen2(root / "qwen2", hidden=64, intermediate=128)}


@pytest.fixture
def quant_models(quant_templates, tmp_path) -> dict[str, Path]:
    return {name: Path(shutil.copytree(path, tmp_path / "models" / name)) for name, path in quant_templates.items()}


@pytest.fixture
def beir(tmp_path) -> Path:
    return write_beir(tmp_path / "beir", n_docs=24)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _min_cosine(quantized: Path, source: Path) -> float:
    got, want = embedkit.load(quantized), embedkit.load(source, engine="onnx")
    return float(min(_cosines(got.encode_passages(TEXTS), want.encode_passages(TEXTS)).min(),
                     _cosines(got.encode_queries(TEXTS), want.encode_queries(TEXTS)).min()))


@pytest.mark.parametrize("family", ["bert", "qwen3", "qwen2"])
@pytest.mark.parametrize("quant_type", ["int8", "weight_only_int8", "weight_only_int4"])
def test_nncf_quantized_models_keep_every_embeddings_direction(quant_models, beir, tmp_path, family, quant_type):
    source = quant_models[family]
    out = tmp_path / f"{family}-{quant_type}"
    result = quantize(QuantizeRequest(model=source, output=out, quant_type=quant_type, group_size=64,
                                      calibration=beir if quant_type == "int8" else None, calibration_samples=32))
    assert result.engine == "openvino" and (out / "openvino_model.xml").is_file()
    assert not list(out.glob("*.safetensors")) and not list(out.glob("*.pdparams"))
    if family != "qwen2":  # the exported PaddleNLP decoder carries a rotary table as big as this tiny model's weights
        assert result.size_bytes_after < result.size_bytes_before
    assert _min_cosine(out, source) >= FLOORS[quant_type]
    record = json.loads((out / "embedkit.json").read_text())["quantization"]
    assert record["type"] == quant_type and record["engine"] == "openvino"
    assert record["group_size"] == (64 if quant_type == "weight_only_int4" else None)
    assert (record["calibration"] is not None) == (quant_type == "int8")


@pytest.mark.parametrize("calibrated", [True, False])
def test_onnx_runtime_int8_static_and_dynamic(quant_models, beir, tmp_path, calibrated):
    source = quant_models["bert"]
    out = tmp_path / "ort"
    result = quantize(QuantizeRequest(model=source, output=out, quant_type="int8", engine="onnx",
                                      calibration=beir if calibrated else None, calibration_samples=32))
    assert (out / "model.onnx").is_file() and result.quantization["method"].endswith(
        "quantize_static QDQ, MinMax" if calibrated else "quantize_dynamic")
    loaded = embedkit.load(out)
    assert loaded.engine == "onnx"
    assert _min_cosine(out, source) >= 0.99


def test_the_quantized_dir_has_its_own_identity_and_round_trips_through_eval_export_and_bench(
        quant_models, beir, tmp_path, run_cli):
    source = quant_models["bert"]
    out = tmp_path / "w8"
    result = run_cli("quantize", source, "--quant-type", "weight_only_int8", "--output", out, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["quantization"]["type"] == "weight_only_int8"
    quantized, original = embedkit.load(out), embedkit.load(source, engine="openvino")
    assert quantized.fingerprint != original.fingerprint  # never served from the source's cached vectors
    result = run_cli("eval", out, "--data", beir, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["engine"] == "openvino" and report["datasets"][0]["metrics"]["ndcg_at_10"] > 0
    exported = tmp_path / "exported"
    result = run_cli("export", out, "--format", "openvino", "--output", exported)
    assert result.exit_code == 0, result.stderr
    assert embedkit.load(exported).fingerprint == quantized.fingerprint
    result = run_cli("export", out, "--format", "sentence-transformers", "--output", tmp_path / "st")
    assert result.exit_code == 2 and "no weights for torch" in result.stderr
    result = run_cli("bench", source, "--compare", out, "--data", beir, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["variants"]
    assert [row["model"] for row in rows] == [str(source), str(out)]
    assert rows[1]["size_bytes"] < rows[0]["size_bytes"] and all(row["peak_rss_mib"] > 50 for row in rows)
    assert rows[0]["delta"]["ndcg_at_10"] == 0


def test_export_openvino_writes_a_checked_ir_serving_dir(quant_models, tmp_path, run_cli):
    source = quant_models["bert"]
    out = tmp_path / "ir"
    result = run_cli("export", source, "--format", "openvino", "--output", out, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["check"]["towers"]["shared"]["max_abs_diff_vs_dygraph"] <= 1e-4
    served, original = embedkit.load(out, precision="fp32"), embedkit.load(source, engine="onnx")
    assert served.engine == "openvino"
    np.testing.assert_allclose(served.encode_passages(TEXTS), original.encode_passages(TEXTS), atol=1e-4)
    with pytest.raises(UserError, match="runs on openvino only"):
        embedkit.load(out, engine="onnx")


def test_eval_quant_type_quantizes_once_into_the_cache_and_requantizes_a_damaged_entry(
        quant_models, beir, run_cli, tmp_path):
    source = quant_models["bert"]
    first = run_cli("eval", source, "--data", beir, "--quant-type", "int8", "--json", "-v")
    assert first.exit_code == 0, first.stderr
    assert "NNCF int8 quantization" in first.stderr
    second = run_cli("eval", source, "--data", beir, "--quant-type", "int8", "--json", "-v")
    assert second.exit_code == 0 and "quantized before" in second.stderr
    assert json.loads(second.stdout)["fingerprint"] == json.loads(first.stdout)["fingerprint"]
    entry = next((Path(embedkit.paths.home()) / "quantized").iterdir())
    with (entry / "openvino_model.bin").open("ab") as graph:
        graph.write(b"\0")
    third = run_cli("eval", source, "--data", beir, "--quant-type", "int8", "--json", "-v")
    assert third.exit_code == 0 and "quantizing again" in third.stderr


def test_what_cannot_work_is_refused_with_exit_2(quant_models, beir, tmp_path, run_cli):
    bert = quant_models["bert"]

    def refused(*args: object) -> str:
        result = run_cli("quantize", *args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        return result.stderr

    assert "on Paddle use weight_only" in refused(bert, "--quant-type", "int8", "--engine", "paddle",
                                                  "--output", tmp_path / "a")
    assert "needs a CUDA GPU" in refused(bert, "--quant-type", "weight_only_int8", "--engine", "paddle",
                                         "--output", tmp_path / "b")
    assert "pass --calibration" in refused(bert, "--quant-type", "int8", "--output", tmp_path / "c")
    assert "used by int8 only" in refused(bert, "--quant-type", "weight_only_int8", "--calibration", beir,
                                          "--output", tmp_path / "d")
    assert "use --engine openvino" in refused(bert, "--quant-type", "weight_only_int4", "--engine", "onnx",
                                              "--output", tmp_path / "e")
    assert "outside the model directory" in refused(bert, "--quant-type", "weight_only_int8",
                                                    "--output", bert / "inside")
    assert "--group-size must be 64 or 128" in refused(bert, "--quant-type", "weight_only_int4", "--group-size",
                                                        "32", "--output", tmp_path / "f")
    narrow = build_tiny_qwen2(tmp_path / "narrow")  # hidden 32: no group of 64 fits
    assert "does not divide the model's hidden_size 32" in refused(
        narrow, "--quant-type", "weight_only_int4", "--group-size", "64", "--output", tmp_path / "g")
    done = tmp_path / "done"
    assert run_cli("quantize", bert, "--quant-type", "weight_only_int8", "--output", done).exit_code == 0
    assert "already quantized (weight_only_int8, openvino)" in refused(done, "--quant-type", "weight_only_int4",
                                                                       "--output", tmp_path / "h")
    assert not (tmp_path / "a").exists() and not (tmp_path / "h").exists()


def test_int8_on_a_model_without_an_export_is_refused(quant_models, beir, tmp_path, run_cli, monkeypatch):
    """A model paddle.jit cannot trace has no graph to quantize (the trace failure is simulated)."""
    from embedkit.inference import export, runtime

    def untraceable(*args, **kwargs):
        raise export.ExportUnsupportedError("this model cannot be exported to a static graph (for the test)")

    monkeypatch.setattr(runtime, "save_inference_model", untraceable)
    result = run_cli("quantize", quant_models["qwen2"], "--quant-type", "int8", "--calibration", beir,
                     "--output", tmp_path / "q")
    assert result.exit_code == 2 and "quantizes the model's exported graph" in result.stderr


def test_a_paddle_weight_only_model_is_refused_on_a_cpu_build(quant_models):
    from embedkit.modeling.spec import read_spec

    model = quant_models["bert"]
    spec = read_spec(model)
    spec.quantization = {"type": "weight_only_int8", "engine": "paddle", "group_size": None}
    spec.save(model)
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        embedkit.load(model, engine="paddle").encode_passages(["x"])


def test_mteb_runs_on_a_quantized_model_offline(quant_models, run_cli, tmp_path, monkeypatch):
    from prune_support import DEMO_DATA

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    args = ("eval", quant_models["bert"], "--data", DEMO_DATA, "--quant-type", "weight_only_int8", "--json")
    ours = run_cli(*args)
    assert ours.exit_code == 0, ours.stderr
    result = run_cli(*args, "--mteb", "SciFact", "--output", tmp_path / "mteb")
    assert result.exit_code == 0, result.stderr
    (task,) = json.loads(result.stdout)["tasks"]
    want = json.loads(ours.stdout)["datasets"][0]["metrics"]["ndcg_at_10"]
    assert task["scores"]["ndcg_at_10"] == pytest.approx(want, abs=2e-5)


def test_the_python_api_quantizes_like_the_command(quant_models, tmp_path):
    result = embedkit.quantize(quant_models["bert"], "weight_only_int4", tmp_path / "api", group_size=64)
    assert result.quantization["group_size"] == 64 and Path(result.output) == (tmp_path / "api").resolve()
    assert embedkit.load(result.output).encode_queries(["a claim"]).shape == (1, 64)


def test_bench_compare_with_a_missing_variant_is_a_user_error(quant_models, beir, tmp_path, run_cli):
    result = run_cli("bench", quant_models["bert"], "--compare", tmp_path / "missing", "--data", beir)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "evaluating missing failed (exit 2)" in result.stderr and "model directory not found" in result.stderr

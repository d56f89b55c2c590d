"""`embedkit export --format onnx`: a serving dir (graph, tokenizer, embedkit.json) that load/eval/bench accept."""

from __future__ import annotations

import json

import numpy as np
import pytest
from inference_support import demo_texts

import embedkit
from embedkit.errors import UserError

TEXTS = ["a", "short query about cells", *demo_texts(5)]


@pytest.fixture
def onnx_dir(bert_with_spec, tmp_path, run_cli):
    source = bert_with_spec(pooling="cls", query_instruction="query: ")
    out = tmp_path / "served"
    result = run_cli("export", source, "--format", "onnx", "--output", out, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == "onnx" and report["check"]["towers"]["shared"]["max_abs_diff_vs_dygraph"] <= 1e-4
    return source, out


def test_the_serving_dir_holds_the_graph_and_no_weights_and_encodes_like_its_source(onnx_dir):
    source, out = onnx_dir
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "export.json", "config.json", "embedkit.json", "README.md", "tokenizer.json"} <= names
    assert not names & {"model.safetensors", "model_state.pdparams"}
    served, original = embedkit.load(out), embedkit.load(source, engine="onnx")
    assert served.engine == "onnx" and served.fingerprint == original.fingerprint  # same graph, same identity
    np.testing.assert_allclose(served.encode_queries(TEXTS), original.encode_queries(TEXTS), atol=1e-6)
    np.testing.assert_allclose(served.encode_passages(TEXTS), original.encode_passages(TEXTS), atol=1e-6)


def test_other_engines_a_changed_graph_and_a_different_pooling_are_refused(onnx_dir):
    _, out = onnx_dir
    with pytest.raises(UserError, match="an ONNX graph, which runs on onnx only"):
        embedkit.load(out, engine="paddle")
    with pytest.raises(UserError, match="computes pooling=cls"):
        embedkit.load(out, pooling="mean")
    with (out / "model.onnx").open("ab") as graph:
        graph.write(b"\0")
    with pytest.raises(UserError, match="does not match its record"):
        embedkit.load(out)


def test_eval_and_bench_accept_the_serving_dir(onnx_dir, tmp_path, run_cli):
    from eval_like import write_small_beir

    _, out = onnx_dir
    data = write_small_beir(tmp_path / "beir", demo_texts(12))
    result = run_cli("eval", out, "--data", data, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["datasets"][0]["metrics"]["ndcg_at_10"] > 0
    result = run_cli("bench", out, "--data", data, "--docs", "4", "--batch-size", "4", "--repeats", "1", "--json")
    assert result.exit_code == 0, result.stderr
    bench = json.loads(result.stdout)
    assert [m["runner"] for m in bench["measurements"]] == ["onnx"]


def test_a_decoder_exports_to_an_onnx_serving_dir(tiny_qwen2, tmp_path, run_cli):
    result = run_cli("export", tiny_qwen2, "--format", "onnx", "--output", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    want = embedkit.load(tiny_qwen2, engine="paddle").encode_passages(TEXTS)
    assert np.abs(embedkit.load(tmp_path / "out").encode_passages(TEXTS) - want).max() <= 1e-4


def test_a_model_that_has_no_onnx_graph_is_refused_with_the_reason(tmp_path, run_cli):
    from embedkit.modeling.tiny import build_tiny_nv_embed

    model = build_tiny_nv_embed(tmp_path / "nv-embed", demo_texts())  # its Mistral cannot be traced
    result = run_cli("export", model, "--format", "onnx", "--output", tmp_path / "out")
    assert result.exit_code == 2 and "cannot be exported to a static graph" in " ".join(result.stderr.split())
    assert not (tmp_path / "out").exists()


def test_serve_answers_from_the_serving_dir(onnx_dir):
    from fastapi.testclient import TestClient

    from embedkit.serving import Limits, create_app
    from embedkit.serving.server import served_model

    source, out = onnx_dir
    app = create_app(served_model(embedkit.load(out), "served"), Limits())
    with TestClient(app) as client:
        body = client.post("/v1/embeddings", json={"input": TEXTS, "input_type": "query"}).json()
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, embedkit.load(source, engine="onnx").encode_queries(TEXTS), atol=1e-6)

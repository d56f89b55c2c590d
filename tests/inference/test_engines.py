"""Every engine gives the dygraph model's embeddings; exports are cached, keyed, checked and never pip-install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from inference_support import MIXED_TEXTS

from embedkit.errors import UserError
from embedkit.inference import Encoder, ExportMismatchError, resolve_engine
from embedkit.inference import engines as engines_mod
from embedkit.inference.export import EXPORT_DIRNAME, META_FILE
from embedkit.inference.onnx_convert import EXIT_SPAWN_ATTEMPT
from embedkit.inference.ort import OnnxConversionError, convert_to_onnx

EXPORTED = ["paddle-inference", "onnx"]


def _dygraph(model_dir, overrides=None):
    return Encoder.from_model_dir(model_dir, engine="paddle", overrides=overrides, batch_size=4)


@pytest.mark.parametrize("engine", EXPORTED)
@pytest.mark.parametrize(("pooling", "normalized", "padding_side"), [
    ("mean", True, "right"), ("mean", False, "right"), ("cls", True, "right"), ("cls", False, "right"),
    ("last", True, "right"), ("last", False, "left"),
])
def test_exported_engine_equals_dygraph(tiny_bert, engine, pooling, normalized, padding_side):
    overrides = {"pooling": pooling, "normalized": normalized, "padding_side": padding_side, "passage_max_len": 64}
    want = _dygraph(tiny_bert, overrides).encode_passages(MIXED_TEXTS)
    encoder = Encoder.from_model_dir(tiny_bert, engine=engine, overrides=overrides, batch_size=4)
    got = encoder.encode_passages(MIXED_TEXTS)
    assert encoder.engine == engine
    assert got.shape == want.shape == (len(MIXED_TEXTS), 32)
    assert np.abs(got - want).max() <= 1e-4
    norms = np.linalg.norm(got, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == normalized


def test_second_construction_reuses_the_export(tiny_bert, monkeypatch):
    first = Encoder.from_model_dir(tiny_bert, engine="onnx")
    export = first.exports["shared"]
    assert export.built and export.path == tiny_bert / EXPORT_DIRNAME / "onnx-shared"
    stamp = (export.path / META_FILE).stat().st_mtime_ns

    from embedkit.inference import runtime

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(runtime, "save_inference_model", no_export)
    monkeypatch.setattr(runtime.ort, "convert_to_onnx", no_export)
    shutil.rmtree(tiny_bert / EXPORT_DIRNAME / "paddle-inference-shared")  # only needed to build the ONNX graph
    second = Encoder.from_model_dir(tiny_bert, engine="onnx")
    assert not second.exports["shared"].built and second.exports["shared"].seconds == 0
    assert (export.path / META_FILE).stat().st_mtime_ns == stamp
    assert np.array_equal(first.encode_passages(MIXED_TEXTS), second.encode_passages(MIXED_TEXTS))


def test_new_weights_rebuild_the_export(tiny_bert):
    from embedkit.modeling.tiny import build_tiny_bert

    before = Encoder.from_model_dir(tiny_bert, engine="paddle-inference").encode_passages(MIXED_TEXTS)
    build_tiny_bert(tiny_bert, MIXED_TEXTS, seed=7)  # retrained in place: same path, other weights
    encoder = Encoder.from_model_dir(tiny_bert, engine="paddle-inference")
    assert encoder.exports["shared"].built
    after = encoder.encode_passages(MIXED_TEXTS)
    assert np.abs(after - _dygraph(tiny_bert).encode_passages(MIXED_TEXTS)).max() <= 1e-4
    assert np.abs(after - before).max() > 1e-3


def test_read_only_model_dir_exports_to_the_cache(tiny_bert, read_only_dir, embedkit_home):
    read_only_dir(tiny_bert)
    encoder = Encoder.from_model_dir(tiny_bert, engine="onnx")
    path = encoder.exports["shared"].path
    assert path.is_relative_to(embedkit_home / "exports") and path.name == "onnx-shared"
    assert not (tiny_bert / EXPORT_DIRNAME).exists()
    assert np.abs(encoder.encode_passages(MIXED_TEXTS) - _dygraph(tiny_bert).encode_passages(MIXED_TEXTS)).max() <= 1e-4
    assert not Encoder.from_model_dir(tiny_bert, engine="onnx").exports["shared"].built


def test_auto_resolution(monkeypatch, tiny_bert):
    assert resolve_engine("auto", "cpu") == "openvino"
    assert resolve_engine("auto", "gpu") == "paddle-inference"
    monkeypatch.setattr(engines_mod, "openvino_available", lambda: False)
    assert resolve_engine("auto", "cpu") == "onnx"
    assert Encoder.from_model_dir(tiny_bert).engine == "onnx"
    monkeypatch.setattr(engines_mod, "onnx_available", lambda: False)
    assert resolve_engine("auto", "cpu") == "paddle-inference"
    with pytest.raises(UserError, match="onnxruntime"):
        resolve_engine("onnx", "cpu")
    with pytest.raises(UserError, match="unknown engine"):
        resolve_engine("tensorflow", "cpu")


@pytest.mark.parametrize("engine", EXPORTED)
def test_two_tower_model_exports_each_tower(two_tower_model, engine):
    dygraph = _dygraph(two_tower_model)
    encoder = Encoder.from_model_dir(two_tower_model, engine=engine)
    assert sorted(encoder.exports) == ["passage", "query"]
    assert {e.path.name for e in encoder.exports.values()} == {f"{engine}-query", f"{engine}-passage"}
    queries, passages = encoder.encode_queries(MIXED_TEXTS), encoder.encode_passages(MIXED_TEXTS)
    assert np.abs(queries - dygraph.encode_queries(MIXED_TEXTS)).max() <= 1e-4
    assert np.abs(passages - dygraph.encode_passages(MIXED_TEXTS)).max() <= 1e-4
    assert np.abs(queries - passages).max() > 1e-2  # two different towers, not one exported twice


def test_onnx_export_starts_only_the_converter_and_never_pip(tiny_bert, monkeypatch, capfd):
    real_popen = subprocess.Popen
    commands = []

    def recording_popen(args, *rest, **kwargs):
        commands.append(list(map(str, args)))
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    monkeypatch.delenv("POLYGRAPHY_AUTOINSTALL_DEPS", raising=False)
    encoder = Encoder.from_model_dir(tiny_bert, engine="onnx")
    assert encoder.exports["shared"].built
    assert [c[1:3] for c in commands] == [["-m", "embedkit.inference.onnx_convert"]]
    assert not any("pip" in part for c in commands for part in c)
    assert os.environ.get("POLYGRAPHY_AUTOINSTALL_DEPS", "0") == "0"
    assert capfd.readouterr().out == ""  # paddle2onnx's chatter stays off stdout, where --json output goes


def test_the_converter_refuses_paddle2onnx_pip_installs(tiny_bert, tmp_path):
    """paddle2onnx's default optimiser (polygraphy) tries `pip install` here; the converter must catch it.

    This is what the test above relies on: the child process cannot be patched from here, so it guards itself.
    """
    graph = Encoder.from_model_dir(tiny_bert, engine="paddle-inference").exports["shared"].path
    run = subprocess.run([sys.executable, "-m", "embedkit.inference.onnx_convert", str(graph / "model.json"),
                          str(graph / "model.pdiparams"), str(tmp_path / "m.onnx"), "--opset", "14",
                          "--optimize-tool", "polygraphy"], capture_output=True, text=True)
    assert run.returncode == EXIT_SPAWN_ATTEMPT, run.stderr[-2000:]
    assert "pip" in run.stderr and "refused" in run.stderr


def test_unconvertible_graph_is_a_clear_error_not_a_crash(tmp_path):
    import paddle

    class AdvancedIndexing(paddle.nn.Layer):  # exports a broadcast_tensors op, which paddle2onnx lacks
        def forward(self, x):
            batch = paddle.arange(x.shape[0], dtype="int64")
            return x.astype("float32").unsqueeze(-1)[batch, x.argmax(axis=1)]

    spec = [paddle.static.InputSpec([None, None], "int64", "x")]
    paddle.jit.save(paddle.jit.to_static(AdvancedIndexing(), input_spec=spec, full_graph=True), str(tmp_path / "model"))
    with pytest.raises(OnnxConversionError, match="operators it does not support"):
        convert_to_onnx(tmp_path / "model.json", tmp_path / "model.pdiparams", tmp_path / "m.onnx", 14, tmp_path)


def test_auto_falls_back_to_paddle_inference_when_onnx_conversion_fails(tiny_bert, monkeypatch):
    from embedkit.inference import runtime

    def refuse(*args, **kwargs):
        raise OnnxConversionError("paddle2onnx cannot convert this model", tiny_bert)

    monkeypatch.setattr(runtime.ort, "convert_to_onnx", refuse)
    assert Encoder.from_model_dir(tiny_bert, engine="auto").engine == "paddle-inference"
    with pytest.raises(OnnxConversionError):
        Encoder.from_model_dir(tiny_bert, engine="onnx")


def test_an_export_that_differs_from_dygraph_is_refused_and_not_cached(tiny_bert, monkeypatch):
    from embedkit.inference import runtime

    real = runtime.paddle_inference.paddle_inference_forward

    def skewed(*args, **kwargs):
        forward = real(*args, **kwargs)
        return lambda batch: forward(batch) + 1e-3

    monkeypatch.setattr(runtime.paddle_inference, "paddle_inference_forward", skewed)
    with pytest.raises(ExportMismatchError, match="differs from the dygraph model by 0.001"):
        Encoder.from_model_dir(tiny_bert, engine="paddle-inference")
    assert not (tiny_bert / EXPORT_DIRNAME / "paddle-inference-shared").exists()


def test_export_metadata_records_the_check(tiny_bert):
    export = Encoder.from_model_dir(tiny_bert, engine="paddle-inference").exports["shared"]
    meta = json.loads((export.path / META_FILE).read_text())
    assert meta["key"]["engine"] == "paddle-inference" and meta["key"]["pooling"] == "mean"
    assert 0 <= meta["max_abs_diff_vs_dygraph"] <= 1e-4


def test_tensorrt_needs_paddle_inference_on_a_gpu(tiny_bert):
    with pytest.raises(UserError, match="TensorRT"):
        Encoder.from_model_dir(tiny_bert, engine="paddle-inference", device="cpu", tensorrt=True)


def test_onnx_graph_fuses_attention_and_falls_back_to_the_plain_graph(tiny_bert, monkeypatch, tmp_path):
    export = Encoder.from_model_dir(tiny_bert, engine="onnx").exports["shared"]
    meta = json.loads((export.path / META_FILE).read_text())
    assert meta["fused"]["Attention"] == 2  # one per layer of the tiny BERT
    assert not (export.path / "converted.onnx").exists()

    from embedkit.inference import runtime
    from embedkit.inference.onnx_fusion import FusionNotApplicable

    def not_applicable(*args, **kwargs):
        raise FusionNotApplicable("not a BERT graph")

    monkeypatch.setattr(runtime, "fuse_bert_attention", not_applicable)
    plain = Encoder.from_model_dir(tiny_bert, engine="onnx", overrides={"pooling": "cls"})
    meta = json.loads((plain.exports["shared"].path / META_FILE).read_text())
    assert meta["fused"] is None and meta["max_abs_diff_vs_dygraph"] <= 1e-4
    want = _dygraph(tiny_bert, {"pooling": "cls"}).encode_passages(MIXED_TEXTS)
    assert np.abs(plain.encode_passages(MIXED_TEXTS) - want).max() <= 1e-4


def test_fusion_rewrite_refuses_graphs_without_the_bert_attention_layout():
    from onnx import TensorProto, helper

    from embedkit.inference.onnx_fusion import FusionNotApplicable, rewrite_to_hf_layout

    x = helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, [None, None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])
    graph = helper.make_graph([helper.make_node("Softmax", ["attention_mask"], ["y"])], "g", [x], [y])
    with pytest.raises(FusionNotApplicable):
        rewrite_to_hf_layout(helper.make_model(graph))

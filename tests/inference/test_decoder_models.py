"""Decoder-only embedders: embedkit's Qwen3 and PaddleNLP's Qwen2 and LLaMA export to a static graph with batch and
length dynamic (PaddleNLP's through `embedkit.inference.traceable`), so `auto` runs them on OpenVINO, and their
graphs match dygraph on left-padded batches of mixed lengths. A model paddle.jit still cannot trace (NV-Embed's
Mistral, PaddleNLP's Mistral) falls back to dygraph under `auto`, and asking for an exported engine is a clear
error, not a traceback."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from inference_support import DEMO_DATA, MIXED_TEXTS, demo_texts

from embedkit.inference import Encoder
from embedkit.inference.export import EXPORT_DIRNAME, META_FILE, row_cosines


@pytest.fixture(scope="module")
def decoder_templates(tmp_path_factory, tiny_qwen2_template):
    from embedkit.modeling.tiny import build_tiny_llara, build_tiny_nv_embed, build_tiny_qwen3

    root = tmp_path_factory.mktemp("decoders")
    return {"qwen2": tiny_qwen2_template, "qwen3": build_tiny_qwen3(root / "qwen3", demo_texts(200)),
            "llara": build_tiny_llara(root / "llara", demo_texts(200)),
            "nv-embed": build_tiny_nv_embed(root / "nv-embed", demo_texts(200))}


@pytest.fixture
def decoder(decoder_templates, tmp_path, request):
    """A fresh copy of the named tiny decoder, so exports beside it start empty."""
    return shutil.copytree(decoder_templates[request.param], tmp_path / request.param)


@pytest.fixture
def untraceable(decoder_templates, tmp_path):
    """NV-Embed: its Mistral computes attention shapes from Python ints, which paddle.jit cannot trace."""
    return shutil.copytree(decoder_templates["nv-embed"], tmp_path / "nv-embed")


def _both_sides(encoder: Encoder) -> np.ndarray:
    return np.concatenate([encoder.encode_queries(MIXED_TEXTS), encoder.encode_passages(MIXED_TEXTS)])


@pytest.mark.parametrize("decoder", ["qwen2", "qwen3", "llara"], indirect=True)
def test_a_decoder_exports_and_its_graph_matches_dygraph_on_left_padded_mixed_lengths(decoder):
    overrides = {"query_max_len": 96}  # room for LLARA's 36-token query prompt
    dygraph = Encoder.from_model_dir(decoder, engine="paddle", device="cpu", batch_size=4, overrides=overrides)
    assert dygraph.spec.padding_side == "left"
    want = _both_sides(dygraph)
    onnx = Encoder.from_model_dir(decoder, engine="onnx", device="cpu", batch_size=4, overrides=overrides)
    assert np.abs(_both_sides(onnx) - want).max() <= 1e-4
    for engine in ("paddle-inference", "onnx"):  # the check run on PROBE_TEXTS before first use
        meta = json.loads((decoder / EXPORT_DIRNAME / f"{engine}-shared" / META_FILE).read_text())
        assert meta["max_abs_diff_vs_dygraph"] <= 1e-4
    fp32 = Encoder.from_model_dir(decoder, engine="openvino", precision="fp32", device="cpu", batch_size=4,
                                  overrides=overrides)
    assert np.abs(_both_sides(fp32) - want).max() <= 1e-4


@pytest.mark.parametrize("decoder", ["qwen2", "qwen3"], indirect=True)
def test_auto_runs_an_exportable_decoder_on_openvino(decoder):
    auto = Encoder.from_model_dir(decoder, engine="auto", device="cpu")
    assert auto.engine == "openvino"
    floor = 0.9999 if auto.precision == "bf16" else 0.99999
    dygraph = Encoder.from_model_dir(decoder, engine="paddle", device="cpu")
    assert row_cosines(_both_sides(auto), _both_sides(dygraph)).min() >= floor


def test_auto_falls_back_to_dygraph_for_a_model_that_cannot_be_traced_and_says_why(untraceable, capsys):
    auto = Encoder.from_model_dir(untraceable, engine="auto", device="cpu")
    assert auto.engine == "paddle"
    said = " ".join(capsys.readouterr().err.split())  # rich wraps it
    assert "using paddle: this model cannot be exported to a static graph" in said
    assert "use --engine" not in said  # the advice is for an explicit engine; auto already took it
    dygraph = Encoder.from_model_dir(untraceable, engine="paddle", device="cpu")
    assert np.array_equal(auto.encode_passages(MIXED_TEXTS), dygraph.encode_passages(MIXED_TEXTS))
    assert not (untraceable / EXPORT_DIRNAME).exists()  # the failed export left nothing behind


def test_left_padding_and_last_token_pooling_ignore_the_batch(tiny_qwen2):
    encoder = Encoder.from_model_dir(tiny_qwen2, engine="paddle", device="cpu", batch_size=4)
    together = encoder.encode_queries(MIXED_TEXTS)
    alone = np.stack([encoder.encode_queries([text])[0] for text in MIXED_TEXTS])
    assert np.abs(together - alone).max() <= 1e-5
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.abs(together - encoder.encode_passages(MIXED_TEXTS)).max() > 1e-3  # the query instruction applies


def test_an_exported_engine_is_a_clear_error_for_a_model_that_cannot_be_traced(untraceable, run_cli):
    result = run_cli("eval", untraceable, "--data", DEMO_DATA, "--engine", "onnx")
    assert result.exit_code == 2
    assert f"{untraceable}: this model cannot be exported to a static graph" in " ".join(result.stderr.split())
    assert "--engine paddle" in result.stderr and "Traceback" not in result.stderr
    assert not (untraceable / EXPORT_DIRNAME).exists()


def test_eval_runs_end_to_end_on_the_exported_graph(tiny_qwen2, run_cli, tmp_path):
    result = run_cli("eval", tiny_qwen2, "--data", DEMO_DATA, "--json", "--output", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["engine"] == "openvino"
    assert 0.0 <= payload["datasets"][0]["metrics"]["ndcg_at_10"] <= 1.0
    assert (tmp_path / "out" / "run.trec").is_file()


def test_last_token_embedders_pool_the_eos_token(tiny_qwen2):
    from embedkit.modeling.tokenize import tokenize

    with_eos = Encoder.from_model_dir(tiny_qwen2, engine="paddle", device="cpu")
    without = Encoder.from_model_dir(tiny_qwen2, engine="paddle", device="cpu", overrides={"append_eos": False})
    tokenizer = with_eos.towers["shared"].tokenizer
    features = tokenize(tokenizer, MIXED_TEXTS, 16, append_eos=with_eos.spec.appends_eos())
    assert all(f["input_ids"][-1] == tokenizer.eos_token_id and len(f["input_ids"]) <= 16 for f in features)
    assert (np.abs(with_eos.encode_passages(MIXED_TEXTS) - without.encode_passages(MIXED_TEXTS)).max(axis=1) > 1e-4).all()
    assert with_eos.fingerprint != without.fingerprint  # cached embeddings of one are never served for the other


def test_an_architecture_paddlenlp_lacks_is_bad_input(tiny_qwen2, run_cli):
    config_file = tiny_qwen2 / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "model_type": "made_up", "architectures": ["MadeUpModel"]}))
    result = run_cli("eval", tiny_qwen2, "--data", DEMO_DATA)
    assert result.exit_code == 2
    assert f"{config_file}: PaddleNLP" in result.stderr and "model_type 'made_up'" in result.stderr


def test_a_lora_run_on_a_decoder_trains_then_evaluates_from_its_adapter_dir(tiny_qwen2, run_cli, tmp_path):
    run = tmp_path / "run"
    recipe = tmp_path / "qwen2-lora.yaml"
    recipe.write_text(f"""
model_name_or_path: {tiny_qwen2}
output_dir: {run}
train_data: {DEMO_DATA}
train_split: train
train_group_size: 2
query_max_len: 32
passage_max_len: 64
sentence_pooling_method: last
fine_tune_type: lora
max_steps: 4
per_device_train_batch_size: 4
learning_rate: 1.0e-3
save_steps: 2
""")
    trained = run_cli("train", "--recipe", recipe, "--json")
    assert trained.exit_code == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["global_step"] == 4 and np.isfinite(summary["final_loss"])
    assert 0 < summary["parameters"]["trainable"] < summary["parameters"]["total"]  # adapters only
    assert (run / "lora_config.json").is_file()
    assert json.loads((run / "embedkit.json").read_text())["pooling"] == "last"
    evaluated = run_cli("eval", run, "--data", DEMO_DATA, "--json")
    assert evaluated.exit_code == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["engine"] == "openvino"  # the adapter merged into an exported graph

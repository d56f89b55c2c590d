"""Decoder-only embedders (Qwen2 here): PaddleNLP's decoder LLMs do not trace to a static graph, so `auto`
encodes them in dygraph, and asking for an exported engine is a clear error, not a traceback."""

from __future__ import annotations

import numpy as np
from inference_support import DEMO_DATA, MIXED_TEXTS

from embedkit.inference import Encoder


def test_auto_falls_back_to_dygraph_and_says_why(tiny_qwen2, capsys):
    auto = Encoder.from_model_dir(tiny_qwen2, engine="auto", device="cpu")
    assert auto.engine == "paddle"
    said = " ".join(capsys.readouterr().err.split())  # rich wraps it
    assert "using paddle: this model cannot be exported to a static graph" in said
    assert "use --engine" not in said  # the advice is for an explicit engine; auto already took it
    dygraph = Encoder.from_model_dir(tiny_qwen2, engine="paddle", device="cpu")
    assert np.array_equal(auto.encode_passages(MIXED_TEXTS), dygraph.encode_passages(MIXED_TEXTS))
    assert not (tiny_qwen2 / ".embedkit-export").exists()  # the failed export left nothing behind


def test_left_padding_and_last_token_pooling_ignore_the_batch(tiny_qwen2):
    encoder = Encoder.from_model_dir(tiny_qwen2, engine="paddle", device="cpu", batch_size=4)
    together = encoder.encode_queries(MIXED_TEXTS)
    alone = np.stack([encoder.encode_queries([text])[0] for text in MIXED_TEXTS])
    assert np.abs(together - alone).max() <= 1e-5
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.abs(together - encoder.encode_passages(MIXED_TEXTS)).max() > 1e-3  # the query instruction applies


def test_an_exported_engine_is_a_clear_error(tiny_qwen2, run_cli):
    result = run_cli("eval", tiny_qwen2, "--data", DEMO_DATA, "--engine", "onnx")
    assert result.exit_code == 2
    assert f"{tiny_qwen2}: this model cannot be exported to a static graph" in result.stderr
    assert "--engine paddle" in result.stderr and "Traceback" not in result.stderr
    assert not (tiny_qwen2 / ".embedkit-export").exists()


def test_eval_runs_end_to_end_in_dygraph(tiny_qwen2, run_cli, tmp_path):
    import json

    result = run_cli("eval", tiny_qwen2, "--data", DEMO_DATA, "--json", "--output", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["engine"] == "paddle"
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
    import json

    config_file = tiny_qwen2 / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "model_type": "made_up", "architectures": ["MadeUpModel"]}))
    result = run_cli("eval", tiny_qwen2, "--data", DEMO_DATA)
    assert result.exit_code == 2
    assert f"{config_file}: PaddleNLP" in result.stderr and "model_type 'made_up'" in result.stderr


def test_a_lora_run_on_a_decoder_trains_then_evaluates_from_its_adapter_dir(tiny_qwen2, run_cli, tmp_path):
    import json

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
    assert json.loads(evaluated.stdout)["engine"] == "paddle"

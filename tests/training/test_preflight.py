"""Every recipe check runs before any work: before the model loads, data is tokenised or eval_before.json is written."""

from __future__ import annotations

import json

import pytest

from embedkit.modeling.limits import model_limits
from tests.conftest import DEMO_DATA

TINY_BERT_HIDDEN, TINY_BERT_POSITIONS = 32, 512


def _recipe(tmp_path, extra: str) -> tuple:
    run = tmp_path / "run"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model_name_or_path: tiny-bert\ntrain_data: {DEMO_DATA}\noutput_dir: {run}\n"
                      f"max_steps: 2\n{extra}eval:\n  data: {DEMO_DATA}\n")
    return recipe, run


@pytest.fixture
def no_model_loading(monkeypatch):
    """Loading the model fails the test: a check that needs it has come too late."""
    import embedkit.training.modeling

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the recipe was checked")

    monkeypatch.setattr(embedkit.training.modeling, "load_embedder_for_training", refuse)


def test_a_zero_temperature_stops_before_the_before_training_eval(run_cli, tmp_path):
    recipe, run = _recipe(tmp_path, "temperature: 0\n")

    result = run_cli("train", "--recipe", recipe)

    assert result.exit_code == 2
    assert f"{recipe}:5: temperature: must be positive, got 0" in result.stderr
    assert not (run / "eval_before.json").exists()


def test_a_zero_temperature_given_by_set_is_refused_naming_set(run_cli, tmp_path):
    recipe, run = _recipe(tmp_path, "")

    result = run_cli("train", "--recipe", recipe, "--set", "temperature=0")

    assert result.exit_code == 2 and "--set: temperature: must be positive, got 0" in result.stderr
    assert not run.exists()


@pytest.mark.parametrize("extra, line, message", [
    ("use_matryoshka: true\nmatryoshka_dims: [16, 64]\nmatryoshka_loss_weights: [1, 1]\n", 6,
     f"matryoshka_dims: 64 is larger than the model's hidden size {TINY_BERT_HIDDEN}"),
    ("passage_max_len: 600\n", 5, f"passage_max_len: 600 tokens are more than the model takes: {TINY_BERT_POSITIONS} "
                                  "(max_position_embeddings in "),
    ("query_max_len: 513\n", 5, "query_max_len: 513 tokens are more than the model takes"),
])
def test_recipes_that_do_not_fit_the_model_stop_before_it_loads(run_cli, tmp_path, no_model_loading, extra, line,
                                                                message):
    recipe, run = _recipe(tmp_path, extra)

    result = run_cli("train", "--recipe", recipe)

    assert result.exit_code == 2, result.stderr
    assert f"{recipe}:{line}: {message}" in result.stderr
    assert not (run / "eval_before.json").exists()


def test_an_eval_max_length_beyond_the_model_stops_before_it_loads(run_cli, tmp_path, no_model_loading):
    recipe, _ = _recipe(tmp_path, "")
    recipe.write_text(recipe.read_text() + "  max_length: 1024\n")

    result = run_cli("train", "--recipe", recipe)

    assert result.exit_code == 2 and f"{recipe}:7: eval.max_length: 1024 tokens are more" in result.stderr


def test_eval_refuses_a_max_length_beyond_the_model_before_encoding(run_cli, tmp_path, monkeypatch):
    import embedkit.evaluation.pipeline
    from embedkit.modeling.tiny import build_tiny_bert

    model = build_tiny_bert(tmp_path / "tiny", ["some words to make a vocabulary"], max_position=64)
    monkeypatch.setattr(embedkit.evaluation.pipeline, "evaluate", pytest.fail)

    result = run_cli("eval", model, "--data", DEMO_DATA, "--max-length", "100")

    assert result.exit_code == 2
    assert "--max-length: 100 tokens are more than the model takes: 64" in result.stderr


def _config_dir(path, **config):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("config, usable", [
    ({"model_type": "bert", "max_position_embeddings": 512, "hidden_size": 384}, 512),
    ({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1, "hidden_size": 768}, 512),
    ({"model_type": "xlm-roberta", "max_position_embeddings": 8194, "pad_token_id": 1, "hidden_size": 1024}, 8192),
    ({"model_type": "qwen2", "max_position_embeddings": 32768, "hidden_size": 896}, 32768),
    ({"model_type": "bert", "hidden_size": 8}, None),
])
def test_the_usable_length_follows_from_config_json(tmp_path, config, usable):
    limits = model_limits(_config_dir(tmp_path / "m", **config))
    assert limits.max_sequence_length == usable and limits.hidden_size == config["hidden_size"]
    too_long = limits.length_problem(100_000)
    assert too_long is None if usable is None else too_long.startswith(f"100000 tokens are more than the model takes: {usable}")
    assert limits.length_problem(usable or 1) is None


def test_two_towers_take_the_shorter_and_an_adapter_reads_its_base(tmp_path):
    two = tmp_path / "two"
    _config_dir(two / "query_model", model_type="bert", max_position_embeddings=512, hidden_size=8)
    _config_dir(two / "passage_model", model_type="bert", max_position_embeddings=256, hidden_size=8)
    (two / "embedkit.json").write_text(json.dumps({"query_model": "query_model", "passage_model": "passage_model"}))
    assert model_limits(two).max_sequence_length == 256

    base = _config_dir(tmp_path / "base", model_type="bert", max_position_embeddings=128, hidden_size=8)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "lora_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    assert model_limits(adapter).max_sequence_length == 128
    assert model_limits(tmp_path / "nothing-here") is None

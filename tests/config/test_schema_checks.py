"""Recipe values checked by the schema: each problem as `file:line: key: message`, before anything runs."""

from __future__ import annotations

import pytest
import yaml

from embedkit.config import TrainConfig, apply_overrides, load_recipe
from embedkit.config.render import recipe_to_yaml
from embedkit.errors import UserError


def _error(tmp_path, text: str) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_recipe(path, TrainConfig)
    return str(caught.value).removeprefix(f"{path}:")


@pytest.mark.parametrize("text, expected", [
    ("seed: 1\ntemperature: 0\n", "2: temperature: must be positive, got 0"),
    ("per_device_train_batch_size: 0\n", "1: per_device_train_batch_size: must be at least 1, got 0"),
    ("gradient_accumulation_steps: 0\n", "1: gradient_accumulation_steps: must be at least 1, got 0"),
    ("train_group_size: 0\n", "1: train_group_size: must be at least 1, got 0"),
    ("query_max_len: -4\n", "1: query_max_len: must be at least 1, got -4"),
    ("passage_max_len: 0\n", "1: passage_max_len: must be at least 1, got 0"),
    ("logging_steps: 0\n", "1: logging_steps: must be at least 1, got 0"),
    ("save_steps: 0\n", "1: save_steps: must be at least 1, got 0"),
    ("learning_rate: -1e-5\n", "1: learning_rate: must be positive, got -1e-05"),
    ("learning_rate: .inf\n", "1: learning_rate: must be a finite number, got inf"),
    ("distill:\n  weight: -0.5\n", "2: distill.weight: must be 0 or more, got -0.5"),
    ("distill:\n  teacher_temperature: 0\n", "2: distill.teacher_temperature: must be positive, got 0"),
    ("lora:\n  r: 0\n", "2: lora.r: must be at least 1, got 0"),
    ("icl:\n  examples_per_query: -1\n", "2: icl.examples_per_query: must be 0 or more, got -1"),
    ("icl:\n  examples_per_query: 2.5\n", "2: icl.examples_per_query: expected int, got 2.5"),
    ("icl:\n  random_count: 'yes'\n", "2: icl.random_count: expected bool, got 'yes'"),
    ("icl:\n  use_probability: 1.5\n", "2: icl.use_probability: must be at most 1.0, got 1.5"),
    ("icl:\n  use_probability: -0.1\n", "2: icl.use_probability: must be 0 or more, got -0.1"),
    ("icl:\n  example_query_max_len: 0\n", "2: icl.example_query_max_len: must be at least 1, got 0"),
    ("seed: 1\nicl:\n  k: 2\n", "3: unknown key 'icl.k'"),
    ("eval:\n  data: d\n  batch_size: 0\n", "3: eval.batch_size: must be at least 1, got 0"),
    ("eval:\n  engine: fast\n", "2: eval.engine: expected one of 'auto', 'paddle', 'paddle-inference', 'onnx'"),
    ("matryoshka_dims: [64, 0]\n", "1: matryoshka_dims[1]: must be positive, got 0"),
    ("matryoshka_dims: [64, 64]\n", "1: matryoshka_dims: 64 listed more than once"),
    ("matryoshka_loss_weights: [1.0, 0.0, 1.0, 1.0, 1.0]\n", "1: matryoshka_loss_weights[1]: must be positive, got 0.0"),
    ("fine_tune_type: qlora\n", "1: fine_tune_type: expected one of 'sft', 'lora', 'bitfit', got 'qlora'"),
    ("query_max_len: '64'\n", "1: query_max_len: expected int, got '64'"),
])
def test_bad_values_name_the_line_and_key(tmp_path, text, expected):
    assert _error(tmp_path, text).startswith(expected)


@pytest.mark.parametrize("text, expected", [
    # A check across keys points at the one written last.
    ("fp16: true\nseed: 3\nbf16: true\n", "3: bf16: fp16 and bf16 are exclusive"),
    ("bf16: true\nfp16: true\n", "2: fp16: fp16 and bf16 are exclusive"),
    ("max_steps: 0\nnum_train_epochs: 0\n", "2: num_train_epochs: with num_train_epochs 0.0 and max_steps 0 nothing"),
    ("matryoshka_dims: [8, 16]\nuse_matryoshka: true\n",
     "2: use_matryoshka: 2 matryoshka_dims but 5 matryoshka_loss_weights: give one weight per dim"),
    ("use_matryoshka: true\nmatryoshka_dims: [8, 16]\n", "2: matryoshka_dims: 2 matryoshka_dims but 5"),
    ("query_instruction_for_retrieval: 'query: '\nicl:\n  examples_per_query: 2\n",
     "2: icl: in-context examples need a query instruction with a {text} slot"),
    ("icl:\n  examples_per_query: 2\n", "1: icl: in-context examples need a query instruction with a {text} slot"),
    ("icl:\n  examples_per_query: 2\nquery_instruction_for_retrieval: 'query: '\n",
     "3: query_instruction_for_retrieval: in-context examples need"),
])
def test_cross_field_errors_point_at_the_later_key(tmp_path, text, expected):
    assert _error(tmp_path, text).startswith(expected)


def test_the_first_problem_in_the_file_is_reported(tmp_path):
    # temperature comes after sentence_pooling_method in the schema but first in the file
    assert _error(tmp_path, "temperature: 0\nsentence_pooling_method: max\n").startswith("1: temperature")


@pytest.mark.parametrize("text, expected", [
    ("learning_rate: 1e-5\nseed: 1\nlearning_rate: 2e-5\n", "3: duplicate key 'learning_rate' (first on line 1)"),
    ("lora:\n  r: 8\n  alpha: 16\n  r: 4\n", "4: duplicate key 'lora.r' (first on line 2)"),
])
def test_duplicate_keys_are_errors(tmp_path, text, expected):
    assert _error(tmp_path, text).startswith(expected)


def test_in_context_examples_with_a_text_template_validate(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("query_instruction_for_retrieval: \"<instruct>t\\n<query>{text}\\n<response>\"\n"
                    "icl:\n  examples_per_query: 5\n  example_query_max_len: 256\n")
    config = load_recipe(path, TrainConfig)
    assert (config.icl.examples_per_query, config.icl.random_count, config.icl.use_probability) == (5, True, 1.0)
    assert (config.icl.example_query_max_len, config.icl.example_passage_max_len) == (256, 96)
    assert TrainConfig().icl.examples_per_query == 0  # off unless asked for


def test_matryoshka_length_mismatch_is_no_error_while_matryoshka_is_off(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("matryoshka_dims: [8, 16]\n")
    assert load_recipe(path, TrainConfig).matryoshka_dims == [8, 16]


@pytest.mark.parametrize("assignments, expected", [
    (["temperature=0"], "--set: temperature: must be positive, got 0"),
    (["seed=1", "lora.r=0"], "--set: lora.r: must be at least 1, got 0"),
    (["fp16=true", "bf16=true"], "--set: bf16: fp16 and bf16 are exclusive"),
    # a section set key by key: the check across it and another key points at --set
    (["icl.examples_per_query=2"], "--set: icl: in-context examples need a query instruction with a {text} slot"),
    (["learning_rat=1e-5"], "--set: unknown key 'learning_rat' (did you mean 'learning_rate'?)"),
    (["eval=3"], "--set: eval: expected a mapping, got 3"),
    (["learning_rate.x=1"], "--set: unknown key 'learning_rate.x': learning_rate is not a section"),
])
def test_overrides_are_checked_like_the_recipe(assignments, expected):
    with pytest.raises(UserError) as caught:
        apply_overrides(TrainConfig(), assignments)
    assert str(caught.value).startswith(expected)


def test_overrides_that_only_fit_together_may_come_in_any_order():
    config = apply_overrides(TrainConfig(), ["matryoshka_dims=[8,16]", "use_matryoshka=true",
                                             "matryoshka_loss_weights=[1, 0.5]"])
    assert config.matryoshka_loss_weights == [1.0, 0.5]


def test_an_override_in_conflict_with_the_recipe_is_reported_against_set(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("seed: 1\nfp16: true\n")
    with pytest.raises(UserError, match=r"^--set: bf16: fp16 and bf16 are exclusive"):
        apply_overrides(load_recipe(path, TrainConfig), ["bf16=true"])


def test_a_validated_config_reports_later_problems_at_the_line_that_set_the_value(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("seed: 1\npassage_max_len: 900\nquery_max_len: 64\n")
    config = apply_overrides(load_recipe(path, TrainConfig), ["query_max_len=600"])
    assert str(config.error("passage_max_len", "too long")) == f"{path}:2: passage_max_len: too long"
    assert str(config.error("query_max_len", "too long")) == "--set: query_max_len: too long"
    assert str(config.error("train_group_size", "too big")) == f"{path}: train_group_size: too big"  # a default


def test_assignment_is_validated_too():
    config = TrainConfig()
    with pytest.raises(ValueError, match="temperature"):
        config.temperature = 0


def test_the_resolved_recipe_is_yaml_that_loads_back_to_the_same_config(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("learning_rate: 3e-5\nsentence_pooling_method: cls\nfine_tune_type: lora\neval:\n  engine: onnx\n")
    config = load_recipe(path, TrainConfig)
    assert isinstance(config.learning_rate, float) and config.learning_rate == 3e-5
    text = recipe_to_yaml(config)
    assert yaml.safe_load(text)["sentence_pooling_method"] == "cls"
    (tmp_path / "again.yaml").write_text(text)
    assert load_recipe(tmp_path / "again.yaml", TrainConfig) == config

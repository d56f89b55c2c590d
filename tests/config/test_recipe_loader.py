import pytest

from embedkit.config import TrainConfig, apply_overrides, load_recipe
from embedkit.errors import UserError


def _write(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_recipe_values_are_typed_and_nested(tmp_path):
    cfg = load_recipe(_write(tmp_path, "temperature: 1\nlora:\n  r: 8\nmatryoshka_dims: [32, 64]\n"), TrainConfig)
    assert cfg.temperature == 1.0 and isinstance(cfg.temperature, float)
    assert cfg.lora.r == 8 and cfg.lora.alpha == 64
    assert cfg.matryoshka_dims == [32, 64]


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("temperature: 0.02\nlearning_rat: 1e-5\n", 2, "unknown key 'learning_rat' (did you mean 'learning_rate'?)"),
        ("lora:\n  r: 8\n  rank: 4\n", 3, "unknown key 'lora.rank'"),
        ("use_matryoshka: 'yes'\n", 1, "use_matryoshka: expected bool"),
        ("matryoshka_dims: [64, big]\n", 1, "matryoshka_dims[1]: expected int"),
        ("sentence_pooling_method: max\n", 1, "expected one of 'cls', 'mean', 'last'"),
        ("a: [1,\n", 2, "invalid YAML"),
        ("- just\n- a list\n", 1, "a recipe must be a mapping"),
    ],
)
def test_recipe_errors_name_file_line_and_key(tmp_path, text, line, message):
    path = _write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_recipe(path, TrainConfig)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert message in str(err.value)


def test_overrides_parse_types_and_reach_nested_keys():
    cfg = apply_overrides(TrainConfig(), ["learning_rate=3e-5", "lora.r=16", "use_matryoshka=true",
                                          "matryoshka_dims=[64,128]", "matryoshka_loss_weights=[1, 2]",
                                          "query_instruction_for_retrieval=123"])
    assert cfg.learning_rate == 3e-5 and cfg.lora.r == 16 and cfg.use_matryoshka is True
    assert cfg.matryoshka_dims == [64, 128]
    assert cfg.query_instruction_for_retrieval == "123"


@pytest.mark.parametrize("assignment, message", [
    ("learning_rate=fast", "learning_rate: expected float"),
    ("lora.rank=3", "unknown key 'lora.rank'"),
    ("nokey", "expected key=value"),
])
def test_bad_overrides_are_user_errors(assignment, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("(", r"\(")):
        apply_overrides(TrainConfig(), [assignment])

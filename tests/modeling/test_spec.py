"""`embedkit.json` is validated like a recipe: `embedkit.json:LINE: key: message`, exit 2."""

from __future__ import annotations

import json

import pytest

from embedkit.choices import PaddingSide, Pooling
from embedkit.errors import UserError
from embedkit.modeling.spec import EmbedderSpec, read_spec
from tests.conftest import DEMO_DATA


@pytest.mark.parametrize("text, line, message", [
    ('{\n  "pooling": "cls",\n  "query_max_len": "64"\n}', 3, "query_max_len: expected int, got '64'"),
    ('{\n  "normalized": true,\n  "pooling": "max"\n}', 3, "pooling: expected one of 'cls', 'mean', 'last', 'last_8', 'latent_attention', got 'max'"),
    ('{\n  "normalized": true,\n  "normalised": true\n}', 3, "unknown key 'normalised' (did you mean 'normalized'?)"),
    ('{\n  "padding_side": "left",\n  "matryoshka_dims": [\n    64,\n    0\n  ]\n}', 3,
     "matryoshka_dims[1]: must be positive, got 0"),
    ('{\n  "query_model": "q", "passage_model": 7\n}', 2, "passage_model: expected str, got 7"),
    ('[1, 2]', 1, "expected a JSON object"),
    ('{\n  "pooling": "cls",\n  oops\n}', 3, "invalid JSON"),
])
def test_a_bad_spec_names_the_line_and_key(tmp_path, text, line, message):
    (tmp_path / "embedkit.json").write_text(text)
    with pytest.raises(UserError) as caught:
        read_spec(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'embedkit.json'}:{line}: {message}")


def test_a_saved_spec_reads_back_equal_with_choices_as_enums(tmp_path):
    spec = EmbedderSpec(pooling="last", padding_side="left", matryoshka_dims=[8, 16])
    spec.save(tmp_path)
    written = json.loads((tmp_path / "embedkit.json").read_text())
    assert written["pooling"] == "last" and written["padding_side"] == "left" and written["embedkit_version"]
    again = read_spec(tmp_path)
    assert again == spec and again.pooling is Pooling.LAST and again.padding_side is PaddingSide.LEFT


def test_updated_checks_the_changes():
    spec = EmbedderSpec()
    assert spec.updated(pooling="cls").pooling is Pooling.CLS and spec.pooling is Pooling.MEAN
    with pytest.raises(UserError, match="pooling: expected one of 'cls', 'mean', 'last', 'last_8', 'latent_attention', got 'max'"):
        spec.updated(pooling="max")


def test_a_bad_spec_stops_eval_with_exit_2(tmp_path, run_cli):
    (tmp_path / "embedkit.json").write_text('{\n  "pooling": "cls",\n  "query_max_len": "64"\n}\n')
    result = run_cli("eval", tmp_path, "--data", DEMO_DATA)
    assert result.exit_code == 2
    assert f"{tmp_path / 'embedkit.json'}:3: query_max_len: expected int, got '64'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_sentence_transformers_dir_brings_its_prompts_as_qwen3_embedding_ships_them(tmp_path):
    from embedkit.modeling.prompts import preset_fields

    query_prompt = preset_fields("qwen3-embedding")["query_instruction"]
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_lasttoken": True}))
    (tmp_path / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Normalize"}]))
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": query_prompt, "document": ""}, "default_prompt_name": None}))
    spec = read_spec(tmp_path)
    assert (spec.pooling, spec.normalized, spec.appends_eos()) == ("last", True, True)
    assert (spec.query_instruction, spec.passage_instruction) == (query_prompt, "")

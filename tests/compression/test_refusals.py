"""What prune refuses, with exit code 2 and a message naming the problem, before any work (and no traceback)."""

from __future__ import annotations

import pytest


@pytest.fixture
def bert(models):
    return models["bert"]


@pytest.mark.parametrize("args, message", [
    (["--n-prune-layers", "4"], "cannot remove 4 of the model's 4 layers"),
    (["--n-prune-layers", "9"], "at most 3"),
    (["--n-prune-layers", "-1"], "--n-prune-layers must be at least 1"),
    (["--n-prune-layers", "0"], "--n-prune-layers must be at least 1"),
    ([], "give --n-prune-layers N"),
    (["--layers", "1,9"], "layer(s) [9] do not exist"),
    (["--layers", "1,1"], "more than once"),
    (["--layers", "0,1,2,3"], "cannot remove 4"),
    (["--layers", "x"], "--layers expects 0-based layer numbers"),
    (["--layers", "1", "--n-prune-layers", "2"], "--n-prune-layers 2 but --layers names 1"),
    (["--n-prune-layers", "1"], "nothing to calibrate the layer scores on"),
    (["--n-prune-layers", "1", "--metric", "cosine"], "unknown metric 'cosine'"),
    (["--n-prune-layers", "1", "--select", "eval", "--select-z", "-1"], "--select-z"),
])
def test_bad_requests_exit_2_with_a_message(bert, tmp_path, run_cli, args, message):
    result = run_cli("prune", bert, "--output", tmp_path / "out", *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_output_may_not_be_the_model_dir_or_inside_it(bert, texts_file, run_cli):
    for output in (bert, bert / "pruned"):
        result = run_cli("prune", bert, "--output", output, "--n-prune-layers", "1", "--calibration", texts_file)
        assert result.exit_code == 2 and "outside the model directory" in result.stderr
    assert not (bert / "pruned").exists()


def test_an_existing_non_empty_output_is_refused_and_left_alone(bert, texts_file, tmp_path, run_cli):
    output = tmp_path / "taken"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    result = run_cli("prune", bert, "--output", output, "--n-prune-layers", "1", "--calibration", texts_file)
    assert result.exit_code == 2 and "exists and is not empty" in result.stderr
    assert [p.name for p in output.iterdir()] == ["notes.txt"]


def test_an_empty_output_dir_is_filled(bert, texts_file, tmp_path, run_cli):
    output = tmp_path / "empty"
    output.mkdir()
    assert run_cli("prune", bert, "--output", output, "--layers", "1").exit_code == 0
    assert (output / "config.json").is_file() and not [p for p in output.iterdir() if p.name.startswith(".")]


def test_selecting_on_the_reported_split_is_refused(bert, beir_dir, tmp_path, run_cli):
    result = run_cli("prune", bert, "--output", tmp_path / "out", "--n-prune-layers", "1", "--select", "eval",
                     "--eval-data", beir_dir, "--select-split", "test")
    assert result.exit_code == 2 and "is the split the report evaluates" in result.stderr
    result = run_cli("prune", bert, "--output", tmp_path / "out", "--n-prune-layers", "1", "--select", "eval",
                     "--calibration", beir_dir)
    assert result.exit_code == 2 and "--select eval needs --select-data" in result.stderr
    result = run_cli("prune", bert, "--output", tmp_path / "out", "--n-prune-layers", "1", "--select", "eval",
                     "--eval-data", beir_dir, "--select-split", "dev")
    assert result.exit_code == 2 and "no qrels for split 'dev'" in result.stderr

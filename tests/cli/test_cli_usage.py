"""Usage errors, help and --version through the real entry point: exit 2 with the usage, never "internal error"."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_support import DEMO_DATA

import embedkit
from embedkit.filenames import EXPORT_DIRNAME

COMMANDS = ["train", "eval", "bench", "encode", "export", "serve", "download", "prune", "quantize", "data", "recipe"]

USAGE_ERRORS = {
    "unknown-command": (["evl"], "No such command 'evl'"),
    "unknown-option": (["eval", "X", "--bogus"], "No such option: --bogus"),
    "option-without-command": (["-v"], "No such option: -v"),
    "not-an-integer": (["eval", "X", "--top-k", "abc"], "--top-k must be an integer, got 'abc'"),
    "zero-count": (["eval", "X", "--top-k", "0"], "--top-k must be at least 1, got 0"),
    "negative-nproc": (["train", "--nproc", "-1"], "--nproc must be at least 1, got -1"),
    "zero-batch-in-a-list": (["bench", "--batch-size", "4", "--batch-size", "0"], "--batch-size must be at least 1"),
    "unknown-engine": (["eval", "X", "--engine", "foo"], "unknown engine 'foo' for --engine"),
    "auto-is-no-bench-engine": (["bench", "--engine", "auto"], "unknown engine 'auto'"),
    "unknown-pooling": (["eval", "X", "--pooling", "foo"], "unknown pooling 'foo' for --pooling (choose from cls, mean, last, last_8, latent_attention)"),
    "unknown-index": (["eval", "X", "--index", "foo"], "unknown index 'foo' for --index"),
    "unknown-device": (["bench", "--device", "tpu"], "unknown device 'tpu'"),
    "unknown-side": (["encode", "X", "--input", "t.txt", "--output", "o.npy", "--side", "doc"], "unknown side 'doc'"),
    "missing-option": (["encode", "X", "--input", "t.txt", "--output", "o.npy"], "Missing option '--side'"),
    "unknown-subcommand": (["data", "chek", "X"], "No such command 'chek'"),
}


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_usage_errors_exit_2_with_the_usage(run_cli, args, message):
    result = run_cli(*args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert "Usage:" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_no_arguments_prints_the_help_with_only_existing_commands(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # one line per command
    result = run_cli()
    assert result.exit_code == 0
    panel = result.stdout.split("Commands")[1].split("╰")[0]
    assert [line.split()[1] for line in panel.splitlines()[1:]] == COMMANDS


def test_a_group_without_its_subcommand_prints_its_help(run_cli):
    result = run_cli("data")
    assert result.exit_code == 0 and "check" in result.stdout


def test_version(run_cli):
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"embedkit {embedkit.__version__}\n"


def test_version_does_not_import_paddle():
    probe = ("import sys\nfrom embedkit.cli import main\nsys.argv = ['embedkit', '--version']\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
             "print(code, 'paddle' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [f"embedkit {embedkit.__version__}", "0 False"]


def test_module_entry_point_runs_the_same_app():
    done = subprocess.run([sys.executable, "-m", "embedkit.cli", "evl"], capture_output=True, text=True)
    assert done.returncode == 2 and "No such command 'evl'" in done.stderr


@pytest.mark.parametrize("args", [["--pooling", "foo"], ["--engine", "foo"], ["--index", "foo"], ["--top-k", "0"]])
def test_bad_choices_are_refused_before_any_model_loads(run_cli, tiny_bert, no_model_loads, args):
    result = run_cli("eval", tiny_bert, "--data", DEMO_DATA, *args)
    assert result.exit_code == 2, result.stderr
    assert "Usage:" in result.stderr and "internal error" not in result.stderr
    assert not (tiny_bert / EXPORT_DIRNAME).exists()


@pytest.mark.parametrize(("command", "expected"), [
    (["eval"], ["(default: auto)", "[default: flat]", "(default: 32)", "(default: 1000)", "[default: 32]"]),
    (["bench"], ["[default: 64]", "[default: 256]", "(default: 4, 16 and 32)", "[default: auto]", "[default: 3]"]),
    (["encode"], ["(default: auto)", "(default: 32)", "[default: auto]"]),
    (["train"], ["[default: 1]"]),
])
def test_help_shows_the_defaults(run_cli, monkeypatch, command, expected):
    monkeypatch.setenv("COLUMNS", "300")  # one line per option, so no default is split by wrapping
    result = run_cli(*command, "--help")
    assert result.exit_code == 0
    for text in expected:
        assert text in result.stdout, text

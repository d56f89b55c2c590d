"""Flag names that follow the recipe keys (old names still accepted) and `--help` that reads in 80 columns."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from embedkit.cli.app import app
from embedkit.cli.options import embedding_options, spec_overrides

EMBEDDING_COMMANDS = ["eval", "encode", "export", "serve"]


def _probe_app() -> tuple[typer.Typer, list[dict[str, Any]]]:
    """A one-command app with the shared embedding options; records the spec fields each call resolves to."""
    seen: list[dict[str, Any]] = []
    probe = typer.Typer()

    @probe.command()
    @embedding_options
    def run(*, embedding: dict[str, Any]) -> None:
        seen.append(spec_overrides(embedding))

    return probe, seen


@pytest.mark.parametrize(("args", "fields"), [
    (["--passage-max-len", "64", "--query-max-len", "16"], {"passage_max_len": 64, "query_max_len": 16}),
    (["--query-max-length", "16"], {"query_max_len": 16}),  # the old name
    (["--max-length", "64"], {"passage_max_len": 64, "query_max_len": 64}),  # both sides, as eval.max_length
    (["--max-length", "64", "--query-max-len", "16"], {"passage_max_len": 64, "query_max_len": 16}),
    (["--max-length", "64", "--query-max-length", "16"], {"passage_max_len": 64, "query_max_len": 16}),
    (["--no-normalize"], {"normalized": False}),
    (["--normalize", "--pooling", "cls"], {"normalized": True, "pooling": "cls"}),
    ([], {}),
])
def test_embedding_flags_set_the_spec_fields_named_like_the_recipe_keys(args, fields):
    probe, seen = _probe_app()
    result = CliRunner().invoke(probe, args)
    assert result.exit_code == 0, result.output
    assert seen == [fields]


@pytest.mark.parametrize(("args", "message"), [
    (["--query-max-len", "16", "--query-max-length", "32"], "--query-max-length is the old name of --query-max-len"),
    (["--normalize", "--no-normalize"], "--normalize and --no-normalize contradict each other"),
])
def test_contradicting_flags_are_a_usage_error(args, message):
    probe, seen = _probe_app()
    result = CliRunner().invoke(probe, args)
    assert result.exit_code == 2 and message in result.output and not seen


@pytest.mark.parametrize("command", EMBEDDING_COMMANDS)
def test_every_command_with_embedding_options_shows_the_recipe_names(run_cli, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "300")
    result = run_cli(command, "--help")
    assert result.exit_code == 0
    for flag in ("--passage-max-len", "--query-max-len", "--max-length", "sentence_pooling_method",
                 "query_instruction_for_retrieval", "passage_instruction_for_retrieval"):
        assert flag in result.stdout, (command, flag)
    assert "--query-max-length " not in result.stdout  # the old name is accepted, not listed


def test_bench_takes_passage_max_len_and_its_old_name(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    assert "--passage-max-len" in run_cli("bench", "--help").stdout
    both = run_cli("bench", "--passage-max-len", "32", "--max-length", "64")
    assert both.exit_code == 2 and "--max-length is the old name of --passage-max-len" in both.stderr


# --- eval --help in an 80-column terminal -------------------------------------------------------------------

def _panels(text: str) -> list[list[str]]:
    """Each help panel's lines, without the box (``│ `` and `` │``)."""
    panels = []
    for chunk in text.split("╭─")[1:]:
        lines = chunk.split("╰")[0].splitlines()[1:]
        panels.append([line[2:-2] for line in lines if line.startswith("│")])
    return panels


def _rendered_help(panels: list[list[str]], name: str, help_text: str) -> tuple[str, int]:
    """The help column's text of option ``name`` joined over its lines, and the column's width."""
    for lines in panels:
        for i, line in enumerate(lines):
            if line.split(" ", 1)[0] != name:
                continue
            start = line.find(help_text[:12], len(name))
            assert start > 0, f"{name}: help does not start on its first line: {line!r}"
            parts = [line[start:]]
            for follow in lines[i + 1:]:
                if follow[:1] != " ":  # the next option's row
                    break
                parts.append(follow[start:])
            return " ".join(" ".join(parts).split()), len(line) - start
    raise AssertionError(f"{name} not in the help")


def test_eval_help_fits_80_columns_with_every_help_text_whole(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = run_cli("eval", "--help")
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    panels = _panels(result.stdout)
    command = typer.main.get_command(app).commands["eval"]
    options = [p for p in command.params if isinstance(p, typer.core.TyperOption) and not p.hidden]
    assert len(options) > 20
    for option in options:
        name = next(opt for opt in option.opts if opt.startswith("--"))
        text, width = _rendered_help(panels, name, option.help)
        assert text.startswith(" ".join(option.help.split())), name
        assert "…" not in text, name
        assert width >= 30, f"{name}: help column only {width} wide"
    assert not re.search(r"--(query-max-length|keep-identical-ids|no-normalize) ", "\n".join(sum(panels, [])))

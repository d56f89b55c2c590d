"""The shipped registry, its checks, and `embedkit download --list`."""

from __future__ import annotations

import json

import pytest
import yaml

from embedkit.errors import UserError
from embedkit.hub.registry import find_entry, load_registry

MTEB_TASKS = ("scifact", "nfcorpus", "arguana", "fiqa", "scidocs", "quora", "msmarco")


def test_the_shipped_registry_holds_the_example_datasets_and_models():
    entries = load_registry()
    repos = {entry.repo for entry in entries.values()}

    assert entries["dureader-retrieval"].url == "https://paddlenlp.bj.bcebos.com/datasets/dureader_dual.train.jsonl"
    assert entries["mmarco-zh"].conversion == "mmarco-train-jsonl"
    assert entries["t2ranking-dev"].conversion == "t2ranking-beir"
    assert {f"mteb/{task}" for task in MTEB_TASKS} <= repos
    assert {
        "BAAI/bge-large-en-v1.5",
        "castorini/repllama-v1-7b-lora-passage",
        "meta-llama/Llama-2-7b-hf",
        "nvidia/NV-Embed-v1",
        "BAAI/bge-en-icl",
        "BAAI/LLARA-passage",
        "Qwen/Qwen3-Embedding-8B",
    } <= repos
    assert entries["repllama-v1-7b-lora-passage"].base_model == "llama-2-7b-hf"
    rocketqa = [e for e in entries.values() if e.source == "paddlenlp"]
    assert {e.repo for e in rocketqa} >= {"rocketqa-zh-base-query-encoder", "rocketqav2-en-marco-query-encoder"}


def test_every_entry_says_enough_to_download_it():
    for entry in load_registry().values():
        assert entry.size and entry.licence, entry.name
        if entry.source == "hf":
            assert entry.allow_patterns, entry.name
        if entry.source == "hf" and entry.kind == "dataset":
            assert entry.conversion, entry.name
        if entry.repo and entry.repo.startswith("mteb/"):
            assert entry.revision and entry.conversion_options.get("split"), entry.name


def test_entries_are_found_by_name_or_repo_id():
    entries = load_registry()
    assert find_entry("BGE-large-en-v1.5", entries).name == "bge-large-en-v1.5"
    assert find_entry("Qwen/Qwen3-Embedding-8B", entries).name == "qwen3-embedding-8b"
    with pytest.raises(UserError, match="Did you mean: mteb-scifact"):
        find_entry("mteb-scifac", entries)


GOOD_ENTRY = {"name": "ok", "kind": "model", "source": "hf", "repo": "a/ok", "size": "1 GB", "licence": "MIT"}


@pytest.mark.parametrize(
    "entry, problem, reported_at",
    [
        ({"kind": "model", "source": "hf", "repo": "a/b", "size": "1 GB", "licence": "MIT", "sha265": None},
         "unknown key 'sha265' (did you mean 'sha256'?)", "sha265"),
        ({"source": "hf", "repo": "a/b", "size": "1 GB", "licence": "MIT"}, "'kind' is required", "name"),
        ({"kind": "mdl", "source": "hf", "repo": "a/b", "size": "1", "licence": "MIT"},
         "kind: expected one of 'model', 'dataset', got 'mdl'", "kind"),
        ({"kind": "dataset", "source": "hf", "repo": "a/b", "size": "1", "licence": "MIT", "conversion": "magic"},
         "conversion: unknown conversion 'magic'", "conversion"),
        ({"kind": "model", "source": "hf", "repo": "a/b", "size": "1", "licence": "MIT", "conversion": "mteb-beir"},
         "conversion: only datasets have a conversion", "conversion"),
        ({"kind": "dataset", "source": "url", "url": "https://x/y.bin", "size": "1", "licence": "MIT", "sha256": "abc"},
         "sha256: the digest of y.bin is not 64 lowercase hex", "sha256"),
        ({"kind": "model", "source": "hf", "repo": "a/b", "size": "1", "licence": "MIT", "base_model": "nope"},
         "base_model 'nope' is not in the registry", "base_model"),
        ({"kind": "model", "source": "url", "url": "ftp://x/y", "size": "1", "licence": "MIT"}, "needs an http", "url"),
        ({"kind": "model", "source": "hf", "size": "1", "licence": "MIT"}, "source: a hf entry needs 'repo'", "source"),
        ({"kind": "model", "source": "hf", "repo": "a/b", "size": 1, "licence": "MIT"}, "size: expected str, got 1",
         "size"),
    ],
)
def test_a_broken_registry_names_the_entry_the_line_and_the_problem(tmp_path, entry, problem, reported_at):
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"entries": [GOOD_ENTRY, {"name": "broken", **entry}]}, sort_keys=False))
    lines = path.read_text().splitlines()
    broken = lines.index("- name: broken") + 1
    line = broken if reported_at == "name" else next(
        n for n, text in enumerate(lines, 1) if n > broken and text.startswith(f"  {reported_at}:"))

    with pytest.raises(UserError) as caught:
        load_registry(path)

    assert str(caught.value).startswith(f"{path}:{line}: entry 'broken': ")
    assert problem in str(caught.value)


@pytest.mark.parametrize("text, line, problem", [
    ("entries:\n  - name: a\n    kind: model\n    kind: dataset\n", 4, "duplicate key 'entries[0].kind' (first on line 3)"),
    ("entries:\n" + "  - {name: a, kind: model, source: hf, repo: a/a, size: '1', licence: MIT}\n" * 2, 3,
     "entry 'a' is listed twice"),
    ("entries: {}\n", 1, "entries: expected a list"),
    ("entries: [\n", 2, "invalid YAML"),
])
def test_a_broken_registry_file_names_the_line(tmp_path, text, line, problem):
    path = tmp_path / "registry.yaml"
    path.write_text(text)

    with pytest.raises(UserError) as caught:
        load_registry(path)

    assert str(caught.value).startswith(f"{path}:{line}: {problem}")


def test_list_shows_names_kinds_sizes_and_licences(run_cli):
    result = run_cli("download", "--list")

    assert result.exit_code == 0, result.stderr
    for entry in load_registry().values():
        assert entry.name in result.stderr
    for text in ("dataset", "model", "~1.3 GB", "CC-BY-NC-4.0", "Llama 2 (gated)"):
        assert text in result.stderr


def test_list_json_is_the_whole_registry_on_stdout(run_cli):
    result = run_cli("download", "--list", "--json")

    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [item["name"] for item in listed] == list(load_registry())
    scifact = next(item for item in listed if item["name"] == "mteb-scifact")
    assert scifact["kind"] == "dataset" and scifact["size"] == "~8 MB" and scifact["licence"] == "CC-BY-NC-4.0"
    assert scifact["repo"] == "mteb/scifact" and scifact["sha256"] is None


def test_an_unknown_name_exits_2_with_a_hint(run_cli):
    result = run_cli("download", "bge-large")

    assert result.exit_code == 2
    assert "--list" in result.stderr and "Traceback" not in result.stderr


def test_no_name_exits_2(run_cli):
    result = run_cli("download")

    assert result.exit_code == 2
    assert "name a registry entry or give a URL" in result.stderr

"""Damaged caches are detected, discarded with a warning and rebuilt: never used as they are."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "demo" / "scifact-mini"
EVAL = ("--data", DEMO_DATA, "--engine", "paddle", "--batch-size", "64", "--json")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from embedkit.data import load_retrieval, passage_text
    from embedkit.modeling.tiny import build_tiny_bert

    texts = [passage_text(d) for d in load_retrieval(DEMO_DATA, "test").corpus.values()][:200]
    return build_tiny_bert(tmp_path_factory.mktemp("caches") / "model", texts)


def corpus_entry(home: Path) -> Path:
    (entry,) = [d for d in (home / "embeddings").iterdir()
                if json.loads((d / "meta.json").read_text())["side"] == "passage"]
    return entry


def rewrite_array(entry: Path, change) -> None:
    path = entry / "embeddings.npy"
    array = np.load(path)
    np.save(path, change(array))


def overwrite_rows(entry: Path) -> None:
    path = entry / "embeddings.npy"
    data = bytearray(path.read_bytes())
    data[200:4000] = np.random.default_rng(0).bytes(3800)  # past the .npy header: the vectors themselves
    path.write_bytes(bytes(data))


DAMAGE = {
    "random bytes in the rows": overwrite_rows,
    "truncated to fewer rows": lambda e: rewrite_array(e, lambda a: a[:-100]),
    "NaN in a row": lambda e: rewrite_array(e, lambda a: np.where(np.arange(a.shape[0])[:, None] == 3, np.nan, a)),
    "meta.json missing": lambda e: (e / "meta.json").unlink(),
    "file cut mid-row": lambda e: (e / "embeddings.npy").write_bytes((e / "embeddings.npy").read_bytes()[:-1001]),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_embedding_cache_entry_is_rebuilt_not_used(damage, tiny_model, run_cli, embedkit_home):
    fresh = json.loads(run_cli("eval", tiny_model, *EVAL).stdout)["datasets"][0]
    DAMAGE[damage](corpus_entry(embedkit_home))

    result = run_cli("eval", tiny_model, *EVAL)
    again = json.loads(result.stdout)["datasets"][0]
    assert result.exit_code == 0
    assert "discarding a damaged embedding cache entry" in result.stderr
    assert again["cached"] == {"queries": True, "corpus": False}  # re-encoded, not read
    assert again["metrics"] == pytest.approx(fresh["metrics"], abs=1e-6)
    third = json.loads(run_cli("eval", tiny_model, *EVAL).stdout)["datasets"][0]
    assert third["cached"]["corpus"] is True  # the rebuilt entry verifies


def test_a_full_disk_while_caching_is_an_exit_2_message_and_leaves_nothing(tiny_model, run_cli, embedkit_home,
                                                                           monkeypatch):
    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.posix_fallocate", no_space)
    result = run_cli("eval", tiny_model, *EVAL)
    assert result.exit_code == 2
    assert "no space left on device" in result.stderr and "Traceback" not in result.stderr
    assert list((embedkit_home / "embeddings").iterdir()) == []  # no entry and no staging dir


def tokenised_entry(tiny_model, key="entry"):
    from embedkit.data import TrainExample
    from embedkit.modeling.loading import load_tokenizer
    from embedkit.training.tokenized import TokenizeSettings, cached, tokenize_examples

    tokenizer = load_tokenizer(tiny_model)
    examples = [TrainExample(query=f"query {i} about cells", pos=[f"passage {i} on cells"], neg=["other text"])
                for i in range(6)]
    calls = []

    def build():
        calls.append(1)
        return tokenize_examples(examples, tokenizer, TokenizeSettings(32, 64, "", ""))

    return lambda: (*cached(key, build, {}, len(tokenizer)), len(calls))


def reseal(entry: Path) -> None:
    """Recompute the file records, as a buggy writer would have: only the content checks can catch it then."""
    from embedkit.integrity import file_records

    meta = json.loads((entry / "meta.json").read_text())
    meta["files"] = file_records(entry, meta["files"])
    (entry / "meta.json").write_text(json.dumps(meta))


TOKEN_DAMAGE = {
    "truncated array": lambda e: (e / "passage_tokens.values.npy").write_bytes(
        (e / "passage_tokens.values.npy").read_bytes()[:-8]),
    "token ids out of range": lambda e: (np.save(e / "query_tokens.values.npy",
                                                 np.load(e / "query_tokens.values.npy") + 10**6), reseal(e)),
    "offsets past the values": lambda e: (np.save(e / "example_pos.offsets.npy",
                                                  np.load(e / "example_pos.offsets.npy") * 3), reseal(e)),
    "meta.json missing": lambda e: (e / "meta.json").unlink(),
}


@pytest.mark.parametrize("damage", TOKEN_DAMAGE, ids=list(TOKEN_DAMAGE))
def test_a_damaged_tokenisation_cache_entry_is_rebuilt(damage, tiny_model, embedkit_home, capsys):
    load = tokenised_entry(tiny_model)
    fresh, hit, _ = load()
    assert not hit and load()[1]  # stored, then read back
    TOKEN_DAMAGE[damage](embedkit_home / "tokenized" / "entry")

    rebuilt, hit, builds = load()
    assert not hit and builds == 2
    assert "discarding a damaged tokenisation cache entry" in capsys.readouterr().err
    np.testing.assert_array_equal(rebuilt.query_tokens.values, fresh.query_tokens.values)
    np.testing.assert_array_equal(rebuilt.example_pos.offsets, fresh.example_pos.offsets)
    assert load()[1]


@pytest.mark.parametrize("engine, graph", [("onnx", "onnx-shared/model.onnx"),
                                           ("paddle-inference", "paddle-inference-shared/model.pdiparams")])
def test_a_truncated_export_is_rebuilt(engine, graph, tiny_model, tmp_path, run_cli):
    import shutil

    model = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    args = ("--data", DEMO_DATA, "--engine", engine, "--no-cache", "--json")
    fresh = json.loads(run_cli("eval", model, *args).stdout)["mean"]
    path = model / ".embedkit-export" / graph
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    truncated = path.stat().st_size

    result = run_cli("eval", model, *args)
    assert result.exit_code == 0, result.stderr
    assert "rebuilding a damaged export" in result.stderr
    assert f"{Path(graph).name} has {truncated} bytes" in result.stderr.replace("\n", "")
    assert json.loads(result.stdout)["mean"] == pytest.approx(fresh, abs=1e-6)
    assert "rebuilding" not in run_cli("eval", model, *args).stderr


def test_staging_dirs_of_killed_writers_are_removed_and_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys

    from embedkit.fsutil import write_text

    target = tmp_path / "entry"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = tmp_path / f".entry.{int(dead.stdout)}.abc123.tmp"
    live = tmp_path / f".entry.{os.getpid()}.def456.tmp"
    other = tmp_path / f".entry.x.{int(dead.stdout)}.ghi789.tmp"  # a staging dir of the target "entry.x"
    for leftover in (killed, live, other):
        (leftover / "half").mkdir(parents=True)
    write_text(target, "done\n")
    assert target.read_text() == "done\n"
    assert not killed.exists() and live.exists() and other.exists()


def test_lengths_beyond_the_position_embeddings_are_refused_or_lowered(tmp_path):
    from embedkit.data import load_retrieval, passage_text
    from embedkit.errors import UserError
    from embedkit.inference import Encoder
    from embedkit.modeling.spec import EmbedderSpec
    from embedkit.modeling.tiny import build_tiny_bert

    texts = [passage_text(d) for d in load_retrieval(DEMO_DATA, "test").corpus.values()][:50]
    model = build_tiny_bert(tmp_path / "short", texts, max_position=64)
    plain = Encoder.from_model_dir(model, engine="paddle")  # embedkit's default 128 is lowered, not an error
    assert plain.spec.passage_max_len == 64 and plain.encode_passages(texts[:3]).shape == (3, 32)
    with pytest.raises(UserError, match="passage_max_len: 100 tokens are more than the model takes: 64"):
        Encoder.from_model_dir(model, engine="paddle", overrides={"passage_max_len": 100})
    EmbedderSpec(passage_max_len=256).save(model)
    with pytest.raises(UserError, match="embedkit.json: passage_max_len: 256 tokens"):
        Encoder.from_model_dir(model, engine="paddle")


def test_an_output_under_an_unwritable_dir_is_refused_before_work(monkeypatch, tmp_path):
    import os

    from embedkit.errors import UserError
    from embedkit.fsutil import check_dir_target

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # root passes every permission check, so the denial the OS would give another user is faked here
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    with pytest.raises(UserError, match="locked: permission denied: cannot write here"):
        check_dir_target(locked / "results")
    check_dir_target(tmp_path / "elsewhere")

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

"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "demo" / "scifact-mini"
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("GLOG_minloglevel", "2")
# Caches (converted weights, embeddings, exports) go to a fresh dir per test session, never the user's.
os.environ["EMBEDKIT_HOME"] = tempfile.mkdtemp(prefix="embedkit-test-home-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def embedkit_home(tmp_path, monkeypatch) -> Path:
    """Each test gets its own EMBEDKIT_HOME, so no test sees another's caches, exports or downloads."""
    home = tmp_path / "embedkit-home"
    monkeypatch.setenv("EMBEDKIT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_qwen2_template(tmp_path_factory) -> Path:
    """A tiny decoder embedder (see tests/inference/inference_support.py), built once for every test dir."""
    from tests.inference.inference_support import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("qwen2") / "model")


@pytest.fixture
def tiny_qwen2(tiny_qwen2_template, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_qwen2_template, tmp_path / "tiny-qwen2"))


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run `embedkit ARGS...` in-process through the real entry point (exit codes and error mapping included)."""
    from embedkit import cli

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["embedkit", *map(str, args)])
        capsys.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run

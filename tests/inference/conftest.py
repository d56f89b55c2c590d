"""Tiny models for the inference tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from inference_support import demo_texts


@pytest.fixture(scope="session")
def tiny_bert_template(tmp_path_factory) -> Path:
    from embedkit.modeling.tiny import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "model", demo_texts(), max_position=512)


@pytest.fixture
def tiny_bert(tiny_bert_template, tmp_path) -> Path:
    """A fresh copy per test, so exports beside it start empty."""
    return Path(shutil.copytree(tiny_bert_template, tmp_path / "tiny-bert"))


@pytest.fixture
def two_tower_model(tmp_path) -> Path:
    from embedkit.modeling.spec import EmbedderSpec
    from embedkit.modeling.tiny import build_tiny_bert

    root = tmp_path / "two-tower"
    build_tiny_bert(root / "query_model", demo_texts(), seed=1)
    build_tiny_bert(root / "passage_model", demo_texts(), seed=2)
    EmbedderSpec(pooling="cls", normalized=False, query_model="query_model", passage_model="passage_model").save(root)
    return root


@pytest.fixture
def read_only_dir():
    """Make a directory unwritable even for root (chmod, then the immutable attribute); undone afterwards."""
    made: list[Path] = []

    def make(path: Path) -> Path:
        path.chmod(0o555)
        made.append(path)
        probe = path / ".probe"
        try:
            probe.write_text("")
        except OSError:
            return path
        probe.unlink()
        if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
            return path
        pytest.skip("cannot make a directory read-only here (root without chattr)")

    yield make
    for path in made:
        if shutil.which("chattr"):
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        path.chmod(0o755)


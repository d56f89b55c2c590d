"""Fixtures for the CLI tests: a tiny BERT and a guard that no model is loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_support import corpus_texts


@pytest.fixture(scope="session")
def tiny_bert_template(tmp_path_factory) -> Path:
    from embedkit.modeling.tiny import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "model", corpus_texts(60))


@pytest.fixture
def tiny_bert(tiny_bert_template, tmp_path) -> Path:
    """A fresh copy per test, so exports beside it start empty."""
    return Path(shutil.copytree(tiny_bert_template, tmp_path / "tiny-bert"))


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if anything loads a model for encoding."""
    from embedkit.inference import Encoder

    def refuse(cls, *args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(Encoder, "from_model_dir", classmethod(refuse))

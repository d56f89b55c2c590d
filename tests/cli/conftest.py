"""Fixtures for the CLI tests: a tiny BERT, texts to encode, and a guard that no model is loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo" / "scifact-mini"


def corpus_texts(n: int) -> list[str]:
    """The demo corpus's first ``n`` documents: lengths from a few words to a few hundred tokens."""
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(line) for _, line in zip(range(n), handle, strict=False)]
    return [f"{d['title']} {d['text']}".strip() for d in docs]


# Short texts between long ones, so length-sorted batching would show if rows came back in batch order.
TEXTS = ["cells", *corpus_texts(3), "a short query about protein folding", *corpus_texts(6)[3:], "x"]


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

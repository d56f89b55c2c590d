"""Fixtures for the evaluation tests: tiny models, small BEIR directories, a counting encoder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from eval_support import WordHashEncoder, demo_texts, write_beir


@pytest.fixture(scope="session")
def tiny_model_template(tmp_path_factory) -> Path:
    from embedkit.modeling.tiny import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "model", demo_texts())


@pytest.fixture
def tiny_model(tiny_model_template, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_model_template, tmp_path / "tiny-model"))


TOPICS = ["protein folding kinase", "river delta sediment", "jazz saxophone improvisation", "volcanic ash eruption",
          "neural network training", "medieval castle siege", "coffee bean roasting", "solar panel efficiency"]


@pytest.fixture
def topic_data(tmp_path) -> Path:
    """8 topical documents, 8 queries each matching one document by its words (graded qrels)."""
    corpus = [(f"d{i}", f"title {i}", f"{topic} facts and details") for i, topic in enumerate(TOPICS)]
    queries = [(f"q{i}", topic) for i, topic in enumerate(TOPICS)]
    qrels = [(f"q{i}", f"d{i}", 2) for i in range(len(TOPICS))] + [("q0", "d4", 1)]
    return write_beir(tmp_path / "topics", corpus, queries, qrels)


@pytest.fixture
def word_encoder() -> WordHashEncoder:
    return WordHashEncoder()

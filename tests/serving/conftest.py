"""A tiny BERT with instructions on both sides, loaded once per module through the ONNX engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_support import corpus_texts


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from embedkit.modeling.spec import EmbedderSpec
    from embedkit.modeling.tiny import build_tiny_bert

    model = build_tiny_bert(tmp_path_factory.mktemp("tiny") / "model", corpus_texts(60))
    EmbedderSpec(pooling="mean", query_instruction="query: ", passage_instruction="passage: ").save(model)
    return model


@pytest.fixture(scope="session")
def encoder(tiny_model):
    import embedkit

    return embedkit.load(tiny_model)

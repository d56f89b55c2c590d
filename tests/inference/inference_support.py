"""Texts shared by the inference tests (a uniquely named module: every test dir has its own conftest)."""

from __future__ import annotations

import json
from pathlib import Path

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo" / "scifact-mini"


def demo_texts(n: int = 60) -> list[str]:
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(next(handle)) for _ in range(n)]
    return [f"{d['title']} {d['text']}".strip() for d in docs]


# Mixed lengths in one batch: padding must not leak into any pooling.
MIXED_TEXTS = ["a", "short query about cells", *demo_texts(6)]


def build_tiny_qwen2(out_dir: Path, hidden: int = 32, intermediate: int = 64) -> Path:
    """A random 2-layer Qwen2 (grouped key/value heads) with a byte-level BPE trained on the demo corpus,
    set up as a decoder embedder: last-token pooling, left padding, an instruction on the query side."""
    import paddle
    from paddlenlp.transformers import Qwen2Config, Qwen2Model

    from embedkit.modeling.tiny import build_byte_bpe_tokenizer

    out_dir.mkdir(parents=True)
    vocab_size = build_byte_bpe_tokenizer(out_dir, demo_texts(200), "Qwen2Tokenizer", eos="<|endoftext|>",
                                          pad="<|endoftext|>", vocab_size=600)
    paddle.seed(0)
    config = Qwen2Config(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, eos_token_id=0, pad_token_id=0, bos_token_id=0)
    Qwen2Model(config).save_pretrained(str(out_dir), safe_serialization=True)
    (out_dir / "embedkit.json").write_text(json.dumps({
        "pooling": "last", "normalized": True, "padding_side": "left",
        "query_instruction": "Instruct: find the abstract that supports the claim\nQuery: "}))
    return out_dir

"""Tiny randomly initialised BERT models (2 layers, hidden 32-64) for tests and the `tiny-cpu` recipe.

The vocabulary is built from the texts given (whole words, then single characters as ``##`` pieces), so a
tiny model needs no download and tokenises any text without unknown-token collapse on the demo data.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_vocab(texts: Iterable[str], size: int = 2000) -> list[str]:
    words = Counter()
    chars = set()
    for text in texts:
        lowered = text.lower()
        words.update(re.findall(r"\w+|[^\w\s]", lowered))
        chars.update(ch for ch in lowered if not ch.isspace())
    pieces = sorted(chars) + [f"##{ch}" for ch in sorted(chars)]
    budget = max(size - len(SPECIAL_TOKENS) - len(pieces), 0)
    common = [w for w, _ in words.most_common() if len(w) > 1][:budget]
    return SPECIAL_TOKENS + pieces + common


def build_tiny_bert(out_dir: str | Path, texts: Iterable[str], hidden: int = 32, layers: int = 2, heads: int = 2,
                    max_position: int = 512, seed: int = 0, vocab_size: int = 2000) -> Path:
    """Write a randomly initialised BERT (config, safetensors weights, vocab) to ``out_dir``."""
    import paddle
    from paddlenlp.transformers import BertConfig, BertModel, BertTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab(texts, vocab_size)
    (out_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    paddle.seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 4,
                        max_position_embeddings=max_position, pad_token_id=0)
    BertModel(config).save_pretrained(str(out_dir), safe_serialization=True)
    BertTokenizer(str(out_dir / "vocab.txt"), do_lower_case=True).save_pretrained(str(out_dir))
    return out_dir

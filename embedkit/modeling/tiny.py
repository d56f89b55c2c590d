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


def build_byte_bpe_tokenizer(out_dir: str | Path, texts: Iterable[str], tokenizer_class: str, eos: str,
                             bos: str | None = None, pad: str | None = None, extra_special: Iterable[str] = (),
                             vocab_size: int = 600) -> int:
    """Write a byte-level BPE trained on ``texts`` (a decoder LLM's tokenizer files, tiny); return its size.

    ``tokenizer_class`` is what ``tokenizer_config.json`` names (``Qwen2Tokenizer``, ``LlamaTokenizer``); with
    ``bos`` every text starts with it, as LLaMA's tokenizer does. ``extra_special`` become special tokens
    (LLARA's ``<s1>``..``<s16>``).
    """
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specials = list(dict.fromkeys([t for t in (eos, bos, pad) if t] + list(extra_special)))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(list(texts), trainer)
    if bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.token_to_id(bos))])
    tokenizer.save(str(out_dir / "tokenizer.json"))
    tokenizer.model.save(str(out_dir))  # vocab.json and merges.txt, which PaddleNLP's slow Qwen2 tokenizer reads
    (out_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": tokenizer_class, "eos_token": eos, "bos_token": bos, "pad_token": pad, "unk_token": None,
        "add_bos_token": bool(bos), "add_eos_token": False, "additional_special_tokens": list(extra_special),
        "model_max_length": 4096}), encoding="utf-8")
    return tokenizer.get_vocab_size()

"""Tiny random decoder checkpoints in the Hugging Face layouts of the LLM embedders, built with transformers (torch),
and the torch reference embeddings they are checked against (a uniquely named module: test dirs share sys.path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import paddle  # noqa: F401  (paddle before torch, or their bundled libraries clash)
import torch

from embedkit.modeling.tiny import build_byte_bpe_tokenizer

REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "demo" / "scifact-mini"


def demo_texts(n: int = 200) -> list[str]:
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(next(handle)) for _ in range(n)]
    return [f"{d['title']} {d['text']}".strip() for d in docs]


# Mixed lengths in one batch, from 1 token to ~200 (within every max length used), so padding dominates the short rows.
MIXED_TEXTS = ["a", "short query about cells", "What reduces the risk of stroke?", *(t[:500] for t in demo_texts(5))]


def save_hf_qwen3(out_dir: Path, tied: bool = True, causal_lm: bool = False, seed: int = 0) -> Path:
    """A 2-layer Qwen3 shaped like the real ones where it matters: 4 query heads sharing 2 key/value heads, an
    explicit head_dim (32) unequal to hidden/heads (16), a non-default rope_theta, biases absent."""
    import transformers

    vocab = build_byte_bpe_tokenizer(out_dir, demo_texts(), "Qwen2Tokenizer", eos="<|endoftext|>",
                                     pad="<|endoftext|>")
    torch.manual_seed(seed)
    config = transformers.Qwen3Config(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                                      max_position_embeddings=512, rope_theta=1_000_000.0,
                                      tie_word_embeddings=tied, eos_token_id=0, pad_token_id=0, bos_token_id=None)
    model_class = transformers.Qwen3ForCausalLM if causal_lm else transformers.Qwen3Model
    model = model_class(config)
    with torch.no_grad():  # RMSNorm weights start at 1: random ones make a wrong norm visible
        for name, param in model.named_parameters():
            if "norm" in name:
                param.uniform_(0.5, 1.5)
    model.eval().save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def left_padded(token_lists: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in token_lists)
    ids = torch.full((len(token_lists), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_lists), width), dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        ids[row, width - len(tokens):] = torch.tensor(tokens)
        mask[row, width - len(tokens):] = 1
    return ids, mask


def reference_last_token(model, token_lists: list[list[int]], pad_id: int) -> np.ndarray:
    """Hugging Face's recipe for last-token embedders: left padding, the final position's state, L2-normalised."""
    ids, mask = left_padded(token_lists, pad_id)
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    return torch.nn.functional.normalize(hidden[:, -1], p=2, dim=-1).numpy()

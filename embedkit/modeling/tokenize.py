"""Tokenisation with instructions, and dynamic padding (each batch padded to its own longest sequence)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def tokenize(tokenizer, texts: Sequence[str], max_len: int, instruction: str = "",
             append_eos: bool = False) -> list[dict[str, list[int]]]:
    """Token ids per text (no padding), instruction prefixed, truncated on the right to ``max_len``.

    ``append_eos``: end every sequence with the tokenizer's EOS token (within ``max_len``) unless it already does.
    """
    prefixed = [f"{instruction}{t}" for t in texts] if instruction else list(texts)
    encoded = tokenizer(
        prefixed,
        max_length=max_len,
        truncation=True,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids="token_type_ids" in getattr(tokenizer, "model_input_names", ()),
    )
    keys = [k for k in ("input_ids", "token_type_ids") if k in encoded]
    features = [{k: list(encoded[k][i]) for k in keys} for i in range(len(prefixed))]
    eos = tokenizer.eos_token_id if append_eos else None
    if eos is not None:
        for feature in features:
            if feature["input_ids"][-1:] != [eos]:
                for key in keys:
                    kept = feature[key][:max_len - 1]
                    feature[key] = kept + [eos if key == "input_ids" else (kept[-1] if kept else 0)]
    return features


def padded_width(longest: int, multiple_of: int = 8) -> int:
    """The width pad_batch gives a batch whose longest sequence has ``longest`` tokens."""
    return -(-longest // multiple_of) * multiple_of


def pad_batch(features: Sequence[dict[str, list[int]]], pad_id: int, padding_side: str = "right",
              multiple_of: int = 8) -> dict[str, np.ndarray]:
    """Pad to the longest sequence in the batch (rounded up to ``multiple_of``) and add the attention mask."""
    width = padded_width(max(len(f["input_ids"]) for f in features), multiple_of)
    batch = {"input_ids": np.full((len(features), width), pad_id, dtype="int64"),
             "attention_mask": np.zeros((len(features), width), dtype="int64")}
    if "token_type_ids" in features[0]:
        batch["token_type_ids"] = np.zeros((len(features), width), dtype="int64")
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        span = slice(0, n) if padding_side == "right" else slice(width - n, width)
        batch["input_ids"][row, span] = f["input_ids"]
        batch["attention_mask"][row, span] = 1
        if "token_type_ids" in batch:
            batch["token_type_ids"][row, span] = f["token_type_ids"]
    return batch

"""Tokenisation with instructions, and dynamic padding (each batch padded to its own longest sequence)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedkit.errors import UserError
from embedkit.modeling.prompts import split_template

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def tokenize(tokenizer, texts: Sequence[str], max_len: int, instruction: str = "",
             append_eos: bool = False) -> list[dict[str, list[int]]]:
    """Token ids per text (no padding), instruction applied, truncated on the right to ``max_len``.

    ``instruction`` is a prefix or a ``{text}`` template (`embedkit.modeling.prompts`): its suffix is tokenised on
    its own and appended after the text is truncated, so it is always there whole. ``append_eos``: end every
    sequence with the tokenizer's EOS token (within ``max_len``) unless it already does.
    """
    prefix, suffix = split_template(instruction)
    eos = tokenizer.eos_token_id if append_eos else None
    tail = tokenizer(suffix, add_special_tokens=False)["input_ids"] if suffix else []
    budget = max_len - len(tail) - (1 if tail and eos is not None else 0)
    if budget < 1:
        raise UserError(f"max length {max_len} leaves no room for the text: the prompt's suffix {suffix!r} takes "
                        f"{len(tail)} tokens")
    prefixed = [f"{prefix}{t}" for t in texts] if prefix else list(texts)
    encoded = tokenizer(
        prefixed,
        max_length=budget,
        truncation=True,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids="token_type_ids" in getattr(tokenizer, "model_input_names", ()),
    )
    keys = [k for k in ("input_ids", "token_type_ids") if k in encoded]
    features = [{k: list(encoded[k][i]) for k in keys} for i in range(len(prefixed))]
    for feature in features:
        if tail:
            _extend(feature, keys, tail)
        if eos is not None and feature["input_ids"][-1:] != [eos]:
            for key in keys:
                feature[key] = feature[key][:max_len - 1]
            _extend(feature, keys, [eos])
    return features


def instruction_tokens(tokenizer, instruction: str) -> int:
    """How many leading tokens of a text NV-Embed leaves out of its pooling for ``instruction``: the length of the
    prefix tokenised alone, without special tokens (``len(tokenizer.tokenize(instruction))``), masked from the
    first position on. With a BOS-adding tokenizer that covers BOS and the prefix but the prefix's last token,
    which for NV-Embed's prompt is the trailing space the text's first word absorbs when tokenised together."""
    prefix, _ = split_template(instruction)
    return len(tokenizer(prefix, add_special_tokens=False)["input_ids"]) if prefix else 0


def _extend(feature: dict[str, list[int]], keys: list[str], ids: list[int]) -> None:
    """Append ``ids``; token types continue the last segment's."""
    for key in keys:
        values = feature[key]
        feature[key] = values + (ids if key == "input_ids" else [values[-1] if values else 0] * len(ids))


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

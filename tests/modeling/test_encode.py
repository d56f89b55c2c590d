"""encode_texts batching: length-sorted batches, capped in texts and (when asked) in padded tokens."""

from __future__ import annotations

import numpy as np

from embedkit.modeling.encode import encode_texts


class _WordTokenizer:
    """One token per word, so lengths are exact and visible in the test."""

    pad_token_id = 0
    model_input_names = ("input_ids",)

    def __call__(self, texts, max_length, truncation, padding, return_attention_mask, return_token_type_ids):
        return {"input_ids": [[len(w) for w in t.split()][:max_length] for t in texts]}


TEXTS = [" ".join(["word"] * n) for n in (3, 40, 17, 64, 8, 64, 30, 1, 25, 9, 50, 12)]


def _recording_forward(shapes: list):
    def forward(batch):
        shapes.append(batch["input_ids"].shape)
        # depends on the row's own tokens only, so any batching must give the same answer
        return (batch["input_ids"] * batch["attention_mask"]).sum(axis=1, keepdims=True).astype(np.float32)

    return forward


def test_token_cap_bounds_every_batch_and_changes_no_embedding():
    capped, uncapped = [], []
    with_cap = encode_texts(TEXTS, _WordTokenizer(), _recording_forward(capped), 64, batch_size=5, max_tokens=128)
    without = encode_texts(TEXTS, _WordTokenizer(), _recording_forward(uncapped), 64, batch_size=5)
    assert np.array_equal(with_cap, without)
    assert np.array_equal(without[:, 0], [4 * min(len(t.split()), 64) for t in TEXTS])
    assert [rows for rows, _ in uncapped] == [5, 5, 2]
    assert all(rows <= 5 and rows * width <= 128 for rows, width in capped)
    assert capped[:2] == [(2, 64), (2, 56)]  # 64-token texts two at a time, then 50 and 40 (padded to 56)
    assert sum(rows for rows, _ in capped) == len(TEXTS)


def test_a_text_longer_than_the_cap_still_gets_its_own_batch():
    shapes = []
    out = encode_texts(TEXTS, _WordTokenizer(), _recording_forward(shapes), 64, batch_size=4, max_tokens=10)
    assert out.shape == (len(TEXTS), 1)
    assert shapes[0] == (1, 64) and all(rows >= 1 for rows, _ in shapes)

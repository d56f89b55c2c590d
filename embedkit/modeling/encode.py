"""Batch encoding shared by every inference engine: batches sorted by length, original order restored."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

from embedkit.modeling.tokenize import pad_batch, padded_width, tokenize

BatchForward = Callable[[dict[str, np.ndarray]], np.ndarray]


def encode_texts(texts: Sequence[str], tokenizer, forward: BatchForward, max_len: int, instruction: str = "",
                 batch_size: int = 32, padding_side: str = "right",
                 on_batch: Optional[Callable[[int], None]] = None, max_tokens: Optional[int] = None,
                 append_eos: bool = False) -> np.ndarray:
    """Embeddings [N, H] float32 for ``texts``.

    Texts are tokenised once, grouped into batches of similar length (longest first, so a batch that
    would not fit in memory fails early) and padded per batch; ``on_batch(n)`` reports progress. A batch
    holds at most ``batch_size`` texts and, when ``max_tokens`` is set, at most that many padded tokens
    (but always one text). ``append_eos``: see tokenize.
    """
    if not texts:
        raise ValueError("nothing to encode")
    features = tokenize(tokenizer, texts, max_len, instruction, append_eos)
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: Optional[np.ndarray] = None
    for idx in _batches(order, [len(f["input_ids"]) for f in features], batch_size, max_tokens):
        embeddings = forward(pad_batch([features[i] for i in idx], pad_id, padding_side))
        if out is None:
            out = np.empty((len(texts), embeddings.shape[1]), dtype=np.float32)
        out[idx] = embeddings
        if on_batch is not None:
            on_batch(len(idx))
    return out


def _batches(order: list[int], lengths: list[int], batch_size: int, max_tokens: Optional[int]):
    """Consecutive slices of ``order`` (longest first): the first text of a slice sets its padded width."""
    start = 0
    while start < len(order):
        rows = batch_size
        if max_tokens is not None:
            width = padded_width(lengths[order[start]])
            rows = min(batch_size, max(1, max_tokens // width))
        yield order[start:start + rows]
        start += rows


def dygraph_forward(embedder, side: str) -> BatchForward:
    """A BatchForward running the Paddle dygraph model (no gradients)."""
    import paddle

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        with paddle.no_grad():
            tensors = {k: paddle.to_tensor(v) for k, v in batch.items()}
            return embedder.embed(tensors, side).astype("float32").numpy()

    return forward

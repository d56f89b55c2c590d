"""How much each layer changes the hidden states of the calibration texts: one score per layer, low = removable.

For layer i, per token t: cos_t = <h_i, h_{i+1}> / (|h_i| |h_{i+1}|), NaN (a zero state) counted as 0.5 as the
original ShortGPT code does. ``bi`` scores 1 - cos_t (Block Influence, Men et al. 2024), ``angular``
arccos(cos_t)/π (Gromov et al. 2024). Padded positions are left out unless ``include_padding``; ``mean`` divides
the sum by the tokens counted, ``sum`` does not (the original's ``.sum()``, whose size grows with the data).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Optional

import numpy as np

from embedkit.choices import PruneMetric, Reduce, Side
from embedkit.compression.calibration import CalibrationText
from embedkit.modeling.architectures import hidden_states
from embedkit.modeling.tokenize import pad_batch, tokenize

BATCH_SIZE = 16


def token_scores(before: np.ndarray, after: np.ndarray, metric: str) -> np.ndarray:
    """Per-token scores [B, T] between two hidden states [B, T, H], computed in float64."""
    before, after = before.astype(np.float64), after.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (before * after).sum(-1) / (np.linalg.norm(before, axis=-1) * np.linalg.norm(after, axis=-1))
    cos = np.where(np.isfinite(cos), cos, 0.5)
    if metric == PruneMetric.ANGULAR:
        return np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi
    return 1.0 - cos


def calibration_batches(texts: list[CalibrationText], tokenizer, spec, max_length: Optional[int] = None,
                        batch_size: int = BATCH_SIZE) -> Iterator[dict[str, np.ndarray]]:
    """Padded batches of ``texts``, each tokenised as its side is (instruction, max length, EOS), by length."""
    features = []
    for side in (Side.QUERY, Side.PASSAGE, None):
        group = [t.text for t in texts if t.side == side]
        if not group:
            continue
        instruction = {Side.QUERY: spec.query_instruction, Side.PASSAGE: spec.passage_instruction}.get(side, "")
        limit = max_length or (spec.query_max_len if side == Side.QUERY else spec.passage_max_len)
        features += tokenize(tokenizer, group, limit, instruction, spec.appends_eos())
    features.sort(key=lambda f: -len(f["input_ids"]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(features), batch_size):
        yield pad_batch(features[start:start + batch_size], pad_id, spec.padding_side)


def layer_scores(backbone, batches: Iterable[dict[str, np.ndarray]], metric: str = PruneMetric.BI,
                 reduce: str = Reduce.MEAN, include_padding: bool = False) -> list[float]:
    """One score per layer of ``backbone`` over ``batches`` (from `calibration_batches`)."""
    import paddle

    totals: Optional[np.ndarray] = None
    tokens = 0
    for batch in batches:
        tensors = {k: paddle.to_tensor(v) for k, v in batch.items()}
        states = [s.astype("float32").numpy() for s in hidden_states(
            backbone, tensors["input_ids"], tensors["attention_mask"], tensors.get("token_type_ids"))]
        counted = np.ones_like(batch["attention_mask"], dtype=bool) if include_padding \
            else batch["attention_mask"].astype(bool)
        scores = np.array([token_scores(states[i], states[i + 1], metric)[counted].sum()
                           for i in range(len(states) - 1)])
        totals = scores if totals is None else totals + scores
        tokens += int(counted.sum())
    if totals is None:
        raise ValueError("no calibration batches")
    return (totals / tokens if reduce == Reduce.MEAN else totals).tolist()

"""Batches of (query, passage group) items → padded model inputs plus what the loss needs.

Each batch is padded to its own longest sequence (queries and passages separately), never to
``passage_max_len`` as the original example's ``padding="max_length"`` collator does; with length-grouped
batches (:mod:`embedkit.training.batching`) little padding is left. The collator also builds the
false-negative mask from text hashes — passage j is masked for query i when it is any of the positives of
i's example, except i's own sampled positive — and stacks teacher scores (NaN rows where an example has
none; the key is absent when no example in the batch has any). With ``icl`` (bge-en-icl), each query is
re-tokenised with in-context examples from the other pairs of its batch (`embedkit.training.icl`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

import numpy as np

from embedkit.losses import false_negative_mask
from embedkit.modeling.tokenize import pad_batch

if TYPE_CHECKING:
    from embedkit.training.icl import InBatchExamples


class EmbedCollator:
    def __init__(self, pad_id: int, group_size: int, padding_side: str = "right", with_token_type_ids: bool = False,
                 icl: Optional[InBatchExamples] = None):
        self.pad_id = pad_id
        self.icl = icl
        self.group_size = group_size
        self.padding_side = padding_side
        self.with_token_type_ids = with_token_type_ids

    def _pad(self, sequences: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        features = [{"input_ids": s} for s in sequences]
        batch = pad_batch(features, self.pad_id, self.padding_side)
        if self.with_token_type_ids:  # single-segment inputs: all zeros
            batch["token_type_ids"] = np.zeros_like(batch["input_ids"])
        return batch

    def __call__(self, items: Sequence[dict]) -> dict:
        passages = [p for item in items for p in item["passages"]]
        passage_hashes = np.concatenate([item["passage_hashes"] for item in items]).astype(np.int64)
        positive_hashes = [item["positive_hashes"] for item in items]
        batch = {
            "query": self._pad(self.icl(items) if self.icl is not None else [item["query"] for item in items]),
            "passage": self._pad(passages),
            "false_negatives": false_negative_mask(positive_hashes, passage_hashes, self.group_size),
            # Kept as numpy for LossInputs: only the cross-device loss reads them, to rebuild the mask globally.
            "query_positive_hashes": positive_hashes,
            "passage_hashes": passage_hashes.tolist(),
        }
        if any(item["teacher_scores"] is not None for item in items):
            missing = np.full(self.group_size, np.nan, dtype=np.float32)
            batch["teacher_scores"] = np.stack(
                [missing if item["teacher_scores"] is None else item["teacher_scores"] for item in items]
            ).astype(np.float32)
        return batch

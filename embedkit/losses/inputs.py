"""What the collator and trainer hand every loss besides the embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import paddle


@dataclass
class LossInputs:
    """Per-batch facts a loss needs to score ``q`` [B, D] against ``p`` [N, D], N = B·G.

    Passages are laid out group by group: query i's positive is passage i·G and its hard negatives are
    i·G+1 … i·G+G−1.

    - ``group_size``: G, passages per query (1 positive + G−1 negatives); 1 in in-batch-only mode.
    - ``false_negatives``: bool [B, N], True where passage j must never be scored as a negative of query i
      (built by :func:`embedkit.losses.false_negative_mask`). A query's own positive column is never masked.
    - ``teacher_scores``: float [B, G], the teacher's scores of each query's own group (the example's
      ``pos_scores``/``neg_scores`` in passage order), or None. A row holding NaN means "no teacher for this
      query": distillation skips it (mixed batches, or a rank without scores under cross-device gathering).
    - ``query_positive_hashes`` / ``passage_hashes``: the :func:`embedkit.losses.text_hash` values the mask
      was built from (per query: every positive of its example; per passage: its text). Only read with
      ``negatives_cross_device``, where every rank's queries are scored against every rank's passages and the
      mask has to be rebuilt for the gathered batch; set them whenever ``false_negatives`` is set.
    """

    group_size: int
    false_negatives: Optional[paddle.Tensor] = None
    teacher_scores: Optional[paddle.Tensor] = None
    query_positive_hashes: Optional[Sequence[set[int]]] = None
    passage_hashes: Optional[Sequence[int]] = None

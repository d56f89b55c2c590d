"""InfoNCE over each query's hard negatives and every other passage in the batch (the default loss).

    S = Q · Pᵀ / τ                     Q [B, D], P [N, D], S [B, N], N = B·G
    L = mean_i  −log softmax(S_i)[i·G]

Query i's positive is passage i·G; its own hard negatives (i·G+1 … i·G+G−1) and every other query's
passages are its negatives. Entries flagged in ``LossInputs.false_negatives`` are removed from the
softmax. τ defaults to 0.02 (``temperature``); without normalised embeddings τ is forced to 1, as in the
original example (see :func:`embedkit.losses.scores.effective_temperature`).

Karpukhin et al. 2020, "Dense Passage Retrieval for Open-Domain Question Answering" (DPR);
Xiao et al. 2023, "C-Pack: Packaged Resources To Advance General Chinese Embedding" (BGE).
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

from embedkit.losses.inputs import LossInputs
from embedkit.losses.scores import check_group_layout, dot_scores, mask_false_negatives, positive_columns


class HardNegativeInfoNCELoss(nn.Layer):
    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = temperature

    def forward(self, q: paddle.Tensor, p: paddle.Tensor, inputs: LossInputs) -> paddle.Tensor:
        check_group_layout(q, p, inputs.group_size)
        targets = positive_columns(q.shape[0], inputs.group_size)
        logits = mask_false_negatives(dot_scores(q, p) / self.temperature, inputs.false_negatives, targets)
        return F.cross_entropy(logits, targets)

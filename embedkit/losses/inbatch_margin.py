"""In-batch negatives with an additive margin on the positive (``use_inbatch_neg``).

    S = (Q · Pᵀ − m·E) / τ             Q [B, D], P [N, D], S [B, N], E[i, i·G] = 1 else 0
    L = mean_i  −log softmax(S_i)[i·G]

In in-batch mode the collator sends positives only (G = 1, so E = I and N = B): each query's negatives
are the other queries' positives. Subtracting m (``margin``, default 0.2) from the positive's similarity
only makes the loss demand that the positive win by at least m. Masked false negatives leave the softmax;
without normalised embeddings τ is forced to 1, as in the original example.

Yang et al. 2019, "Improving Multilingual Sentence Embedding using Bi-directional Dual Encoder with
Additive Margin Softmax" (AM-softmax for retrieval).
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

from embedkit.losses.inputs import LossInputs
from embedkit.losses.scores import check_group_layout, dot_scores, mask_false_negatives, positive_columns


class InBatchMarginLoss(nn.Layer):
    def __init__(self, temperature: float, margin: float):
        super().__init__()
        self.temperature = temperature
        self.margin = margin

    def forward(self, q: paddle.Tensor, p: paddle.Tensor, inputs: LossInputs) -> paddle.Tensor:
        check_group_layout(q, p, inputs.group_size)
        targets = positive_columns(q.shape[0], inputs.group_size)
        scores = dot_scores(q, p) - self.margin * F.one_hot(targets, p.shape[0])
        logits = mask_false_negatives(scores / self.temperature, inputs.false_negatives, targets)
        return F.cross_entropy(logits, targets)

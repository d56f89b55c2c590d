"""A sum of losses over the same embeddings, e.g. contrastive + distillation: L = Σ_k L_k(q, p, inputs)."""

from __future__ import annotations

import paddle
from paddle import nn

from embedkit.losses.inputs import LossInputs


class SumLoss(nn.Layer):
    def __init__(self, losses: list[nn.Layer]):
        super().__init__()
        if not losses:
            raise ValueError("SumLoss needs at least one loss")
        self.losses = nn.LayerList(losses)

    def forward(self, q: paddle.Tensor, p: paddle.Tensor, inputs: LossInputs) -> paddle.Tensor:
        total = self.losses[0](q, p, inputs)
        for loss in self.losses[1:]:
            total = total + loss(q, p, inputs)
        return total

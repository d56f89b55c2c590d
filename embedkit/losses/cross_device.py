"""Cross-device negatives (``negatives_cross_device``): score every rank's queries against every rank's
passages, then run the wrapped loss on the gathered batch.

    Q_all = [Q_0; …; Q_{W−1}]  [W·B, D],   P_all = [P_0; …; P_{W−1}]  [W·B·G, D]
    L = L_inner(Q_all, P_all, inputs_all),  gradient scaled by W (value unchanged)

Each query now sees W·B·G − 1 negatives instead of B·G − 1 at the cost of two all-gathers of the
embeddings plus one small object all-gather of hashes and teacher scores. The local slices keep their
gradients (see :func:`embedkit.losses.distributed.gather_with_grad`); the gradient is multiplied by W so
that after data parallel's averaging it equals single-process training on the concatenated batch (see
:func:`embedkit.losses.distributed.scale_gradient_for_data_parallel`). With one process it is the
wrapped loss unchanged.

Gathering raw or normalised embeddings is equivalent (normalisation is per row), so this wrapper goes
outermost, around Matryoshka and distillation, and gathers once per step.
"""

from __future__ import annotations

import paddle
from paddle import nn

from embedkit.losses.distributed import (
    gather_loss_inputs,
    gather_with_grad,
    scale_gradient_for_data_parallel,
    world_size,
)
from embedkit.losses.inputs import LossInputs


class CrossDeviceLoss(nn.Layer):
    def __init__(self, inner: nn.Layer):
        super().__init__()
        self.inner = inner

    def forward(self, q: paddle.Tensor, p: paddle.Tensor, inputs: LossInputs) -> paddle.Tensor:
        world = world_size()
        if world == 1:
            return self.inner(q, p, inputs)
        gathered_inputs = gather_loss_inputs(inputs, q.shape[0])
        loss = self.inner(gather_with_grad(q), gather_with_grad(p), gathered_inputs)
        return scale_gradient_for_data_parallel(loss, world)

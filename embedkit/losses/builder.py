"""``build_loss``: compose the training loss from the recipe."""

from __future__ import annotations

from typing import TYPE_CHECKING

from paddle import nn

from embedkit.losses.cross_device import CrossDeviceLoss
from embedkit.losses.distill_kl import DistillKLLoss
from embedkit.losses.hard_negative_infonce import HardNegativeInfoNCELoss
from embedkit.losses.inbatch_margin import InBatchMarginLoss
from embedkit.losses.matryoshka import MatryoshkaLoss
from embedkit.losses.scores import effective_temperature
from embedkit.losses.sum import SumLoss

if TYPE_CHECKING:
    from embedkit.config import TrainConfig


def build_loss(config: TrainConfig, hidden_size: int) -> nn.Layer:
    """The loss for ``config``, as ``forward(q [B, H], p [B·G, H], inputs: LossInputs) -> scalar``.

    Composition, innermost first:

    1. contrastive: :class:`InBatchMarginLoss` with ``use_inbatch_neg`` (positives only, G = 1), else
       :class:`HardNegativeInfoNCELoss`; τ = ``temperature``, forced to 1 when not ``normalized``;
    2. + :class:`DistillKLLoss` (weight ``distill.weight``) in hard-negative mode. It is a no-op on batches
       without teacher scores. In in-batch mode there is no group to distil over (G = 1), so it is left out
       and teacher scores are ignored; it is also left out when ``distill.weight`` is 0;
    3. :class:`MatryoshkaLoss` around that with ``use_matryoshka``: the trainer must then pass raw pooled
       embeddings (the wrapper normalises each slice); otherwise embeddings arrive normalised when
       ``normalized``;
    4. :class:`CrossDeviceLoss` outermost with ``negatives_cross_device``.

    ``config``'s values are checked by its schema, and its Matryoshka dims against the model by
    ``embedkit.training.preflight``, before any loss is built.
    """
    temperature = effective_temperature(config.temperature, config.normalized)
    if config.use_inbatch_neg:
        loss: nn.Layer = InBatchMarginLoss(temperature, config.margin)
    else:
        loss = HardNegativeInfoNCELoss(temperature)
        if config.distill.weight > 0:
            distill = DistillKLLoss(temperature, config.distill.weight, config.distill.teacher_temperature)
            loss = SumLoss([loss, distill])
    if config.use_matryoshka:
        loss = MatryoshkaLoss(loss, hidden_size, config.matryoshka_dims, config.matryoshka_loss_weights,
                              config.normalized)
    if config.negatives_cross_device:
        loss = CrossDeviceLoss(loss)
    return loss

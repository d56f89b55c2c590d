"""Training losses for bi-encoders, composed from the recipe by :func:`build_loss`.

One loss per module, each documented with its formula, shapes and paper:
``hard_negative_infonce`` (default), ``inbatch_margin`` (``use_inbatch_neg``), ``distill_kl`` (teacher
scores), ``matryoshka`` (``use_matryoshka``), ``cross_device`` (``negatives_cross_device``) and ``sum``.
Every loss is called as ``loss(q [B, D], p [B·G, D], inputs: LossInputs) -> scalar``.

Importing this package does not import paddle; ``build_loss`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedkit.losses.false_negatives import false_negative_mask, text_hash
from embedkit.losses.inputs import LossInputs

if TYPE_CHECKING:
    from paddle import nn

    from embedkit.config import TrainConfig

__all__ = ["LossInputs", "build_loss", "false_negative_mask", "text_hash"]


def build_loss(config: TrainConfig, hidden_size: int) -> nn.Layer:
    """The recipe's loss, ``forward(q, p, inputs) -> scalar`` (composition: :func:`embedkit.losses.builder.build_loss`)."""
    from embedkit.losses.builder import build_loss as build

    return build(config, hidden_size)

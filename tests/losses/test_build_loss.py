from __future__ import annotations

import numpy as np
import pytest

from embedkit.config import TrainConfig
from embedkit.losses import LossInputs, build_loss


def test_default_recipe_is_infonce_plus_distillation():
    from embedkit.losses.distill_kl import DistillKLLoss
    from embedkit.losses.hard_negative_infonce import HardNegativeInfoNCELoss
    from embedkit.losses.sum import SumLoss

    loss = build_loss(TrainConfig(), hidden_size=384)
    assert isinstance(loss, SumLoss)
    infonce, distill = loss.losses
    assert isinstance(infonce, HardNegativeInfoNCELoss) and infonce.temperature == 0.02
    assert isinstance(distill, DistillKLLoss) and distill.temperature == 0.02


def test_inbatch_matryoshka_cross_device_nest_in_that_order():
    from embedkit.losses.cross_device import CrossDeviceLoss
    from embedkit.losses.inbatch_margin import InBatchMarginLoss
    from embedkit.losses.matryoshka import MatryoshkaLoss

    config = TrainConfig(use_inbatch_neg=True, use_matryoshka=True, matryoshka_dims=[64, 128],
                         matryoshka_loss_weights=[1.0, 1.0], negatives_cross_device=True, margin=0.3)
    loss = build_loss(config, hidden_size=384)
    assert isinstance(loss, CrossDeviceLoss)
    assert isinstance(loss.inner, MatryoshkaLoss) and loss.inner.schedule[-1] == (384, 1.0)
    assert isinstance(loss.inner.inner, InBatchMarginLoss) and loss.inner.inner.margin == 0.3


def test_unnormalised_embeddings_use_temperature_one(batch):
    q, p, to_tensor = batch
    raw_q, raw_p = q * 3.0, p * 2.0
    losses = []
    for i in range(2):
        scores = np.array([raw_q[i] @ raw_p[j] for j in range(4)])  # τ = 1: no division
        losses.append(np.log(np.sum(np.exp(scores))) - scores[2 * i])
    loss = build_loss(TrainConfig(normalized=False, temperature=0.02), hidden_size=3)
    assert float(loss(to_tensor(raw_q), to_tensor(raw_p), LossInputs(group_size=2))) == pytest.approx(np.mean(losses), rel=1e-5)


def test_zero_distill_weight_leaves_distillation_out():
    from embedkit.config.schema import DistillConfig
    from embedkit.losses.hard_negative_infonce import HardNegativeInfoNCELoss

    loss = build_loss(TrainConfig(distill=DistillConfig(weight=0.0)), hidden_size=8)
    assert isinstance(loss, HardNegativeInfoNCELoss)

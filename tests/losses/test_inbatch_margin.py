from __future__ import annotations

import numpy as np
import pytest

from embedkit.losses import LossInputs


def test_matches_hand_computed_additive_margin_softmax(batch, cross_entropy_by_hand):
    from embedkit.losses.inbatch_margin import InBatchMarginLoss

    q, p, to_tensor = batch
    positives = p[[0, 2]]  # in-batch mode: one positive per query, G = 1
    tau, margin = 0.05, 0.2
    dots = np.array([[q[i] @ positives[j] for j in range(2)] for i in range(2)])
    assert np.allclose(dots, [[0.96, 0.64], [0.36, 0.96]])
    dots_with_margin = dots - margin * np.eye(2)  # the margin only lowers each query's own positive
    expected = cross_entropy_by_hand(dots_with_margin / tau, targets=[0, 1])

    loss = InBatchMarginLoss(tau, margin)(to_tensor(q), to_tensor(positives), LossInputs(group_size=1))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_margin_makes_the_loss_larger_and_mask_removes_a_duplicate(batch):
    import paddle

    from embedkit.losses.inbatch_margin import InBatchMarginLoss

    q, p, to_tensor = batch
    positives = p[[0, 2]]
    tau = 0.5
    plain = float(InBatchMarginLoss(tau, 0.0)(to_tensor(q), to_tensor(positives), LossInputs(group_size=1)))
    with_margin = float(InBatchMarginLoss(tau, 0.2)(to_tensor(q), to_tensor(positives), LossInputs(group_size=1)))
    assert with_margin > plain

    # Query 1's positive is also relevant to query 0: masked, query 0 has nothing left to contrast with.
    dots = np.array([[q[i] @ positives[j] for j in range(2)] for i in range(2)])
    row1 = (dots[1] - 0.2 * np.array([0.0, 1.0])) / tau
    expected = (0.0 + (np.log(np.sum(np.exp(row1))) - row1[1])) / 2
    mask = paddle.to_tensor(np.array([[False, True], [False, False]]))
    loss = InBatchMarginLoss(tau, 0.2)(to_tensor(q), to_tensor(positives), LossInputs(1, false_negatives=mask))
    assert float(loss) == pytest.approx(expected, rel=1e-5)

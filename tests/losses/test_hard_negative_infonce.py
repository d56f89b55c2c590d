from __future__ import annotations

import numpy as np
import pytest

from embedkit.losses import LossInputs


def test_matches_hand_computed_infonce(batch, cross_entropy_by_hand):
    from embedkit.losses.hard_negative_infonce import HardNegativeInfoNCELoss

    q, p, to_tensor = batch
    tau = 0.05
    # Query 0 against all 4 passages: 0.6·0.8+0.8·0.6 = 0.96, 0, 0.64, 0.6; query 1: 0.36, 0.8, 0.96, 0.
    dots = np.array([[q[i] @ p[j] for j in range(4)] for i in range(2)])
    assert np.allclose(dots, [[0.96, 0.0, 0.64, 0.6], [0.36, 0.8, 0.96, 0.0]])
    expected = cross_entropy_by_hand(dots / tau, targets=[0, 2])  # positives at i·G with G = 2

    loss = HardNegativeInfoNCELoss(tau)(to_tensor(q), to_tensor(p), LossInputs(group_size=2))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_masked_passages_leave_the_softmax(batch):
    from embedkit.losses.hard_negative_infonce import HardNegativeInfoNCELoss

    q, p, to_tensor = batch
    tau = 0.05
    dots = np.array([[q[i] @ p[j] for j in range(4)] for i in range(2)])
    # Query 0 must not be pushed away from passage 2; query 1 tries to mask its own positive (ignored).
    mask = np.array([[False, False, True, False], [False, False, True, False]])
    row0 = dots[0, [0, 1, 3]] / tau
    loss0 = np.log(np.sum(np.exp(row0))) - row0[0]
    row1 = dots[1] / tau
    loss1 = np.log(np.sum(np.exp(row1))) - row1[2]
    expected = (loss0 + loss1) / 2

    import paddle

    inputs = LossInputs(group_size=2, false_negatives=paddle.to_tensor(mask))
    loss = HardNegativeInfoNCELoss(tau)(to_tensor(q), to_tensor(p), inputs)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_fully_masked_rows_give_finite_loss_and_gradients_in_float32_logits(batch):
    """Logits are float32 whatever the embeddings' dtype (fp16 under AMP; CPU has no fp16 matmul, so float64
    stands in here), and the masked fill never turns into inf or NaN in the forward or backward pass."""
    import paddle

    from embedkit.losses.hard_negative_infonce import HardNegativeInfoNCELoss
    from embedkit.losses.scores import dot_scores

    q, p, to_tensor = batch
    q64, p64 = to_tensor(q, "float64"), to_tensor(p, "float64")
    assert dot_scores(q64, p64).dtype == paddle.float32
    # Everything is masked, including each query's own positive, which the loss protects anyway.
    mask = paddle.ones([2, 4], dtype="bool")
    loss = HardNegativeInfoNCELoss(0.02)(q64, p64, LossInputs(group_size=2, false_negatives=mask))
    loss.backward()
    assert float(loss) == pytest.approx(0.0, abs=1e-6)  # only the positive is left: −log 1
    assert np.isfinite(q64.grad.numpy()).all() and np.isfinite(p64.grad.numpy()).all()


def test_wrong_passage_count_is_rejected(batch):
    from embedkit.losses.hard_negative_infonce import HardNegativeInfoNCELoss

    q, p, to_tensor = batch
    with pytest.raises(ValueError, match="4 passages for 2 queries × group size 3"):
        HardNegativeInfoNCELoss(0.02)(to_tensor(q), to_tensor(p), LossInputs(group_size=3))

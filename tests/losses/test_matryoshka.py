from __future__ import annotations

import numpy as np
import pytest

from embedkit.losses import LossInputs


def infonce_by_hand(q: np.ndarray, p: np.ndarray, group_size: int, tau: float) -> float:
    losses = []
    for i in range(q.shape[0]):
        scores = np.array([q[i] @ p[j] for j in range(p.shape[0])]) / tau
        losses.append(np.log(np.sum(np.exp(scores))) - scores[i * group_size])
    return float(np.mean(losses))


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.sqrt(np.sum(rows**2, axis=1, keepdims=True))


RAW_Q = np.array([[1.0, 2.0, 0.5, -1.0], [0.0, 1.0, 2.0, 1.0]])
RAW_P = np.array([[1.0, 1.5, 0.0, -0.5], [0.0, -1.0, 1.0, 2.0], [0.5, 1.0, 1.5, 0.0], [2.0, 0.0, 0.0, 1.0]])


def test_weighted_mean_over_renormalised_prefixes_including_the_full_dimension(batch):
    from embedkit.losses.hard_negative_infonce import HardNegativeInfoNCELoss
    from embedkit.losses.matryoshka import MatryoshkaLoss

    _, _, to_tensor = batch
    tau = 0.1
    # dims [2] with weight 3: the full width 4 is appended with weight 1.
    loss_2 = infonce_by_hand(unit(RAW_Q[:, :2]), unit(RAW_P[:, :2]), 2, tau)
    loss_4 = infonce_by_hand(unit(RAW_Q), unit(RAW_P), 2, tau)
    expected = (3.0 * loss_2 + 1.0 * loss_4) / (3.0 + 1.0)

    wrapper = MatryoshkaLoss(HardNegativeInfoNCELoss(tau), hidden_size=4, dims=[2], weights=[3.0], normalized=True)
    assert wrapper.schedule == [(2, 3.0), (4, 1.0)]
    loss = wrapper(to_tensor(RAW_Q), to_tensor(RAW_P), LossInputs(group_size=2))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_unnormalised_prefixes_are_used_as_they_are(batch):
    from embedkit.losses.hard_negative_infonce import HardNegativeInfoNCELoss
    from embedkit.losses.matryoshka import MatryoshkaLoss

    _, _, to_tensor = batch
    expected = (infonce_by_hand(RAW_Q[:, :3], RAW_P[:, :3], 2, 1.0) + 2 * infonce_by_hand(RAW_Q, RAW_P, 2, 1.0)) / 3
    wrapper = MatryoshkaLoss(HardNegativeInfoNCELoss(1.0), 4, dims=[3, 4], weights=[1.0, 2.0], normalized=False)
    assert wrapper.schedule == [(3, 1.0), (4, 2.0)]  # the full width is listed, so nothing is appended
    assert float(wrapper(to_tensor(RAW_Q), to_tensor(RAW_P), LossInputs(2))) == pytest.approx(expected, rel=1e-5)

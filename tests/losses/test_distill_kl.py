from __future__ import annotations

import numpy as np
import pytest

from embedkit.losses import LossInputs


def kl_by_hand(teacher_row: np.ndarray, student_row: np.ndarray, teacher_temperature: float) -> float:
    teacher_logits = teacher_row / teacher_temperature
    p_teacher = np.exp(teacher_logits) / np.sum(np.exp(teacher_logits))
    log_p_student = student_row - np.log(np.sum(np.exp(student_row)))
    return float(np.sum(p_teacher * (np.log(p_teacher) - log_p_student)))


def test_matches_hand_computed_kl_over_each_querys_own_group(batch):
    import paddle

    from embedkit.losses.distill_kl import DistillKLLoss

    q, p, to_tensor = batch
    tau, weight, teacher_temperature = 0.5, 0.7, 2.0
    teacher = np.array([[0.0, 1.0], [0.5, 2.5]])  # [B, G]: scores of each query's own positive and negative
    # Student logits over the own group only: query 0 → passages 0, 1; query 1 → passages 2, 3.
    student = np.array([[q[0] @ p[0], q[0] @ p[1]], [q[1] @ p[2], q[1] @ p[3]]]) / tau
    assert np.allclose(student * tau, [[0.96, 0.0], [0.96, 0.0]])
    expected = weight * np.mean([kl_by_hand(teacher[i], student[i], teacher_temperature) for i in range(2)])

    inputs = LossInputs(group_size=2, teacher_scores=paddle.to_tensor(teacher, dtype="float32"))
    loss = DistillKLLoss(tau, weight, teacher_temperature)(to_tensor(q), to_tensor(p), inputs)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_queries_without_teacher_scores_are_skipped_with_finite_gradients(batch):
    import paddle

    from embedkit.losses.distill_kl import DistillKLLoss

    q, p, to_tensor = batch
    teacher = np.array([[0.0, 2.0], [np.nan, np.nan]])
    student0 = np.array([q[0] @ p[0], q[0] @ p[1]]) / 0.5
    expected = kl_by_hand(teacher[0], student0, 1.0)  # mean over the one query that has a teacher

    q_t, p_t = to_tensor(q), to_tensor(p)
    inputs = LossInputs(group_size=2, teacher_scores=paddle.to_tensor(teacher, dtype="float32"))
    loss = DistillKLLoss(0.5)(q_t, p_t, inputs)
    loss.backward()
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(q_t.grad.numpy()).all() and np.isfinite(p_t.grad.numpy()).all()
    # Query 1 had no teacher: nothing flows into it or its passages.
    assert np.allclose(q_t.grad.numpy()[1], 0) and np.allclose(p_t.grad.numpy()[2:], 0)


def test_no_teacher_scores_is_zero(batch):
    from embedkit.losses.distill_kl import DistillKLLoss

    q, p, to_tensor = batch
    assert float(DistillKLLoss(0.02)(to_tensor(q), to_tensor(p), LossInputs(group_size=2))) == 0.0


def test_student_that_matches_the_teacher_has_zero_loss(batch):
    import paddle

    from embedkit.losses.distill_kl import DistillKLLoss

    q, p, to_tensor = batch
    tau = 0.5
    student = np.array([[q[0] @ p[0], q[0] @ p[1]], [q[1] @ p[2], q[1] @ p[3]]]) / tau
    inputs = LossInputs(group_size=2, teacher_scores=paddle.to_tensor(student, dtype="float32"))
    assert float(DistillKLLoss(tau)(to_tensor(q), to_tensor(p), inputs)) == pytest.approx(0.0, abs=1e-6)

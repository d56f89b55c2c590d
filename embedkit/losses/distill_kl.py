"""Knowledge distillation from teacher scores over each query's own group.

    S_g[i, k] = q_i · p_{i·G+k} / τ                   S_g [B, G], student logits of the query's own passages
    p_t = softmax(T / T_t),  log p_s = log_softmax(S_g)   T [B, G] teacher scores (``pos_scores`` + ``neg_scores``)
    L = w · mean_i  Σ_k p_t[i,k] · (log p_t[i,k] − log p_s[i,k])       KL(teacher ‖ student)

τ is the contrastive temperature (so the student's distribution is the one the contrastive loss trains),
T_t is ``distill.teacher_temperature`` and w is ``distill.weight``. Unlike Hinton et al. there is no T²
factor: student and teacher are softened by different temperatures, so it would not restore the gradient
scale. The value is the true KL (≥ 0, zero when the student matches the teacher); its gradient equals
FlagEmbedding's soft cross-entropy. Rows with a non-finite teacher score are skipped (no teacher for that
query); the mean runs over the remaining rows, and the loss is 0 when none remain or no scores were given.

Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"; Ren et al. 2021, "RocketQAv2: A Joint
Training Method for Dense Passage Retrieval and Passage Re-ranking"; FlagEmbedding's KD loss.
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

from embedkit.losses.inputs import LossInputs
from embedkit.losses.scores import as_tensor, check_group_layout


class DistillKLLoss(nn.Layer):
    def __init__(self, temperature: float, weight: float = 1.0, teacher_temperature: float = 1.0):
        super().__init__()
        self.temperature = temperature
        self.weight = weight
        self.teacher_temperature = teacher_temperature

    def forward(self, q: paddle.Tensor, p: paddle.Tensor, inputs: LossInputs) -> paddle.Tensor:
        if inputs.teacher_scores is None:
            return paddle.zeros([], dtype="float32")
        check_group_layout(q, p, inputs.group_size)
        batch, group = q.shape[0], inputs.group_size
        teacher = as_tensor(inputs.teacher_scores).astype("float32")
        if list(teacher.shape) != [batch, group]:
            raise ValueError(f"teacher scores have shape {list(teacher.shape)}, expected [{batch}, {group}]")
        own_group = p.reshape([batch, group, -1])
        student = paddle.matmul(own_group, q.unsqueeze(-1)).squeeze(-1).astype("float32") / self.temperature
        finite = paddle.isfinite(teacher)
        has_teacher = finite.all(axis=1)
        # Zero the missing scores instead of letting NaN into the softmax: the row is dropped below, but a
        # NaN would still reach the gradient through 0·NaN.
        teacher = paddle.where(finite, teacher, paddle.zeros_like(teacher))
        log_teacher = F.log_softmax(teacher / self.teacher_temperature, axis=-1)
        kl = (log_teacher.exp() * (log_teacher - F.log_softmax(student, axis=-1))).sum(axis=-1)
        kl = paddle.where(has_teacher, kl, paddle.zeros_like(kl))
        rows = has_teacher.astype("float32").sum().clip(min=1.0)
        return self.weight * kl.sum() / rows

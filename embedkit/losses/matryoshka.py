"""Matryoshka representation learning: train every prefix of the embedding as an embedding of its own.

    L = Σ_k w_k · L_inner(norm(Q[:, :d_k]), norm(P[:, :d_k])) / Σ_k w_k

for each (d_k, w_k) in zip(``matryoshka_dims``, ``matryoshka_loss_weights``); norm is L2 normalisation
when ``normalized`` and the identity otherwise. L_inner is any loss of this package (contrastive, with or
without distillation), so every truncated embedding is trained exactly like the full one.

Input contract: the trainer hands this wrapper the *raw* pooled embeddings [B, H] and [N, H], not
normalised ones, because a prefix of a unit vector is not a unit vector; the wrapper normalises each
slice itself, the full dimension included.

- The full hidden size H is always trained: when it is not among the dims it is appended with weight 1
  (the original's default dims stop at 768, so a 4096-d LLM never trained its full embedding).
- A dim larger than H, a non-positive or repeated dim, a non-positive weight, or dims and weights of
  different lengths are refused before training starts, with the recipe's file and line, by the recipe schema
  (``embedkit.config.schema``) and the check against the base model (``embedkit.training.preflight``).
- The weighted losses are divided by the sum of the weights. The original summed them, which makes the
  loss (and so the effective learning rate) grow with the number of dims: switching Matryoshka on with
  six dims multiplied the gradient by ~6 and made its loss curve incomparable with a plain run.
  Normalising keeps the loss on the scale of one contrastive loss (FlagEmbedding also averages).

Kusupati et al. 2022, "Matryoshka Representation Learning".
"""

from __future__ import annotations

from collections.abc import Sequence

import paddle
from paddle import nn

from embedkit.losses.inputs import LossInputs
from embedkit.modeling.pooling import normalize


def matryoshka_schedule(dims: Sequence[int], weights: Sequence[float], hidden_size: int) -> list[tuple[int, float]]:
    """The (dim, weight) pairs to train, with the full hidden size appended when missing."""
    schedule = [(int(d), float(w)) for d, w in zip(dims, weights, strict=True)]
    if hidden_size not in dims:
        schedule.append((hidden_size, 1.0))
    return schedule


class MatryoshkaLoss(nn.Layer):
    def __init__(self, inner: nn.Layer, hidden_size: int, dims: Sequence[int], weights: Sequence[float],
                 normalized: bool):
        super().__init__()
        self.inner = inner
        self.hidden_size = hidden_size
        self.schedule = matryoshka_schedule(dims, weights, hidden_size)
        self.normalized = normalized

    def forward(self, q: paddle.Tensor, p: paddle.Tensor, inputs: LossInputs) -> paddle.Tensor:
        if q.shape[-1] != self.hidden_size or p.shape[-1] != self.hidden_size:
            raise ValueError(f"embeddings of width {q.shape[-1]}/{p.shape[-1]}, expected {self.hidden_size}")
        total = None
        for dim, weight in self.schedule:
            q_dim, p_dim = q[:, :dim], p[:, :dim]
            if self.normalized:
                q_dim, p_dim = normalize(q_dim), normalize(p_dim)
            term = weight * self.inner(q_dim, p_dim, inputs)
            total = term if total is None else total + term
        return total / sum(weight for _, weight in self.schedule)

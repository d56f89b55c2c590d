"""A fixed 2-query batch the loss tests compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

# Unit-length rows, chosen so every dot product is a short decimal.
QUERIES = np.array([[0.6, 0.8, 0.0],
                    [0.0, 0.6, 0.8]])
# Group size 2: query 0 → passages 0 (positive), 1 (hard negative); query 1 → passages 2 (positive), 3.
PASSAGES = np.array([[0.8, 0.6, 0.0],
                     [0.0, 0.0, 1.0],
                     [0.0, 0.8, 0.6],
                     [1.0, 0.0, 0.0]])


@pytest.fixture
def batch():
    import paddle

    def to_tensor(array, dtype="float32"):
        return paddle.to_tensor(array, dtype=dtype, stop_gradient=False)

    return QUERIES.copy(), PASSAGES.copy(), to_tensor



@pytest.fixture
def cross_entropy_by_hand():
    """The reference the loss tests compare against: plain numpy, no shared code with the losses."""

    def compute(scores: np.ndarray, targets: list[int]) -> float:
        """mean_i  −scores[i, t_i] + log Σ_j exp(scores[i, j]), one row at a time."""
        losses = []
        for i, target in enumerate(targets):
            log_partition = np.log(np.sum(np.exp(scores[i])))
            losses.append(log_partition - scores[i, target])
        return float(np.mean(losses))

    return compute

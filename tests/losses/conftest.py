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


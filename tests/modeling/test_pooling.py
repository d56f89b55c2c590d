import numpy as np
import paddle
import pytest

from embedkit.modeling.pooling import pool

HIDDEN = np.arange(2 * 4 * 3, dtype="float32").reshape(2, 4, 3)


def _pool(mask, method):
    return pool(paddle.to_tensor(HIDDEN), paddle.to_tensor(np.array(mask)), method).numpy()


@pytest.mark.parametrize(
    "mask, method, expected",
    [
        ([[1, 1, 0, 0], [1, 1, 1, 1]], "cls", [HIDDEN[0, 0], HIDDEN[1, 0]]),
        ([[0, 0, 1, 1], [1, 1, 1, 1]], "cls", [HIDDEN[0, 2], HIDDEN[1, 0]]),  # left padding
        ([[1, 1, 0, 0], [1, 1, 1, 1]], "last", [HIDDEN[0, 1], HIDDEN[1, 3]]),
        ([[0, 0, 1, 1], [0, 1, 1, 1]], "last", [HIDDEN[0, 3], HIDDEN[1, 3]]),  # left padding
        ([[1, 1, 0, 0], [0, 1, 1, 1]], "mean", [HIDDEN[0, :2].mean(0), HIDDEN[1, 1:].mean(0)]),
    ],
)
def test_pooling_picks_real_tokens_for_either_padding_side(mask, method, expected):
    np.testing.assert_allclose(_pool(mask, method), np.stack(expected), rtol=1e-6)


def test_unknown_pooling_is_rejected():
    with pytest.raises(ValueError, match="weighted_mean"):
        _pool([[1, 1, 1, 1], [1, 1, 1, 1]], "weighted_mean")

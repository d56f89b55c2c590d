import numpy as np
import paddle
import pytest

from embedkit.choices import Pooling
from embedkit.modeling.pooling import POOLINGS, pool

HIDDEN = np.arange(2 * 4 * 3, dtype="float32").reshape(2, 4, 3)


def _pool(mask, method, hidden=HIDDEN):
    return pool(paddle.to_tensor(hidden), paddle.to_tensor(np.array(mask)), method).numpy()


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


def _numpy_pool(hidden: np.ndarray, lengths: list[int], side: str, method: str) -> np.ndarray:
    """Each text's real states cut out by hand, then pooled: the definition, with no masks involved."""
    width = hidden.shape[1]
    rows = []
    for row, n in enumerate(lengths):
        real = hidden[row, :n] if side == "right" else hidden[row, width - n:]
        rows.append({"cls": real[0], "mean": real.mean(0), "last": real[-1], "last_8": real[-8:].mean(0)}[method])
    return np.stack(rows)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("method", list(POOLINGS))
def test_every_pooling_matches_numpy_on_mixed_lengths_padded_on_either_side(method, side):
    rng = np.random.default_rng(0)
    lengths = [1, 5, 8, 9, 13, 16]  # around the 8 of last_8: shorter, equal and longer texts
    width = 16
    hidden = rng.normal(size=(len(lengths), width, 6)).astype("float32")
    mask = np.zeros((len(lengths), width), dtype="int64")
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    if side == "left":
        mask = mask[:, ::-1].copy()
    hidden[mask == 0] = 1e3  # padded states must not leak into any pooling
    np.testing.assert_allclose(_pool(mask, method, hidden), _numpy_pool(hidden, lengths, side, method),
                               rtol=1e-5, atol=1e-6)


def test_every_pooling_choice_is_registered():
    assert set(POOLINGS) == set(Pooling)


def test_unknown_pooling_is_rejected():
    with pytest.raises(ValueError, match="weighted_mean"):
        _pool([[1, 1, 1, 1], [1, 1, 1, 1]], "weighted_mean")

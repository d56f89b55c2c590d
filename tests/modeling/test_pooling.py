import numpy as np
import paddle
import pytest

from embedkit.choices import Pooling
from embedkit.modeling.pooling import POOLING_BLOCKS, POOLINGS, LatentAttention, pool, pool_mask

STATELESS = [method for method in POOLINGS if method not in POOLING_BLOCKS]

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
@pytest.mark.parametrize("method", STATELESS)
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


@pytest.mark.parametrize("side", ["right", "left"])
def test_the_pool_mask_leaves_out_each_rows_first_real_tokens_on_either_padding_side(side):
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    expected = np.array([[0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1]])
    if side == "left":  # the same texts moved to the right end of their rows
        mask = np.array([[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1]])
        expected = np.array([[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1]])
    np.testing.assert_array_equal(pool_mask(paddle.to_tensor(mask), 2).numpy(), expected)
    np.testing.assert_array_equal(pool_mask(paddle.to_tensor(mask), 0).numpy(), mask)


def test_mean_pooling_can_skip_an_instruction_and_position_poolings_refuse_to():
    mask = [[1, 1, 1, 0], [0, 1, 1, 1]]
    np.testing.assert_allclose(pool(paddle.to_tensor(HIDDEN), paddle.to_tensor(np.array(mask)), "mean", skip=1).numpy(),
                               np.stack([HIDDEN[0, 1:3].mean(0), HIDDEN[1, 2:].mean(0)]), rtol=1e-6)
    with pytest.raises(ValueError, match="cannot leave instruction tokens out"):
        pool(paddle.to_tensor(HIDDEN), paddle.to_tensor(np.array(mask)), "last", skip=1)


def test_latent_attention_needs_its_block_and_ignores_padded_states():
    with pytest.raises(ValueError, match="latent-attention block"):
        _pool([[1, 1, 1, 1], [1, 1, 1, 1]], "latent_attention")
    paddle.seed(0)
    block = LatentAttention(num_latents_value=5, latent_dim=3, hidden_dim=3, num_cross_heads=2, cross_dim_head=4)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]])
    hidden = HIDDEN.copy()
    first = pool(paddle.to_tensor(hidden), paddle.to_tensor(mask), "latent_attention", block=block).numpy()
    hidden[0, 2:] = 1e3  # padding: each token attends to the latents alone, and padded ones are not averaged
    second = pool(paddle.to_tensor(hidden), paddle.to_tensor(mask), "latent_attention", block=block).numpy()
    np.testing.assert_allclose(first, second, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(first, axis=-1), 1.0, rtol=1e-6)  # output_normalize

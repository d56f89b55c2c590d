from __future__ import annotations

import random

import numpy as np
import pytest

from embedkit.errors import UserError
from embedkit.training.sampling import PassagePool, example_rng, sample_group

CORPUS = [f"other passage {i}" for i in range(50)]


def test_enough_negatives_draws_distinct_ones_from_the_example():
    neg = [f"neg {i}" for i in range(10)]
    group = sample_group(["pos a", "pos b"], neg, 8, random.Random(0), PassagePool(CORPUS))
    assert len(group.passages) == 8
    assert group.positive in {"pos a", "pos b"}
    assert set(group.negatives) <= set(neg) and len(set(group.negatives)) == 7
    assert group.filled == 0 and group.repeated == 0


def test_positive_is_a_random_choice_among_the_examples_positives():
    positives = {sample_group(["a", "b", "c"], ["n"], 2, random.Random(seed)).positive for seed in range(40)}
    assert positives == {"a", "b", "c"}


def test_too_few_negatives_are_used_once_then_filled_without_positives_or_repeats():
    pos = ["pos a", "pos b"]
    pool = PassagePool(["pos a", "pos b", "neg 1", *CORPUS[:10]])  # the pool holds the example's own texts too
    for seed in range(30):
        group = sample_group(pos, ["neg 1", "neg 2"], 8, random.Random(seed), pool)
        assert {"neg 1", "neg 2"} <= set(group.negatives)
        assert len(set(group.negatives)) == 7  # no repeats
        assert not set(group.negatives) & set(pos)
        assert group.filled == 5 and group.repeated == 0


def test_empty_negative_list_is_filled_instead_of_crashing():
    group = sample_group(["p"], [], 4, random.Random(1), PassagePool(CORPUS))
    assert len(group.negatives) == 3 and set(group.negatives) <= set(CORPUS) and group.filled == 3


def test_negatives_equal_to_a_positive_are_dropped():
    group = sample_group(["p", "q"], ["q", "n1", "n1", "n2"], 4, random.Random(0), PassagePool(CORPUS))
    assert "q" not in group.negatives and "p" not in group.negatives
    assert {"n1", "n2"} <= set(group.negatives) and len(set(group.negatives)) == 3


def test_tiny_pool_repeats_only_what_exists():
    # Two usable negatives in the whole data, G − 1 = 4: both are used, then repeated.
    group = sample_group(["p"], ["n1"], 5, random.Random(3), PassagePool(["p", "n1", "x"]))
    assert set(group.negatives) == {"n1", "x"} and group.filled == 1 and group.repeated == 2
    assert len(group.negatives) == 4


def test_no_usable_negative_anywhere_is_a_user_error():
    with pytest.raises(UserError, match="lower train_group_size or set use_inbatch_neg"):
        sample_group(["p"], ["p"], 4, random.Random(0), PassagePool(["p"]))
    with pytest.raises(UserError, match="no usable negative"):
        sample_group(["p"], [], 2, random.Random(0), None)


def test_group_size_one_never_calls_the_pool():
    def pool(k, rng):
        raise AssertionError("in-batch mode must not sample negatives")

    group = sample_group(["p"], [], 1, random.Random(0), pool, pos_scores=[2.0], neg_scores=[])
    assert group.passages == ["p"] and group.teacher_scores == [2.0]


def test_same_seed_epoch_and_index_give_the_same_group_and_epochs_differ():
    neg = [f"neg {i}" for i in range(20)]
    pool = PassagePool(CORPUS)

    def draw(seed, epoch, index):
        return sample_group(["a", "b"], neg[: index % 9], 8, example_rng(seed, epoch, index), pool).passages

    for index in range(10):
        assert draw(42, 1, index) == draw(42, 1, index)
    assert any(draw(42, 1, i) != draw(42, 2, i) for i in range(10))
    assert any(draw(42, 1, i) != draw(7, 1, i) for i in range(10))


def test_teacher_scores_follow_their_passages_and_fills_get_the_lowest_score():
    pos, pos_scores = ["p1", "p2"], [9.0, 8.0]
    neg, neg_scores = ["n1", "n2", "n3"], [5.0, 3.0, 4.0]
    by_text = dict(zip(pos + neg, pos_scores + neg_scores, strict=True))
    for seed in range(20):
        group = sample_group(pos, neg, 6, random.Random(seed), PassagePool(CORPUS), pos_scores, neg_scores)
        assert group.filled == 2
        for passage, score in zip(group.passages, group.teacher_scores, strict=True):
            assert score == (by_text[passage] if passage in by_text else 3.0)


def test_mismatched_teacher_scores_are_rejected():
    with pytest.raises(ValueError, match="teacher scores"):
        sample_group(["p"], ["n"], 2, random.Random(0), None, pos_scores=[1.0], neg_scores=[1.0, 2.0])


def test_passages_may_be_row_ids_and_the_pool_a_numpy_array():
    rows = np.arange(100, 120, dtype=np.int32)
    group = sample_group([3], [4], 6, random.Random(0), PassagePool(rows))
    assert group.passages[:2] == [3, 4]
    assert all(isinstance(r, int) and 100 <= r < 120 for r in group.negatives[1:])
    assert len(set(group.negatives)) == 5

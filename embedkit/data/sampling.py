"""Seeded subsampling for ``max_example_num_per_dataset``."""

from __future__ import annotations

import random


def chosen_indices(total: int, limit: int | None, seed: int, dataset: str) -> set[int] | None:
    """Which of ``total`` examples to keep when at most ``limit`` are wanted; None keeps them all.

    Each dataset draws from its own generator, seeded with ``seed`` and the dataset's name, so adding
    a file to a training directory does not change the examples drawn from the others.
    """
    if limit is None or total <= limit:
        return None
    return set(random.Random(f"{seed}/{dataset}").sample(range(total), limit))

"""Group sampling: one positive and G−1 negatives per training example, seeded per (seed, epoch, index).

Passages are whatever identifies them in the caller's data: texts, or row ids into a tokenised passage table.
Two passages are the same passage when they compare equal (rows must be interned by text for that to hold).

Differences from the original example, which draws ``random.sample(neg * ceil((G−1)/len(neg)), G−1)``:

- each distinct negative is used at most once; when an example has fewer than G−1, the rest is filled with
  random passages from the training data (``fill_pool``) instead of repeating the few it has (MMarco rows
  have one negative, so with G = 8 the original showed the same negative 7 times);
- an empty ``neg`` list is filled the same way instead of raising ZeroDivisionError;
- negatives equal to one of the example's positives are dropped, and the fill never adds one of the
  example's positives or a passage already in the group;
- teacher scores follow their passages. A filled passage has no teacher score; it gets the lowest score the
  teacher gave any of the example's passages. A random passage from another example is, as far as we know,
  no more relevant than the example's least relevant mined negative, and this keeps the query's
  distillation signal for its real passages instead of dropping the whole query. Fills are rare with
  teacher-scored data (those files usually carry many mined negatives).

Tiny pools: the fill asks ``fill_pool`` for candidates a few times and keeps those that are new and not a
positive. If the data simply does not hold G−1 distinct usable passages, the group is completed by repeating
negatives already chosen (duplicates, as in the original, but only then). If there is not a single usable
negative anywhere, ``UserError`` asks for a smaller ``train_group_size`` or ``use_inbatch_neg``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Optional, TypeVar

import numpy as np

from embedkit.errors import UserError

Passage = TypeVar("Passage")
FillPool = Callable[[int, random.Random], Sequence[Passage]]
# How many times the fill pool is asked for candidates before falling back to repeats; each request asks
# for twice what is missing, so only pools made mostly of the example's own passages run out.
FILL_ROUNDS = 4


def example_rng(seed: int, epoch: int, index: int) -> random.Random:
    """The generator for example ``index`` in ``epoch``: the same group on every process and every rerun.

    String seeds are hashed with SHA-512 by ``random``, independent of ``PYTHONHASHSEED``.
    """
    return random.Random(f"embedkit-group/{seed}/{epoch}/{index}")


class PassagePool(Generic[Passage]):
    """A fill pool over a fixed list (or numpy array) of passages: ``pool(k, rng)`` draws k distinct ones."""

    def __init__(self, passages: Sequence[Passage]):
        self.passages = passages

    def __call__(self, k: int, rng: random.Random) -> list[Passage]:
        indices = rng.sample(range(len(self.passages)), min(k, len(self.passages)))
        if isinstance(self.passages, np.ndarray):
            return self.passages[np.asarray(indices, dtype=np.int64)].tolist()
        return [self.passages[i] for i in indices]


@dataclass(frozen=True)
class Group(Generic[Passage]):
    """One query's passages: ``passages[0]`` is the positive, the rest its negatives."""

    passages: list[Passage]
    teacher_scores: Optional[list[float]]  # aligned with passages; None when the example has no scores
    filled: int  # negatives drawn from the fill pool
    repeated: int  # negatives used a second time because the data had too few distinct ones

    @property
    def positive(self) -> Passage:
        return self.passages[0]

    @property
    def negatives(self) -> list[Passage]:
        return self.passages[1:]


def sample_group(pos: Sequence[Passage], neg: Sequence[Passage], group_size: int, rng: random.Random,
                 fill_pool: Optional[FillPool] = None, pos_scores: Optional[Sequence[float]] = None,
                 neg_scores: Optional[Sequence[float]] = None) -> Group[Passage]:
    """A random positive and ``group_size − 1`` negatives (see the module docstring for the rules).

    ``pos_scores``/``neg_scores`` are the teacher's scores aligned with ``pos``/``neg``; pass both or neither.
    With ``group_size`` 1 (in-batch mode) only the positive is drawn and the fill pool is never called.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    if not pos:
        raise UserError("a training example has no positive passage")
    scored = pos_scores is not None and neg_scores is not None
    if scored and (len(pos_scores) != len(pos) or len(neg_scores) != len(neg)):
        raise ValueError(f"{len(pos_scores)}/{len(neg_scores)} teacher scores for {len(pos)} pos/{len(neg)} neg")

    positive_index = rng.randrange(len(pos))
    passages = [pos[positive_index]]
    scores = [pos_scores[positive_index]] if scored else None
    need = group_size - 1
    if need == 0:
        return Group(passages, scores, filled=0, repeated=0)

    excluded = set(pos)
    distinct: dict[Passage, Optional[float]] = {}  # first occurrence of each usable negative, with its score
    for i, passage in enumerate(neg):
        if passage not in excluded and passage not in distinct:
            distinct[passage] = neg_scores[i] if scored else None
    chosen = rng.sample(list(distinct), min(need, len(distinct)))
    fill = _fill(need - len(chosen), excluded | set(chosen), rng, fill_pool)
    negatives = chosen + fill
    repeated = need - len(negatives)
    if repeated and not negatives:
        raise UserError(f"cannot build a group of {group_size} passages: an example has no usable negative and "
                        "the training data holds no other passage to fill with; lower train_group_size or "
                        "set use_inbatch_neg")
    negatives += [rng.choice(negatives) for _ in range(repeated)]
    passages += negatives
    if scored:
        floor = min([*pos_scores, *neg_scores])
        scores += [distinct.get(passage, floor) for passage in negatives]
    return Group(passages, scores, filled=len(fill), repeated=repeated)


def _fill(missing: int, excluded: set, rng: random.Random, fill_pool: Optional[FillPool]) -> list:
    """Up to ``missing`` distinct passages from ``fill_pool`` that are not in ``excluded``."""
    fill: list = []
    if fill_pool is None:
        return fill
    seen = set(excluded)
    for _ in range(FILL_ROUNDS):
        if len(fill) == missing:
            break
        for passage in fill_pool(2 * (missing - len(fill)), rng):
            if passage not in seen:
                seen.add(passage)
                fill.append(passage)
                if len(fill) == missing:
                    break
    return fill

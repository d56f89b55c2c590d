"""False-negative masking: passages that are positives of a query must not be scored as its negatives.

In a batch of B queries × G passages, query i is contrasted against all N = B·G passages. When two
examples share a positive (duplicate queries, one passage relevant to both) or a mined "negative" is in
fact one of the example's positives, plain InfoNCE pushes a relevant passage away. Masking such entries
in the loss costs nothing at sampling time and works across devices (ST #3611/#3946 ask for exactly this
instead of a duplicate-free sampler).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def text_hash(text: str) -> int:
    """A stable signed int64 for ``text``: the first 8 bytes of its blake2b digest.

    Runs of whitespace are collapsed first, so texts differing only in spacing or line breaks collide on
    purpose. Unlike ``hash()``, the value is the same in every process and every run.
    """
    digest = hashlib.blake2b(" ".join(text.split()).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def false_negative_mask(query_positive_hashes: Sequence[set[int]], passage_hashes: Sequence[int],
                        group_size: int) -> np.ndarray:
    """bool [B, N]: True where passage j's hash is one of query i's positives, except its own positive i·G.

    ``query_positive_hashes[i]`` should hold the hashes of *every* positive of query i's example (not only
    the sampled one), so a second positive sitting in another query's group is masked too.
    """
    batch = len(query_positive_hashes)
    if len(passage_hashes) != batch * group_size:
        raise ValueError(f"{len(passage_hashes)} passage hashes for {batch} queries × group size {group_size}")
    passages = np.asarray(passage_hashes, dtype=np.int64)
    mask = np.zeros((batch, passages.shape[0]), dtype=bool)
    for i, positives in enumerate(query_positive_hashes):
        if positives:
            mask[i] = np.isin(passages, np.fromiter(positives, dtype=np.int64, count=len(positives)))
    mask[np.arange(batch), np.arange(batch) * group_size] = False
    return mask

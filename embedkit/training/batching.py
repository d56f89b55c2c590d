"""Length-grouped batches: examples of similar padded cost share a batch, so dynamic padding pays off.

Per epoch (seeded by ``(seed, epoch)``): shuffle all examples, cut the order into mega-batches of
``mega_batch_factor × global batch`` examples, sort each mega-batch by the length of the epoch's actual
groups (longest passage + query, see :meth:`TrainDataset.group_lengths`), cut it into global batches and
shuffle the batches. Batches therefore stay random in content and order while a batch's members have
similar lengths (the sentence-transformers/HF ``group_by_length`` recipe, applied to whole groups).

With several ranks each global batch is split into one per-rank batch; every rank gets the same number of
batches of the same size (the last global batch is filled up from the start of the epoch), as cross-device
gathering requires. Indices are yielded as ``(epoch, index)`` pairs for :class:`TrainDataset`.
"""

from __future__ import annotations

import math

import numpy as np
from paddle.io import DistributedBatchSampler


class LengthGroupedBatchSampler(DistributedBatchSampler):
    """Subclasses ``DistributedBatchSampler`` so PaddleNLP's Trainer calls ``set_epoch`` on it every epoch."""

    def __init__(self, dataset, batch_size: int, seed: int, num_replicas: int = 1, rank: int = 0,
                 mega_batch_factor: int = 50, drop_last: bool = False):
        super().__init__(dataset, batch_size=batch_size, num_replicas=num_replicas, rank=rank, shuffle=True,
                         drop_last=drop_last)
        self.seed = seed
        self.mega_batch_factor = mega_batch_factor
        self.epoch = 0

    def set_epoch(self, epoch: int = 0, consumed_samples: int = 0) -> None:
        self.epoch = epoch

    def global_batches(self, epoch: int) -> list[np.ndarray]:
        n = len(self.dataset)
        global_size = self.batch_size * self.nranks
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n)
        lengths = self.dataset.group_lengths(epoch)
        mega = global_size * self.mega_batch_factor
        sorted_order = np.concatenate([
            chunk[np.argsort(-lengths[chunk], kind="stable")] for chunk in np.array_split(order, range(mega, n, mega))
        ])
        batches = [sorted_order[i:i + global_size] for i in range(0, n, global_size)]
        if len(batches[-1]) < global_size:
            if self.drop_last and len(batches) > 1:
                batches.pop()
            elif self.nranks > 1:  # every rank needs a full, equal batch for the collective ops
                fill = np.resize(order, global_size - len(batches[-1]))
                batches[-1] = np.concatenate([batches[-1], fill])
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self):
        for batch in self.global_batches(self.epoch):
            mine = batch[self.local_rank * self.batch_size:(self.local_rank + 1) * self.batch_size]
            if len(mine):
                yield [(self.epoch, int(i)) for i in mine]

    def __len__(self) -> int:
        n = len(self.dataset)
        global_size = self.batch_size * self.nranks
        if self.drop_last and n >= global_size:
            return n // global_size
        return math.ceil(n / global_size)

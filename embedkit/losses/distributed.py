"""Cross-device negatives: gather every rank's embeddings and loss inputs so each query is scored
against the passages of the whole global batch.

All functions gather over the global process group: every rank must hold distinct training data (data
parallel, sharding). Tensor- and pipeline-parallel groups, whose ranks share a batch, are not supported.
Every rank must pass the same batch size; PaddleNLP's ``DistributedBatchSampler`` guarantees it (it pads
the dataset so every rank gets the same number of examples), and :func:`gather_loss_inputs` checks it
before any tensor is gathered, so a mismatch fails loudly instead of hanging.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import paddle
import paddle.distributed as dist

from embedkit.losses.false_negatives import false_negative_mask
from embedkit.losses.inputs import LossInputs


def world_size() -> int:
    return dist.get_world_size()


def gather_with_grad(t: paddle.Tensor) -> paddle.Tensor:
    """Concatenate ``t`` [b, ...] from every rank along dim 0 → [world·b, ...].

    ``all_gather`` returns copies without autograd; this rank's slice is replaced by ``t`` itself, so the
    loss still back-propagates into the local embeddings (other ranks' slices are constants here; each
    rank computes the gradient of its own slice). World size 1 returns ``t`` unchanged.
    """
    if world_size() == 1:
        return t
    gathered: list[paddle.Tensor] = []
    dist.all_gather(gathered, t.detach())
    gathered[dist.get_rank()] = t
    return paddle.concat(gathered, axis=0)


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order."""
    gathered: list[Any] = []
    dist.all_gather_object(gathered, obj)
    return gathered


def gather_loss_inputs(inputs: LossInputs, batch_size: int) -> LossInputs:
    """``inputs`` for the gathered batch [world·B queries, world·B·G passages].

    The false-negative mask cannot be gathered block by block: whether rank 1's passage is a positive of
    rank 0's query is known to neither rank's local mask. So the hashes are gathered and the mask is
    rebuilt for the global batch. Teacher scores are concatenated; a rank without them contributes NaN
    rows, which distillation skips. One object all-gather carries everything, on every step, so ranks
    whose batches differ (one with teacher scores, one without) still make the same collective calls.
    """
    local = {
        "batch_size": batch_size,
        "positive_hashes": None if inputs.query_positive_hashes is None else [set(h) for h in inputs.query_positive_hashes],
        "passage_hashes": None if inputs.passage_hashes is None else [int(h) for h in inputs.passage_hashes],
        "has_mask": inputs.false_negatives is not None,
        "teacher": None if inputs.teacher_scores is None else _numpy(inputs.teacher_scores).astype(np.float32),
    }
    ranks = gather_objects(local)
    sizes = [r["batch_size"] for r in ranks]
    if len(set(sizes)) > 1:
        raise RuntimeError(f"negatives_cross_device needs the same batch size on every rank, got {sizes}")
    return replace(
        inputs,
        false_negatives=_global_mask(ranks, inputs.group_size),
        teacher_scores=_global_teacher_scores(ranks, batch_size, inputs.group_size),
        query_positive_hashes=None if ranks[0]["positive_hashes"] is None else [h for r in ranks for h in r["positive_hashes"]],
        passage_hashes=None if ranks[0]["passage_hashes"] is None else [h for r in ranks for h in r["passage_hashes"]],
    )


def _numpy(value) -> np.ndarray:
    return value.numpy() if isinstance(value, paddle.Tensor) else np.asarray(value)


def _global_mask(ranks: list[dict], group_size: int):
    with_hashes = [r["positive_hashes"] is not None and r["passage_hashes"] is not None for r in ranks]
    if not any(with_hashes):
        if any(r["has_mask"] for r in ranks):
            raise ValueError("negatives_cross_device: a false-negative mask was given without "
                             "query_positive_hashes/passage_hashes, so it cannot be rebuilt for the gathered batch")
        return None
    if not all(with_hashes):
        raise ValueError("negatives_cross_device: some ranks sent text hashes and others did not")
    mask = false_negative_mask([h for r in ranks for h in r["positive_hashes"]],
                               [h for r in ranks for h in r["passage_hashes"]], group_size)
    return paddle.to_tensor(mask)


def _global_teacher_scores(ranks: list[dict], batch_size: int, group_size: int):
    if all(r["teacher"] is None for r in ranks):
        return None
    missing = np.full((batch_size, group_size), np.nan, dtype=np.float32)
    return paddle.to_tensor(np.concatenate([missing if r["teacher"] is None else r["teacher"] for r in ranks]))


def scale_gradient_for_data_parallel(loss: paddle.Tensor, world: int) -> paddle.Tensor:
    """The same loss value, with a gradient ``world`` times larger.

    With gathered embeddings each rank computes the full global loss L but back-propagates only into its
    own slice, so the per-rank parameter gradients sum to ∂L/∂θ; data parallel then *averages* them
    (paddle.DataParallel and PaddleNLP's fused all-reduce divide by the world size), leaving ∂L/∂θ / world.
    Multiplying the gradient by ``world`` (as Tevatron multiplies its loss) makes a W-rank run take
    exactly the steps of one process on the concatenated batch, so learning rates carry over. The value is
    kept unscaled (``L·W − L·(W−1)`` with the second term detached) so logged losses stay comparable.
    The original example does not rescale, which shrinks its gradients by the number of GPUs.
    """
    if world == 1:
        return loss
    return loss * world - (loss * (world - 1)).detach()

"""Cross-device negatives under a real 2-process launch equal single-process training on the joint batch.

The test launches this file with ``python -m paddle.distributed.launch --nproc_per_node 2`` (gloo on CPU);
each worker encodes its half of a fixed batch with a small linear encoder wrapped in ``paddle.DataParallel``,
runs the loss that ``build_loss`` composes with ``negatives_cross_device``, back-propagates and saves the
loss and the data-parallel-averaged gradients. The pytest process computes the same loss on the
concatenated batch in one process and compares.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from embedkit.config import TrainConfig
from embedkit.config.schema import DistillConfig
from embedkit.errors import UserError
from embedkit.losses import LossInputs, build_loss, false_negative_mask, text_hash
from embedkit.training.launch import launcher_command, relaunch_command, strip_launch_options

WORLD = 2
PER_RANK = 2  # queries per rank
FEATURES, HIDDEN = 6, 8


@dataclass
class Scenario:
    config: TrainConfig
    group_size: int
    teacher_ranks: tuple[int, ...]  # ranks whose batch carries teacher scores
    numpy_inputs: bool = False  # mask and teacher scores as the collator's numpy arrays instead of tensors


SCENARIOS = {
    "hard_negatives": Scenario(
        TrainConfig(negatives_cross_device=True, temperature=0.1, use_matryoshka=True, matryoshka_dims=[4],
                    matryoshka_loss_weights=[0.5], distill=DistillConfig(weight=0.7, teacher_temperature=2.0)),
        group_size=3, teacher_ranks=(0, 1)),
    "teacher_on_one_rank": Scenario(TrainConfig(negatives_cross_device=True, temperature=0.1), group_size=3,
                                    teacher_ranks=(0,), numpy_inputs=True),
    "in_batch": Scenario(TrainConfig(negatives_cross_device=True, temperature=0.1, use_inbatch_neg=True, margin=0.2),
                         group_size=1, teacher_ranks=()),
}


def global_batch(scenario: Scenario) -> dict:
    """The joint batch of all ranks: features, texts (with duplicates across ranks) and teacher scores."""
    g = scenario.group_size
    queries = WORLD * PER_RANK
    rng = np.random.default_rng(7)
    passage_texts = [f"pos {i}" if k == 0 else f"neg {i}.{k}" for i in range(queries) for k in range(g)]
    positives = [{f"pos {i}"} for i in range(queries)]
    positives[0].add("pos 2")  # query 0 (rank 0) also finds query 2's positive (rank 1) relevant
    positives[3].add("pos 1")  # and query 3 (rank 1) query 1's (rank 0)
    if g > 1:
        passage_texts[3 * g + 1] = "pos 0"  # query 3's mined negative is query 0's positive
    teacher = rng.normal(size=(queries, g)).astype(np.float32)
    for rank in range(WORLD):
        if rank not in scenario.teacher_ranks:
            teacher[rank * PER_RANK:(rank + 1) * PER_RANK] = np.nan
    return {
        "query_features": rng.normal(size=(queries, FEATURES)).astype(np.float32),
        "passage_features": rng.normal(size=(queries * g, FEATURES)).astype(np.float32),
        "positive_hashes": [{text_hash(t) for t in texts} for texts in positives],
        "passage_hashes": [text_hash(t) for t in passage_texts],
        "teacher": teacher if scenario.teacher_ranks else None,
    }


def encoder():
    """A linear encoder with fixed weights, standing in for the backbone + pooling."""
    import paddle

    class LinearEncoder(paddle.nn.Layer):
        def __init__(self, normalize: bool):
            super().__init__()
            self.linear = paddle.nn.Linear(FEATURES, HIDDEN)
            weights = np.random.default_rng(11).normal(size=(FEATURES + 1, HIDDEN)).astype(np.float32)
            self.linear.weight.set_value(weights[:FEATURES])
            self.linear.bias.set_value(weights[FEATURES])
            self.normalize = normalize

        def forward(self, queries, passages):
            q, p = self.linear(queries), self.linear(passages)
            if self.normalize:
                q, p = paddle.nn.functional.normalize(q, axis=-1), paddle.nn.functional.normalize(p, axis=-1)
            return q, p

    return LinearEncoder


def loss_and_gradients(model, forward, scenario: Scenario, batch: dict, queries: slice,
                       teacher: Optional[np.ndarray], masked: bool = True) -> dict:
    import paddle

    config, group_size = scenario.config, scenario.group_size
    convert = (lambda array: array) if scenario.numpy_inputs else paddle.to_tensor
    passages = slice(queries.start * group_size, queries.stop * group_size)
    positive_hashes = batch["positive_hashes"][queries] if masked else [set()] * (queries.stop - queries.start)
    passage_hashes = batch["passage_hashes"][passages]
    inputs = LossInputs(
        group_size=group_size,
        false_negatives=convert(false_negative_mask(positive_hashes, passage_hashes, group_size)),
        teacher_scores=None if teacher is None else convert(teacher),
        query_positive_hashes=positive_hashes,
        passage_hashes=passage_hashes,
    )
    q, p = forward(paddle.to_tensor(batch["query_features"][queries]), paddle.to_tensor(batch["passage_features"][passages]))
    loss = build_loss(config, HIDDEN)(q, p, inputs)
    loss.backward()
    return {"loss": float(loss), "weight_grad": model.linear.weight.grad.numpy(),
            "bias_grad": model.linear.bias.grad.numpy()}


def worker(out_dir: Path) -> None:
    import paddle
    import paddle.distributed as dist

    dist.init_parallel_env()
    rank = dist.get_rank()
    assert dist.get_world_size() == WORLD
    for name, scenario in SCENARIOS.items():
        batch = global_batch(scenario)
        mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        teacher = batch["teacher"][mine] if rank in scenario.teacher_ranks else None
        config = scenario.config
        model = encoder()(normalize=config.normalized and not config.use_matryoshka)
        result = loss_and_gradients(model, paddle.DataParallel(model), scenario, batch, mine, teacher)
        np.savez(out_dir / f"{name}.rank{rank}.npz", **result)


def single_process(name: str, masked: bool = True) -> dict:
    scenario = SCENARIOS[name]
    batch = global_batch(scenario)
    config = scenario.config
    model = encoder()(normalize=config.normalized and not config.use_matryoshka)
    return loss_and_gradients(model, model, scenario, batch, slice(0, WORLD * PER_RANK), batch["teacher"], masked)


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    import paddle

    from embedkit.training.launch import launcher_env

    if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() < WORLD:
        pytest.skip("a CUDA build launches one worker per GPU; this machine has fewer than 2")
    out = tmp_path_factory.mktemp("cross_device")
    command = launcher_command(WORLD, None, [sys.executable, "-u", __file__, str(out)], log_dir=str(out / "logs"))
    env = launcher_env(environ={**os.environ, "GLOG_minloglevel": "2"})
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    logs = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in sorted((out / "logs").glob("workerlog.*")))
    assert run.returncode == 0, f"launcher failed ({run.returncode}):\n{run.stderr[-3000:]}\n{logs}"
    return {name: [dict(np.load(out / f"{name}.rank{r}.npz")) for r in range(WORLD)] for name in SCENARIOS}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_two_ranks_match_one_process_on_the_joint_batch(two_process_results, name):
    reference = single_process(name)
    # The cross-rank false negatives must matter, or a wrong mask would go unnoticed.
    assert abs(single_process(name, masked=False)["loss"] - reference["loss"]) > 1e-3
    for rank, result in enumerate(two_process_results[name]):
        assert float(result["loss"]) == pytest.approx(reference["loss"], abs=1e-5), f"rank {rank}"
        # The gradients after data parallel's averaging: identical on every rank, equal to one process's.
        np.testing.assert_allclose(result["weight_grad"], reference["weight_grad"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(result["bias_grad"], reference["bias_grad"], rtol=1e-4, atol=1e-5)


def test_masks_cross_ranks_in_the_joint_batch():
    """The scenarios really contain cross-rank false negatives, so the comparison above exercises them."""
    batch = global_batch(SCENARIOS["hard_negatives"])
    mask = false_negative_mask(batch["positive_hashes"], batch["passage_hashes"], 3)
    assert mask[0, 6] and mask[0, 10]  # query 0 (rank 0) vs passages on rank 1
    assert mask[3, 3]  # query 3 (rank 1) vs query 1's positive (rank 0)


def test_relaunch_command_reruns_the_cli_without_launch_options():
    command = relaunch_command(2, None, ["train", "--recipe", "r.yaml", "--nproc", "2", "--json"], log_dir="runs/x/logs")
    launch_at = command.index("paddle.distributed.launch")
    assert command[launch_at + 1:launch_at + 5] == ["--nproc_per_node", "2", "--max_restart", "0"]
    assert command[command.index("--log_dir") + 1] == "runs/x/logs"
    assert command[-6:] == ["-m", "embedkit.cli", "train", "--recipe", "r.yaml", "--json"]
    assert command[0] == sys.executable and command[-8] == sys.executable


def test_gpus_become_launcher_devices():
    command = relaunch_command(2, "1, 3,5", ["train", "--gpus=1,3,5", "--nproc=2"])
    assert command[command.index("--devices") + 1] == "1,3"
    assert "--gpus=1,3,5" not in command and "--nproc=2" not in command


@pytest.mark.parametrize(("nproc", "gpus", "message"), [
    (0, None, "at least 1"),
    (4, "0,1", "needs 4 GPUs but --gpus lists 2"),
    (2, "a,b", "comma-separated device ids"),
])
def test_bad_launch_options_are_user_errors(nproc, gpus, message):
    with pytest.raises(UserError, match=message):
        launcher_command(nproc, gpus, ["x"])


def test_strip_launch_options_keeps_everything_else():
    assert strip_launch_options(["--nproc", "4", "--nprocs-like", "--gpus", "0", "a"]) == ["--nprocs-like", "a"]


if __name__ == "__main__":
    worker(Path(sys.argv[1]))

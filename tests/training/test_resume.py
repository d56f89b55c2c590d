"""Kill a run mid-way, rerun the same command: it resumes and ends exactly where an uninterrupted run does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from embedkit.retrieval.checkpoints import is_complete_checkpoint, last_checkpoint
from embedkit.training.checkpoints import STAGING_PREFIX, prepare_run_dir
from tests.conftest import DEMO_DATA, REPO


def _command(output_dir: Path) -> list[str]:
    return [sys.executable, "-m", "embedkit.cli", "train", "--model", "tiny-bert", "--data", str(DEMO_DATA),
            "--output-dir", str(output_dir), "--set", "max_steps=8", "--set", "save_steps=2",
            "--set", "train_group_size=4", "--set", "per_device_train_batch_size=8", "--set", "passage_max_len=32",
            "--set", "learning_rate=1e-3", "--set", "logging_steps=1", "--quiet", "--json"]


def _run(output_dir: Path) -> dict:
    done = subprocess.run(_command(output_dir), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _weights(run: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(run / "model.safetensors"))


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    straight = _run(tmp_path / "straight")

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(_command(interrupted), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (interrupted / "checkpoint-4").is_dir() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert (interrupted / "checkpoint-4").is_dir()
    assert not (interrupted / "model.safetensors").exists(), "killed too late: the run had finished"

    resumed = _run(interrupted)
    assert resumed["resumed_from"] is not None
    assert int(Path(resumed["resumed_from"]).name.split("-")[1]) >= 4
    assert resumed["global_step"] == straight["global_step"] == 8
    a, b = _weights(tmp_path / "straight"), _weights(interrupted)
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-5
    # The loss curve spans the whole run, across the kill.
    history = json.loads((interrupted / "checkpoint-8" / "loss_history.json").read_text())
    assert [e["step"] for e in history] == list(range(1, 9))


def test_half_written_checkpoints_are_never_resumed(tmp_path):
    run = tmp_path / "run"
    complete = run / "checkpoint-2"
    complete.mkdir(parents=True)
    for name in ("embedkit.json", "trainer_state.json"):
        (complete / name).write_text("{}")
    (run / "checkpoint-4").mkdir()  # e.g. copied by hand, or written by a tool without staging
    (run / "checkpoint-4" / "embedkit.json").write_text("{}")
    staging = run / f"{STAGING_PREFIX}abc"  # what a kill during a save leaves
    (staging / "checkpoint-6").mkdir(parents=True)
    assert is_complete_checkpoint(complete) and not is_complete_checkpoint(run / "checkpoint-4")
    assert last_checkpoint(run) == complete
    assert prepare_run_dir(run, overwrite=False) == complete
    assert not staging.exists()


def test_overwrite_starts_afresh(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint-2").mkdir(parents=True)
    for name in ("embedkit.json", "trainer_state.json"):
        (run / "checkpoint-2" / name).write_text("{}")
    (run / "model.safetensors").write_bytes(b"x")
    os.makedirs(run / ".embedkit-export" / "onnx-shared")
    os.makedirs(run / "logs" / "launch")
    assert prepare_run_dir(run, overwrite=True) is None
    assert sorted(p.name for p in run.iterdir()) == ["logs"] and (run / "logs" / "launch").is_dir()

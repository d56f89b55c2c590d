"""Fault injection on tiny training runs: kills, damaged checkpoints, a full disk, dangerous output dirs.

Every case checks the two things that must never happen: the user's files are lost (hashes before and after),
or a resumed run ends anywhere but where an uninterrupted run does (every tensor equal, difference 0.0).
One kill runs in the fast suite; five kills at seeded random steps are behind the slow marker.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embedkit.console import Output
from embedkit.errors import UserError
from embedkit.training.checkpoints import FINAL_STAGING_PREFIX, STAGING_PREFIX
from tests.conftest import DEMO_DATA, REPO

MAX_STEPS = 8
SETS = ["max_steps=8", "save_steps=2", "train_group_size=4", "per_device_train_batch_size=8", "passage_max_len=32",
        "learning_rate=1e-3", "logging_steps=1",
        "keep_optimizer_state=true", "save_total_limit=3"]  # runs here are resumed past their end, from older saves


def command(output_dir: Path, *sets: str, model: str = "tiny-bert", flags: tuple[str, ...] = ()) -> list[str]:
    options = [arg for key_value in [*SETS, *sets] for arg in ("--set", key_value)]
    return [sys.executable, "-m", "embedkit.cli", "train", "--model", model, "--data", str(DEMO_DATA),
            "--output-dir", str(output_dir), *options, *flags]


def run(cmd: list[str], home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=dict(os.environ, EMBEDKIT_HOME=str(home)), capture_output=True,
                          text=True, timeout=300)


def train_here(output_dir: Path, *sets: str, **kwargs):
    """The same run as `command` would start, in this process (faster than a subprocess)."""
    from embedkit.training.command import build_config
    from embedkit.training.run import train

    config = build_config(None, [*SETS, *sets], "tiny-bert", str(DEMO_DATA), str(output_dir))
    return train(config, out=Output(verbosity=0), **kwargs)


def max_difference(a: Path, b: Path) -> float:
    from safetensors.numpy import load_file

    first, second = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert first.keys() == second.keys()
    return max(float(np.abs(first[k] - second[k]).max()) for k in first)


def tree_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        digest.update(str(path.relative_to(directory)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def kill_at_step(cmd: list[str], home: Path, step: int, delay: float) -> None:
    """SIGKILL the run ``delay`` seconds after it reports optimisation step ``step`` (mid-step or mid-save)."""
    process = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, EMBEDKIT_HOME=str(home)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if line.startswith(f"step {step}/"):
            time.sleep(delay)
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()


def no_staging_left(run_dir: Path) -> bool:
    """No checkpoint or final-model staging dir, no atomic write's temporary, anywhere in the run dir."""
    return not any(p.name.startswith((STAGING_PREFIX, FINAL_STAGING_PREFIX)) or p.name.endswith(".tmp")
                   for p in run_dir.rglob("*"))


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def straight(tmp_path_factory, shared_home) -> Path:
    """The uninterrupted run every resumed one must equal."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    done = run(command(run_dir, flags=("--quiet",)), shared_home)
    assert done.returncode == 0, done.stderr[-2000:]
    return run_dir


def resume_and_compare(cmd: list[str], home: Path, run_dir: Path, straight: Path) -> None:
    assert not (run_dir / "model.safetensors").exists(), "killed too late: the run had finished"
    done = run(cmd, home)
    assert done.returncode == 0, done.stderr[-2000:]
    assert max_difference(straight, run_dir) == 0.0
    assert no_staging_left(run_dir)


# --- kills ---------------------------------------------------------------------------------------------------

def test_kill_mid_run_resumes_to_identical_weights(tmp_path, straight):
    # A fresh home: the killed run builds tiny-bert, the resumed one finds it built (parameter names must match).
    home, run_dir = tmp_path / "home", tmp_path / "run"
    cmd = command(run_dir)
    kill_at_step(cmd, home, step=5, delay=0.05)
    resume_and_compare(cmd, home, run_dir, straight)
    # The loss curve spans the whole run, across the kill.
    history = json.loads((run_dir / "checkpoint-8" / "loss_history.json").read_text())
    assert [entry["step"] for entry in history] == list(range(1, MAX_STEPS + 1))


# Five distinct steps, each with a delay after it (mid-step or mid-save), seeded so a failure can be rerun.
# Up to step 6 and 0.15 s after it: later, steps 7-8 and the final save can finish before the kill lands.
_KILL_RNG = random.Random(10)
KILLS = [(step, round(_KILL_RNG.uniform(0.0, 0.15), 3)) for step in _KILL_RNG.sample(range(1, MAX_STEPS - 1), 5)]


@pytest.mark.slow
@pytest.mark.parametrize("step, delay", KILLS, ids=[f"step{s}+{d}s" for s, d in KILLS])
def test_kill_at_random_steps_resumes_to_identical_weights(tmp_path, shared_home, straight, step, delay):
    run_dir = tmp_path / "run"
    cmd = command(run_dir)
    kill_at_step(cmd, shared_home, step, delay)
    resume_and_compare(cmd, shared_home, run_dir, straight)


def test_kill_before_the_first_checkpoint_then_the_same_command_continues(tmp_path, shared_home, straight):
    run_dir = tmp_path / "run"
    cmd = command(run_dir, f"eval.data={DEMO_DATA}", "eval.split=test", "save_steps=8", flags=("--quiet",))
    process = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, EMBEDKIT_HOME=str(shared_home)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (run_dir / "eval_before.json").is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (run_dir / "eval_before.json").is_file() and not list(run_dir.glob("checkpoint-*"))
    resume_and_compare(cmd, shared_home, run_dir, straight)


def test_a_config_error_after_the_before_eval_then_the_fixed_command_continues(tmp_path, capsys):
    run_dir = tmp_path / "run"
    evaluation = (f"eval.data={DEMO_DATA}", "eval.split=test")
    with pytest.raises(UserError, match="temperature"):
        train_here(run_dir, *evaluation, "temperature=0")
    result = train_here(run_dir, *evaluation)
    assert result.resumed_from is None and result.global_step == MAX_STEPS


# --- damaged checkpoints -------------------------------------------------------------------------------------

def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {
    "truncated-model": (lambda c: _truncate(c / "model.safetensors"), "model.safetensors has 1000 bytes"),
    "missing-optimizer": (lambda c: (c / "optimizer.pdopt").unlink(), "optimizer.pdopt is missing"),
    "missing-scheduler": (lambda c: (c / "scheduler.pdparams").unlink(), "scheduler.pdparams is missing"),
    "invalid-trainer-state": (lambda c: (c / "trainer_state.json").write_text("{not json"), "trainer_state.json has"),
    "manifest-mismatch": (lambda c: _flip_a_byte(c / "model.safetensors"),
                          "model.safetensors does not match its checksum"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_newest_checkpoint_resumes_from_the_previous_one(tmp_path, straight, capsys, damage):
    run_dir = tmp_path / "run"
    shutil.copytree(straight, run_dir)
    shutil.rmtree(run_dir / "checkpoint-8")  # as if killed after checkpoint-6 was saved
    harm, reason = DAMAGES[damage]
    harm(run_dir / "checkpoint-6")
    capsys.readouterr()
    result = train_here(run_dir)
    err = capsys.readouterr().err
    assert f"{run_dir / 'checkpoint-6'}: not resumed from: {reason}" in " ".join(err.split())
    assert result.resumed_from == str(run_dir / "checkpoint-4") and "settings changed" not in err
    assert max_difference(straight, run_dir) == 0.0


def test_changed_learning_rate_on_resume_is_named(tmp_path, straight, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(straight, run_dir)
    shutil.rmtree(run_dir / "checkpoint-8")
    capsys.readouterr()
    train_here(run_dir, "learning_rate=2e-3")
    err = " ".join(capsys.readouterr().err.split())
    assert "resuming with settings changed since this checkpoint was saved: learning_rate: 0.001 -> 0.002" in err


# --- the user's files ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["the model dir", "inside the model dir", "holding the model dir"])
def test_overwrite_with_output_dir_at_the_model_is_refused_and_the_model_untouched(run_cli, tmp_path, straight,
                                                                                  where):
    holder = tmp_path / "holder"
    model = holder / "model"
    model.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(straight / name, model / name)
    output = {"the model dir": model, "inside the model dir": model / "run", "holding the model dir": holder}[where]
    before = tree_hash(holder)
    result = run_cli("train", "--data", DEMO_DATA, *[a for s in SETS for a in ("--set", s)],
                     "--set", f"model_name_or_path={model}", "--set", f"output_dir={output}", "--overwrite", "-q")
    assert result.exit_code == 2 and f"{output}: output_dir " in result.stderr
    assert tree_hash(holder) == before  # nothing written, nothing removed


# --- a full disk ---------------------------------------------------------------------------------------------

def test_no_space_during_a_checkpoint_save_is_a_user_error_with_nothing_partial_left(tmp_path, monkeypatch):
    from embedkit.training.trainer import EmbeddingTrainer

    def full_disk(self, output_dir=None, state_dict=None, merge_tensor_parallel=False):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        Path(output_dir, "model.safetensors").write_bytes(b"partial")  # the disk filled up mid-file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(EmbeddingTrainer, "_save", full_disk)
    run_dir = tmp_path / "run"
    with pytest.raises(UserError) as refused:
        train_here(run_dir)
    assert str(refused.value) == f"{run_dir}: no space left on device"
    assert not list(run_dir.glob("checkpoint-*")) and not list(run_dir.glob(f"{STAGING_PREFIX}*"))


@pytest.fixture(params=["64k", "700k"], ids=["full-in-the-weights", "full-in-the-optimizer-state"])
def small_tmpfs(tmp_path, request):
    """Room for the run's marker and logs, not for a checkpoint (about 1.4 MB for tiny-bert): at 64 KiB the
    safetensors writer fails (its own SafetensorError), at 700 KiB Paddle's optimizer save (OSError)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={request.param}", "tmpfs", str(mount)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (the injected ENOSPC test covers the save path)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_really_full_disk_during_a_checkpoint_save(small_tmpfs, shared_home):
    run_dir = small_tmpfs / "run"
    done = run(command(run_dir, flags=("--quiet",)), shared_home)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{run_dir}: no space left on device" in done.stderr and "Traceback" not in done.stderr
    assert not list(run_dir.glob("checkpoint-*")) and no_staging_left(run_dir)

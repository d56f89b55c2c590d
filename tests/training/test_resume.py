"""Run dirs and checkpoints: claimed before use, cleared only of embedkit's outputs, resumed only from a
checkpoint whose manifest verifies, changed settings named. (Kills of real runs: tests/reliability.)"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from embedkit.errors import UserError
from embedkit.filenames import RUN_MARKER_FILE
from embedkit.retrieval.checkpoints import (
    is_complete_checkpoint,
    last_checkpoint,
    run_models,
    verify_checkpoint,
    write_manifest,
)
from embedkit.training.checkpoints import (
    FINAL_STAGING_PREFIX,
    STAGING_PREFIX,
    changed_settings,
    check_output_dir,
    make_readable,
    prepare_run_dir,
)


def _weights(run: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(run / "model.safetensors"))


def _claimed(run: Path) -> Path:
    """A run dir as embedkit leaves it after claiming it."""
    run.mkdir(parents=True, exist_ok=True)
    (run / RUN_MARKER_FILE).write_text("{}")
    return run


def _checkpoint(run: Path, step: int, manifest: bool = True) -> Path:
    """The files a real checkpoint has (small stand-ins), with the manifest the trainer writes last."""
    path = run / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"w" * 64)
    (path / "optimizer.pdopt").write_bytes(b"o" * 128)
    (path / "scheduler.pdparams").write_bytes(b"s" * 8)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if manifest:
        write_manifest(path)
    return path


def test_half_written_checkpoints_are_never_resumed(tmp_path):
    run = _claimed(tmp_path / "run")
    complete = _checkpoint(run, 2)
    _checkpoint(run, 4, manifest=False)  # e.g. copied by hand, or written by a tool without staging
    staging = run / f"{STAGING_PREFIX}abc"  # what a kill during a save leaves
    (staging / "checkpoint-6").mkdir(parents=True)
    publishing = run / f"{FINAL_STAGING_PREFIX}xyz"  # a kill while the final model was being published
    publishing.mkdir()
    assert is_complete_checkpoint(complete) and not is_complete_checkpoint(run / "checkpoint-4")
    assert last_checkpoint(run) == complete
    messages = []
    assert prepare_run_dir(run, overwrite=False, warn=messages.append) == complete
    assert not staging.exists() and not publishing.exists()
    assert messages == [f"{run / 'checkpoint-4'}: not resumed from: no embedkit-checkpoint.json "
                        "(its save was cut short, or another tool wrote it)"]


@pytest.mark.parametrize("damage, reason", [
    (lambda c: (c / "model.safetensors").write_bytes(b"w" * 10), "model.safetensors has 10 bytes, 64 recorded"),
    (lambda c: (c / "optimizer.pdopt").unlink(), "optimizer.pdopt is missing"),
    (lambda c: (c / "scheduler.pdparams").unlink(), "scheduler.pdparams is missing"),
    (lambda c: (c / "trainer_state.json").write_text("{not json"), "trainer_state.json has 9 bytes"),
    (lambda c: (c / "model.safetensors").write_bytes(b"x" * 64), "model.safetensors does not match its checksum"),
    (lambda c: (c / "embedkit-checkpoint.json").write_text("{"), "embedkit-checkpoint.json is unreadable"),
], ids=["truncated-weights", "missing-optimizer", "missing-scheduler", "invalid-trainer-state", "changed-bytes",
        "damaged-manifest"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage, reason):
    run = _claimed(tmp_path / "run")
    previous = _checkpoint(run, 2)
    newest = _checkpoint(run, 4)
    damage(newest)
    assert reason in verify_checkpoint(newest)
    messages = []
    assert prepare_run_dir(run, overwrite=False, warn=messages.append) == previous
    assert len(messages) == 1 and messages[0].startswith(f"{newest}: not resumed from: ") and reason in messages[0]
    assert newest.is_dir()  # kept: the run replaces it when it reaches that step again


def test_no_complete_checkpoint_starts_again_and_says_so(tmp_path):
    run = _claimed(tmp_path / "run")
    (_checkpoint(run, 2) / "optimizer.pdopt").unlink()
    messages = []
    assert prepare_run_dir(run, overwrite=False, warn=messages.append) is None
    assert messages[-1] == f"{run}: no complete checkpoint to resume from; training starts again at step 0"


def test_evaluation_sweeps_take_foreign_checkpoints_with_a_trainer_state(tmp_path):
    run = tmp_path / "run"
    foreign = _checkpoint(run, 2, manifest=False)
    (foreign / "config.json").write_text("{}")
    broken = _checkpoint(run, 4, manifest=False)
    (broken / "trainer_state.json").write_text("{not json")
    assert verify_checkpoint(foreign) is not None  # never resumed from
    assert verify_checkpoint(foreign, require_manifest=False) is None
    assert verify_checkpoint(broken, require_manifest=False) == "trainer_state.json is not valid JSON"
    assert [m.incomplete for m in run_models(run)] == [None, "incomplete checkpoint: trainer_state.json is not valid JSON"]


def test_a_manifest_naming_files_outside_the_checkpoint_is_refused(tmp_path):
    checkpoint = _checkpoint(tmp_path / "run", 2)
    manifest = json.loads((checkpoint / "embedkit-checkpoint.json").read_text())
    manifest["files"]["../elsewhere"] = {"size": 1, "sha256": "0" * 64}
    (checkpoint / "embedkit-checkpoint.json").write_text(json.dumps(manifest))
    assert verify_checkpoint(checkpoint) == "embedkit-checkpoint.json names a file outside the checkpoint"


def test_new_and_empty_dirs_are_claimed(tmp_path):
    new, empty, launched = tmp_path / "new" / "run", tmp_path / "empty", tmp_path / "launched"
    empty.mkdir()
    (launched / "logs" / "launch").mkdir(parents=True)  # the launcher's worker logs of this very run
    for run in (new, empty, launched):
        assert prepare_run_dir(run, overwrite=False, warn=print) is None
        assert json.loads((run / RUN_MARKER_FILE).read_text())["created_by"] == "embedkit train"
    # killed after eval_before.json, or stopped on a config error after it: the same command continues
    (empty / "eval_before.json").write_text("{}")
    assert prepare_run_dir(empty, overwrite=False, warn=print) is None
    assert (empty / "eval_before.json").is_file()


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_dir_embedkit_did_not_create_is_refused_and_left_alone(tmp_path, overwrite):
    run = tmp_path / "mine"
    _checkpoint(run, 2)
    for name in ("model.safetensors", "config.json", "README.md", "notes.txt"):
        (run / name).write_text("mine")
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    with pytest.raises(UserError, match="no .embedkit-run.json") as refused:
        prepare_run_dir(run, overwrite=overwrite, warn=print)
    assert refused.value.path == str(run)
    assert ("nothing was removed" in refused.value.message) == overwrite
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_overwrite_removes_only_what_runs_write(tmp_path):
    run = _claimed(tmp_path / "run")
    _checkpoint(run, 2)
    (run / "model.safetensors").write_bytes(b"x")
    (run / "notes.txt").write_text("mine")
    os.makedirs(run / ".embedkit-export" / "onnx-shared")
    os.makedirs(run / "logs" / "launch")
    assert prepare_run_dir(run, overwrite=True, warn=print) is None
    assert sorted(p.name for p in run.iterdir()) == [RUN_MARKER_FILE, "logs", "notes.txt"]
    assert (run / "logs" / "launch").is_dir()


@pytest.mark.parametrize("output, relation", [
    ("model", "is the base model's directory"),
    (".", "holds the base model"),
    ("model/run", "is inside the base model's directory"),
])
def test_an_output_dir_that_is_holds_or_is_inside_the_model_is_refused(tmp_path, output, relation):
    (tmp_path / "model").mkdir()
    with pytest.raises(UserError, match=relation):
        check_output_dir(tmp_path / output, tmp_path / "model")
    check_output_dir(tmp_path / "elsewhere", tmp_path / "model")
    check_output_dir(tmp_path / "model-run", tmp_path / "model")  # a name prefix is not containment


def test_changed_settings_are_named_with_both_values(tmp_path):
    checkpoint = tmp_path / "checkpoint-2"
    checkpoint.mkdir()
    (checkpoint / "recipe.yaml").write_text("learning_rate: 0.001\nseed: 7\noutput_dir: a\neval:\n  data: x\n")
    now = "learning_rate: 0.002\nseed: 7\noutput_dir: b\neval:\n  data: y\nnew_key: 1\n"
    assert changed_settings(checkpoint, now) == ["eval.data: x -> y", "learning_rate: 0.001 -> 0.002",
                                                 "new_key: (unset) -> 1"]
    assert changed_settings(checkpoint, (checkpoint / "recipe.yaml").read_text()) == []


def test_saved_models_get_the_modes_the_umask_gives(tmp_path):
    (tmp_path / "sub").mkdir()
    for path in (tmp_path / "model.safetensors", tmp_path / "sub" / "model.safetensors"):
        path.write_bytes(b"w")
        path.chmod(0o600)
    old = os.umask(0o022)
    try:
        make_readable(tmp_path)
    finally:
        os.umask(old)
    assert {oct(p.stat().st_mode & 0o777) for p in tmp_path.rglob("*") if p.is_file()} == {"0o644"}
    assert oct((tmp_path / "sub").stat().st_mode & 0o777) == "0o755"


def test_rotation_keeps_the_new_save_over_stale_later_checkpoints(tmp_path):
    from types import SimpleNamespace

    from embedkit.training.trainer import EmbeddingTrainer

    run = _claimed(tmp_path / "run")
    for step in (2, 4, 6):
        _checkpoint(run, step)
    # resumed from checkpoint-2 (4 and 6 did not verify), then saved checkpoint-4 again
    trainer = SimpleNamespace(args=SimpleNamespace(save_total_limit=1), state=SimpleNamespace(global_step=4))
    EmbeddingTrainer._rotate_step_checkpoints(trainer, run)
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]


def test_a_resume_in_the_same_process_at_an_epoch_boundary_ends_where_the_straight_run_did(tmp_path, quiet_out):
    """Two faults this caught: Paddle names parameters and optimizer accumulators from process-wide counters, so a
    second run in one process (the Python API, a notebook) found its checkpoint's optimizer state under other
    names; and PaddleNLP restores the RNG state only after skipping batches, so a resume at an epoch boundary
    (none to skip) trained with other dropout."""
    from embedkit.training.run import train
    from tests.training.conftest import tiny_config, write_toy_jsonl

    # toy data: 3 steps an epoch, so checkpoint-3 is an epoch boundary
    config = tiny_config(tmp_path / "run", write_toy_jsonl(tmp_path / "toy.jsonl"), keep_optimizer_state=True)
    train(config, out=quiet_out)
    finished = _weights(tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "checkpoint-6")
    resumed = train(config, out=quiet_out)
    assert resumed.resumed_from == str(tmp_path / "run" / "checkpoint-3")
    again = _weights(tmp_path / "run")
    assert max(float(np.abs(finished[k] - again[k]).max()) for k in finished) == 0.0

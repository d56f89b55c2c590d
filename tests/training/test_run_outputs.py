"""What a finished run leaves: the last 2 checkpoints, weights without optimizer state (unless kept), eval_after.json,
a final loss over the last 10% of steps, a loss plot, and a model card whose usage lines use relative paths."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_config, write_toy_jsonl

from embedkit.errors import UserError
from embedkit.retrieval.checkpoints import verify_checkpoint
from embedkit.training.report import final_loss, smoothed
from embedkit.training.run import train

OPTIMIZER_FILES = ("optimizer.pdopt", "scheduler.pdparams")


def _small_beir(root):
    """Four topics of the toy set as a BEIR dir: enough for eval before and after, in a second."""
    root.mkdir()
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"{t} research"})
                                               + "\n" for i, t in enumerate(["cells", "genes", "viruses", "neurons"])))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"what do {t} do"}) + "\n"
                                                for i, t in enumerate(["cells", "genes", "viruses", "neurons"])))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n"
                                                                                       for i in range(4)))
    return root


def test_a_finished_run_keeps_two_checkpoints_without_optimizer_state(tmp_path, quiet_out):
    run = tmp_path / "run"
    config = tiny_config(run, write_toy_jsonl(tmp_path / "toy.jsonl"), max_steps=6, save_steps=2)
    config.eval.data = str(_small_beir(tmp_path / "beir"))
    result = train(config, out=quiet_out)

    checkpoints = sorted(p.name for p in run.glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-4", "checkpoint-6"]  # save_total_limit defaults to 2
    for name in checkpoints:
        assert (run / name / "model.safetensors").is_file()
        assert not any((run / name / f).exists() for f in OPTIMIZER_FILES), name
        assert verify_checkpoint(run / name) is None, name  # its manifest was written again for what it keeps
    after = json.loads((run / "eval_after.json").read_text())
    assert after == result.eval_after and (run / "eval_before.json").is_file()
    assert result.final_loss == pytest.approx(final_loss([(i + 1, x) for i, x in enumerate(_losses(run))]))

    card = (run / "README.md").read_text()
    use = card.split("## Use", 1)[1].split("## Recipe", 1)[0]
    assert 'embedkit.load("run")' in use and "embedkit export run --format sentence-transformers --output run-st" in use
    assert 'SentenceTransformer("run-st")' in use and str(tmp_path) not in use

    # The same command again finds the run finished and needs no optimizer state for that.
    again = train(config, out=quiet_out)
    assert again.global_step == 6
    # Continuing it would need the dropped state: refused with what to do, not PaddleNLP's ValueError.
    longer = tiny_config(run, config.train_data, max_steps=8, save_steps=2)
    with pytest.raises(UserError, match="keep_optimizer_state: true"):
        train(longer, out=quiet_out)


def test_keep_optimizer_state_keeps_it_and_the_run_can_be_extended(tmp_path, quiet_out):
    import paddle

    from embedkit.modeling.tiny import build_tiny_bert

    run = tmp_path / "run"
    data = write_toy_jsonl(tmp_path / "toy.jsonl")
    # A base model built beforehand, and fresh parameter names per run: optimizer state is keyed by Paddle's
    # generated names, which would otherwise count the layers built earlier in this process.
    base = build_tiny_bert(tmp_path / "base", ["what do cells do", "cells are studied"])

    def run_to(steps: int):
        with paddle.utils.unique_name.guard():
            return train(tiny_config(run, data, model_name_or_path=str(base), max_steps=steps, save_steps=2,
                                     keep_optimizer_state=True), out=quiet_out)

    run_to(4)
    assert all((run / "checkpoint-4" / f).is_file() for f in OPTIMIZER_FILES)
    extended = run_to(6)
    assert extended.global_step == 6 and extended.resumed_from.endswith("checkpoint-4")


def _losses(run) -> list[float]:
    return [entry["loss"] for entry in json.loads((run / "checkpoint-6" / "loss_history.json").read_text())]


def test_final_loss_is_the_mean_of_the_last_tenth_and_the_ema_follows_the_loss():
    points = [(step, 1.0) for step in range(1, 91)] + [(step, 0.5) for step in range(91, 101)]
    assert final_loss(points) == pytest.approx(0.5)
    # Logged every 2 steps over 19: the last 10% of steps (18, 19) hold two logged losses.
    logged = [(step, 0.2) for step in range(2, 18, 2)] + [(18, 0.17), (19, 0.86)]
    assert final_loss(logged) == pytest.approx((0.17 + 0.86) / 2)
    assert final_loss([(1, 2.0), (2, 0.86)]) == pytest.approx(0.86)  # a short run: the last step
    assert final_loss([]) is None
    curve = smoothed([1.0] * 5 + [0.0] * 5)
    assert curve[:5] == pytest.approx([1.0] * 5)  # bias-corrected: no dip towards 0 at the start
    assert 0.0 < curve[-1] < curve[5] < 1.0  # moves towards the new level gradually

"""`--heal RECIPE` fine-tunes the pruned model into OUTPUT-healed, evaluates it too, and resumes when run again."""

from __future__ import annotations

import json


def test_heal_trains_the_pruned_model_evaluates_it_and_resumes(models, beir_dir, tmp_path, run_cli):
    recipe = tmp_path / "heal.yaml"
    recipe.write_text(f"""model_name_or_path: replaced-by-prune
output_dir: replaced-by-prune
train_data: {beir_dir}
train_split: train
train_group_size: 2
query_max_len: 32
passage_max_len: 64
sentence_pooling_method: mean
num_train_epochs: 1
per_device_train_batch_size: 8
learning_rate: 1.0e-4
logging_steps: 1
save_steps: 2
""")
    out = tmp_path / "pruned"
    args = ("prune", models["bert"], "--output", out, "--layers", "1", "--eval-data", beir_dir, "--heal", recipe,
            "--engine", "paddle", "--json")
    first = run_cli(*args)
    assert first.exit_code == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["healed_dir"] == str(out.with_name(out.name + "-healed"))
    assert set(report["before"]) == set(report["after"]) == set(report["healed"]) and "ndcg_at_10" in report["healed"]
    assert report["docs_per_s_healed"] > 0
    assert all(column in first.stderr for column in ("before", "pruned", "healed", "NDCG@10", "docs/s"))
    assert (out.with_name(out.name + "-healed") / "model.safetensors").is_file() and (out.with_name(out.name + "-healed") / "train_summary.json").is_file()
    healed_spec = json.loads((out.with_name(out.name + "-healed") / "embedkit.json").read_text())
    assert healed_spec["pruned"]["removed_layers"] == {"shared": [1]}  # the healed model says what it came from

    again = run_cli(*args)
    assert again.exit_code == 0, again.stderr
    said = " ".join(again.stderr.split())  # rich wraps long lines
    assert "already holds this pruned model" in said and "nothing left to train" in said
    assert json.loads(again.stdout)["removed_layers"] == [1]

    changed = run_cli(*[("2" if a == "1" else a) for a in args])  # other layers: not the same pruned model
    assert changed.exit_code == 2 and "exists and is not empty" in changed.stderr

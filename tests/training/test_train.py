"""End-to-end `embedkit train` on tiny BERT: learning, fine-tune types, the output dir, refusals and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from embedkit.config import TrainConfig, load_recipe
from embedkit.errors import UserError
from embedkit.modeling.embedder import load_embedder
from embedkit.modeling.encode import dygraph_forward, encode_texts
from embedkit.training.arguments import check_device_support
from embedkit.training.run import train
from tests.conftest import DEMO_DATA, REPO
from tests.training.conftest import TOPICS, tiny_config

TEXTS = [f"what do {t} do" for t in TOPICS[:6]]


def _encode(model_dir: Path, side: str = "query") -> np.ndarray:
    embedder, tokenizer = load_embedder(model_dir)
    embedder.eval()
    return encode_texts(TEXTS, tokenizer, dygraph_forward(embedder, side), max_len=32)


def _weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_loss_decreases_over_30_steps(tmp_path, toy_jsonl, quiet_out):
    config = tiny_config(tmp_path / "run", toy_jsonl, max_steps=30, save_steps=30, learning_rate=2e-3)
    result = train(config, out=quiet_out)
    history = json.loads((tmp_path / "run" / "checkpoint-30" / "loss_history.json").read_text())
    losses = [entry["loss"] for entry in history]
    assert len(losses) == 30 and result.global_step == 30
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_output_dir_describes_the_model(tmp_path, quiet_out):
    run = tmp_path / "run"
    config = tiny_config(run, DEMO_DATA, query_instruction_for_retrieval="query: ", sentence_pooling_method="cls")
    config.eval.data, config.eval.split = str(DEMO_DATA), "test"
    result = train(config, out=quiet_out)

    for name in ("model.safetensors", "config.json", "vocab.txt", "embedkit.json", "train_args.json", "recipe.yaml",
                 "loss_curve.png", "README.md", "train_summary.json"):
        assert (run / name).is_file(), name
    assert (run / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((run / "logs").glob("vdlrecords.*"))  # VisualDL
    spec = json.loads((run / "embedkit.json").read_text())
    assert (spec["pooling"], spec["query_instruction"], spec["passage_max_len"], spec["base_model"]) == \
        ("cls", "query: ", 32, "tiny-bert")
    assert load_recipe(run / "recipe.yaml", TrainConfig) == config
    assert json.loads((run / "train_args.json").read_text())["max_steps"] == 6

    card = (run / "README.md").read_text()
    corpus_sha = result.data[0]["files"][str(DEMO_DATA / "corpus.jsonl")]
    assert "tiny-bert" in card and corpus_sha in card and f"{result.final_loss:.4f}" in card and "NDCG@10" in card
    assert result.eval_before["metrics"]["ndcg_at_10"] >= 0 and result.eval_after["metrics"]["ndcg_at_10"] >= 0

    # Published files are all readable the same way (the safetensors writer alone left 0600).
    modes = {p.relative_to(run): p.stat().st_mode & 0o777 for p in [*run.iterdir(), *run.glob("checkpoint-*/*")]
             if p.is_file() and not p.name.startswith(".")}
    assert set(modes.values()) == {(run / "config.json").stat().st_mode & 0o777}, modes

    # Every checkpoint is a model load_embedder reads with its spec; the last one is the final model.
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    np.testing.assert_allclose(_encode(run / "checkpoint-6"), _encode(run), atol=1e-6)
    assert not np.allclose(_encode(run / "checkpoint-3"), _encode(run), atol=1e-4)


def test_lora_trains_only_adapters_and_the_merged_model_equals_base_plus_adapter(tmp_path, quiet_out):
    from paddlenlp.peft import LoRAModel

    from embedkit.modeling.embedder import Embedder
    from embedkit.modeling.loading import load_backbone
    from embedkit.training.modeling import load_embedder_for_training

    run = tmp_path / "run"
    config = tiny_config(run, DEMO_DATA, fine_tune_type="lora", merge_lora=True)
    config.lora.dropout = 0.0
    result = train(config, out=quiet_out)
    base = Path(json.loads((run / "lora_config.json").read_text())["base_model_name_or_path"])

    # Only LoRA matrices were trainable.
    embedder, _ = load_embedder_for_training(base, config, "tiny-bert")
    trainable = [n for n, p in embedder.named_parameters() if not p.stop_gradient]
    assert trainable and all("lora_" in n for n in trainable)
    assert result.parameters["trainable"] == sum(int(np.prod(p.shape)) for p in embedder.parameters() if not p.stop_gradient)

    # Merged weights differ from the base only in the adapted projections.
    merged, original = _weights(run / "merged"), _weights(base)
    changed = {k for k in original if not np.array_equal(merged[k], original[k])}
    assert changed and all(".self_attn." in k and k.endswith(".weight") for k in changed)

    # The merged model encodes exactly like base + adapter applied at run time (unmerged LoRA layers).
    lora = LoRAModel.from_pretrained(load_backbone(base), str(run))
    with_adapter = Embedder(lora, load_embedder(run / "merged")[0].spec)
    with_adapter.eval()
    tokenizer = load_embedder(run / "merged")[1]
    runtime = encode_texts(TEXTS, tokenizer, dygraph_forward(with_adapter, "query"), max_len=32)
    np.testing.assert_allclose(_encode(run / "merged"), runtime, atol=1e-5)
    # The adapter dir itself (and each checkpoint) loads through load_embedder: base + adapter, merged on load.
    np.testing.assert_allclose(_encode(run), runtime, atol=1e-5)
    assert (run / "checkpoint-6" / "lora_model_state.pdparams").is_file()
    np.testing.assert_allclose(_encode(run / "checkpoint-6"), runtime, atol=1e-5)


def test_bitfit_trains_only_biases(tmp_path, quiet_out):
    run = tmp_path / "run"
    result = train(tiny_config(run, DEMO_DATA, fine_tune_type="bitfit"), out=quiet_out)
    trained, original = _weights(run), _weights(Path(result.base_model_dir))
    changed = {k for k in original if not np.array_equal(trained[k], original[k])}
    assert changed and all(k.endswith("bias") for k in changed)
    assert result.parameters["trainable"] < result.parameters["total"] / 10


def test_bitfit_needs_bias_terms():
    from paddle import nn

    from embedkit.training.modeling import freeze_all_but_biases

    with pytest.raises(UserError, match="no bias parameters"):
        freeze_all_but_biases(nn.Sequential(nn.Linear(4, 4, bias_attr=False)))


def test_separate_towers_start_from_the_same_checkpoint(tmp_path, quiet_out):
    run = tmp_path / "run"
    train(tiny_config(run, DEMO_DATA, separate_towers=True, max_steps=3, save_steps=3), out=quiet_out)
    assert (run / "query_model" / "model.safetensors").is_file()
    assert (run / "passage_model" / "model.safetensors").is_file()
    embedder, _ = load_embedder(run)
    assert embedder.passage_backbone is not None
    # Trained on different inputs, the towers drift apart from their common start.
    assert not np.allclose(_encode(run, "query"), _encode(run, "passage"), atol=1e-4)


@pytest.mark.parametrize("option,changes", [
    ("bf16", {"bf16": True}),
    ("fp16", {"fp16": True}),
    ("sharding", {"sharding": "stage2"}),
    ("use_flash_attention", {"use_flash_attention": True}),
])
def test_gpu_only_options_are_refused_on_cpu(option, changes):
    with pytest.raises(UserError, match=option):
        check_device_support(TrainConfig(**changes), available_gpus=0)
    check_device_support(TrainConfig(**changes), available_gpus=1)  # passed through to PaddleNLP on a GPU


def test_gpus_are_refused_on_cpu_but_cpu_processes_are_not():
    with pytest.raises(UserError, match="--gpus 0,1"):
        check_device_support(TrainConfig(), nproc=2, gpu_ids=[0, 1], available_gpus=0)
    check_device_support(TrainConfig(), nproc=2, available_gpus=0)  # gloo workers
    with pytest.raises(UserError, match="--nproc 4"):
        check_device_support(TrainConfig(), nproc=4, available_gpus=2)


def test_refused_option_exits_2_before_loading_anything(run_cli, tmp_path):
    result = run_cli("train", "--model", "tiny-bert", "--data", DEMO_DATA, "--output-dir", tmp_path / "run",
                     "--set", "bf16=true")
    assert result.exit_code == 2
    assert "bf16" in result.stderr and "GPU" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_bad_recipe_exits_2_with_file_and_line(run_cli, tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("model_name_or_path: tiny-bert\ntrain_data: demo\nlearning_rat: 1e-3\n")
    result = run_cli("train", "--recipe", recipe)
    assert result.exit_code == 2
    assert f"{recipe}:3:" in result.stderr and "learning_rate" in result.stderr


def test_missing_data_is_refused_before_the_model_loads(run_cli, tmp_path):
    result = run_cli("train", "--model", "tiny-bert", "--data", tmp_path / "nope.jsonl", "--output-dir", tmp_path / "r")
    assert result.exit_code == 2 and "nope.jsonl" in result.stderr and not (tmp_path / "r").exists()


def test_unknown_model_reference_is_a_user_error(run_cli, tmp_path):
    result = run_cli("train", "--model", "no-such-model", "--data", DEMO_DATA, "--output-dir", tmp_path / "run")
    assert result.exit_code == 2 and "embedkit download no-such-model" in result.stderr


def test_a_non_empty_dir_embedkit_did_not_create_is_refused_even_with_overwrite(run_cli, tmp_path, toy_jsonl):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    (run / "README.md").write_text("mine")  # a name embedkit's runs also write: still the user's
    args = ["train", "--model", "tiny-bert", "--data", toy_jsonl, "--output-dir", run, "--set", "max_steps=2",
            "--set", "train_group_size=2", "--set", "passage_max_len=16", "-q"]
    for extra in ((), ("--overwrite",)):
        refused = run_cli(*args, *extra)
        assert refused.exit_code == 2 and f"{run}: output_dir" in refused.stderr and "no .embedkit-run.json" in refused.stderr
        assert sorted(p.name for p in run.iterdir()) == ["README.md", "notes.txt"]
        assert (run / "README.md").read_text() == "mine"

    (run / "notes.txt").unlink()
    (run / "README.md").unlink()
    assert run_cli(*args, "--json").exit_code == 0  # an empty dir is claimed
    (run / "notes.txt").write_text("mine")
    assert run_cli(*args, "--overwrite", "--json").exit_code == 0
    assert (run / "notes.txt").read_text() == "mine"  # --overwrite removes what runs write, nothing else
    rerun = run_cli(*args, "--json")  # the finished run's last checkpoint: nothing left to train
    assert rerun.exit_code == 0 and json.loads(rerun.stdout)["resumed_from"].endswith("checkpoint-2")


def test_every_recipe_validates():
    recipes = sorted((REPO / "recipes").glob("*.yaml"))
    assert {p.stem for p in recipes} >= {"tiny-cpu", "minilm-scifact", "rocketqa-zh-base-sft", "rocketqa-zh-base-4gpu",
                                          "demo"}
    for path in recipes:
        config = load_recipe(path, TrainConfig)
        assert config.model_name_or_path and config.train_data, path
        gpu_only = config.bf16 or config.fp16 or config.sharding or config.use_flash_attention
        if gpu_only or "gpu" in path.stem:
            assert "GPU" in path.read_text(encoding="utf-8"), f"{path} must say it needs a GPU"
        yaml.safe_load(path.read_text(encoding="utf-8"))


def test_recompute_reaches_the_encoder_and_changes_no_result(tmp_path, quiet_out):
    from embedkit.training.arguments import training_arguments
    from embedkit.training.modeling import BiEncoderForTraining, load_embedder_for_training
    from embedkit.training.trainer import EmbeddingTrainer

    runs = {}
    for recompute in (False, True):
        config = tiny_config(tmp_path / f"run{int(recompute)}", DEMO_DATA, recompute=recompute, max_steps=3, save_steps=3)
        runs[recompute] = train(config, out=quiet_out)
    a, b = _weights(tmp_path / "run0"), _weights(tmp_path / "run1")
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-6

    # BERT's paddle.nn.TransformerEncoder is what PaddleNLP's --recompute switches (not a silent no-op).
    embedder, _ = load_embedder_for_training(Path(runs[True].base_model_dir), config, "tiny-bert")
    model = BiEncoderForTraining(embedder, config)
    EmbeddingTrainer(model=model, args=training_arguments(config, tmp_path / "run1"))
    assert any(getattr(layer, "enable_recompute", False) for layer in model.sublayers())


@pytest.mark.slow
def test_two_worker_processes_train_with_cross_device_negatives(tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run"
    command = [sys.executable, "-m", "embedkit.cli", "train", "--model", "tiny-bert", "--data", str(DEMO_DATA),
               "--output-dir", str(run), "--nproc", "2", "--set", "max_steps=4", "--set", "save_steps=2",
               "--set", "train_group_size=2", "--set", "passage_max_len=32", "--set", "negatives_cross_device=true"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["global_step"] == 4
    assert json.loads((run / "train_args.json").read_text())["per_device_train_batch_size"] == 8
    assert "embedkit train" not in (run / "logs" / "launch" / "workerlog.1").read_text()  # rank 1 stays quiet
    assert load_embedder(run)[0] is not None


def test_flash_attention_is_set_where_the_architecture_reads_it(tmp_path):
    from paddlenlp.transformers import LlamaConfig, LlamaModel

    from embedkit.modeling.loading import load_backbone
    from embedkit.modeling.tiny import build_tiny_bert
    from embedkit.training.modeling import enable_flash_attention

    llama = LlamaModel(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=2))
    assert enable_flash_attention(llama) and llama.config.use_flash_attention
    bert = load_backbone(build_tiny_bert(tmp_path / "tiny", ["a few words"]))
    assert not enable_flash_attention(bert) and not bert.config.use_flash_attention


def test_gpus_alone_start_one_worker_per_gpu(monkeypatch, tmp_path):
    import embedkit.training.arguments as arguments
    import embedkit.training.command as command
    import embedkit.training.launch as launch

    started = {}
    monkeypatch.setattr(arguments, "gpu_count", lambda: 4)
    monkeypatch.setattr(launch, "launcher_env", lambda gpus: {})
    monkeypatch.setattr(command.subprocess, "call", lambda argv, env: started.setdefault("argv", argv) and 0)
    config = tiny_config(tmp_path / "run", DEMO_DATA)
    assert command.relaunch(config, 1, "0,1,2,3", ["train", "--gpus", "0,1,2,3"]) == 0
    argv = started["argv"]
    assert argv[argv.index("--nproc_per_node") + 1] == "4" and argv[argv.index("--devices") + 1] == "0,1,2,3"
    assert "--gpus" not in argv[argv.index("embedkit.cli"):]


@pytest.mark.parametrize("changes", [
    {"use_inbatch_neg": True},
    {"use_matryoshka": True, "matryoshka_dims": [8, 16], "matryoshka_loss_weights": [1.0, 1.0]},
    {"distill": {"weight": 0.5, "teacher_temperature": 1.0}},
], ids=["in-batch", "matryoshka", "distillation"])
def test_loss_variants_train_end_to_end(tmp_path, quiet_out, changes):
    from embedkit.config.schema import DistillConfig
    from tests.training.conftest import write_toy_jsonl

    data = write_toy_jsonl(tmp_path / "scored.jsonl", with_scores=True)
    if "distill" in changes:
        changes = {**changes, "distill": DistillConfig(**changes["distill"])}
    result = train(tiny_config(tmp_path / "run", data, max_steps=3, save_steps=3, **changes), out=quiet_out)
    assert result.global_step == 3 and np.isfinite(result.final_loss)
    spec = json.loads((tmp_path / "run" / "embedkit.json").read_text())
    assert spec["matryoshka_dims"] == ([8, 16, 32] if "use_matryoshka" in changes else [])

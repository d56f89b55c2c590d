"""The tiny-* recipes of the LLM embedder families: 20 LoRA steps on CPU with the loss falling, a merged save equal
to base + adapter, and the saved models reloading and evaluating on demo/scifact-mini with the family's spec."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle
import pytest

from embedkit.config import TrainConfig, load_recipe
from embedkit.modeling.loading import load_backbone
from embedkit.modeling.prompts import preset_fields
from embedkit.training.run import train
from tests.conftest import DEMO_DATA, REPO

# recipe -> the preset its spec must end up with (prompts, pooling, padding side, EOS)
RECIPES = {"tiny-qwen3-embedding": "qwen3-embedding", "tiny-repllama": "repllama", "tiny-llara": "llara",
           "tiny-bge-en-icl": "bge-en-icl", "tiny-nv-embed": "nv-embed"}


def _recipe(name: str, run: Path) -> TrainConfig:
    config = load_recipe(REPO / "recipes" / f"{name}.yaml", TrainConfig)
    config.output_dir, config.train_data = str(run), str(DEMO_DATA)
    config.eval.data = None  # evaluated once below, on the reloaded merged model
    return config


def _merged_by_hand(run: Path) -> dict[str, np.ndarray]:
    """Base weights + scaling * A @ B for every adapted Linear, and the parameters trained in full (NV-Embed's
    latent block) as the adapter file holds them, from the adapter files alone."""
    lora_config = json.loads((run / "lora_config.json").read_text())
    weights = {k: v.numpy() for k, v in load_backbone(lora_config["base_model_name_or_path"]).state_dict().items()}
    adapter = paddle.load(str(run / "lora_model_state.pdparams"))
    scale = lora_config["lora_alpha"] / lora_config["r"]
    for key in [k for k in adapter if k.endswith(".lora_A")]:
        module = key.removesuffix(".lora_A")
        weights[f"{module}.weight"] = weights[f"{module}.weight"] + scale * (
            adapter[key].numpy() @ adapter[f"{module}.lora_B"].numpy())
    for key in [k for k in adapter if ".lora_" not in k]:
        weights[key] = adapter[key].numpy()
    return weights


@pytest.mark.parametrize("name", RECIPES)
def test_tiny_family_recipe_trains_merges_exactly_and_its_saved_model_evaluates(name, tmp_path, quiet_out):
    from embedkit.api import evaluate

    run = tmp_path / "run"
    result = train(_recipe(name, run), out=quiet_out)
    losses = [row["loss"] for row in json.loads((run / "checkpoint-20" / "loss_history.json").read_text())]
    assert result.global_step == 20 and len(losses) == 4 and losses[-1] < losses[0], losses

    merged = {k: v.numpy() for k, v in load_backbone(run / "merged").state_dict().items()}
    by_hand = _merged_by_hand(run)
    assert merged.keys() == by_hand.keys()
    assert max(np.abs(merged[k] - by_hand[k]).max() for k in merged) <= 1e-5

    expected = preset_fields(RECIPES[name])
    for saved in (run, run / "merged"):
        spec = json.loads((saved / "embedkit.json").read_text())
        assert {key: spec[key] for key in expected} == expected
    report = evaluate(run / "merged", DEMO_DATA, engine="paddle")
    assert 0.0 <= report.mean["ndcg_at_10"] <= 1.0
    adapter_report = evaluate(run, DEMO_DATA, engine="paddle")  # base + adapter, merged on load
    assert abs(adapter_report.mean["ndcg_at_10"] - report.mean["ndcg_at_10"]) <= 1e-6


@pytest.mark.parametrize("name, preset", [*RECIPES.items(), ("qwen3-embedding-lora", "qwen3-embedding"),
                                          ("repllama-lora", "repllama"), ("llara-lora", "llara"),
                                          ("bge-en-icl-lora", "bge-en-icl"), ("nv-embed-lora", "nv-embed")])
def test_family_recipes_use_their_presets_prompts_and_pooling(name, preset):
    config = load_recipe(REPO / "recipes" / f"{name}.yaml", TrainConfig)
    expected = preset_fields(preset)
    assert config.query_instruction_for_retrieval == expected["query_instruction"]
    assert (config.passage_instruction_for_retrieval or "") == expected["passage_instruction"]
    assert config.sentence_pooling_method == expected["pooling"]


def test_an_example_prompt_the_instruction_mask_would_cut_is_refused(tmp_path):
    """NV-Embed leaves the recipe instruction's token count out of the pooling: an example prompt of another
    length would be pooled from the wrong position, so it is refused, naming the file; one of the same length
    tokenises."""
    from embedkit.errors import UserError
    from embedkit.modeling.embedder import instruction_token_counts, resolve_spec
    from embedkit.modeling.loading import load_tokenizer
    from embedkit.modeling.tiny import build_tiny_nv_embed
    from embedkit.training.dataset import load_training_data

    model_dir = build_tiny_nv_embed(tmp_path / "nv", ["cells need energy", "vaccines train the immune system"])
    tokenizer = load_tokenizer(model_dir)
    config = _recipe("tiny-nv-embed", tmp_path / "run")
    spec = resolve_spec(model_dir, {"query_instruction": config.query_instruction_for_retrieval})
    masked = instruction_token_counts(tokenizer, spec)["query"]
    data = tmp_path / "train.jsonl"
    row = {"query": "what do cells need", "pos": ["energy"], "neg": ["nothing"]}
    data.write_text(json.dumps({**row, "prompt": "Instruct: x\nQuery: "}) + "\n")
    config.train_data = str(data)
    with pytest.raises(UserError, match="prompt takes .* tokens where the recipe's query instruction") as err:
        load_training_data(config, tokenizer, masked_query_tokens=masked)
    assert err.value.path == str(data)
    data.write_text(json.dumps({**row, "prompt": config.query_instruction_for_retrieval}) + "\n")
    assert len(load_training_data(config, tokenizer, masked_query_tokens=masked).tokens) == 1

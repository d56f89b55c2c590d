"""Two-tower models are pruned tower by tower; a LoRA adapter dir is merged into its base before pruning."""

from __future__ import annotations

import json

import numpy as np
import paddle

import embedkit
from embedkit.modeling.embedder import Embedder, load_embedder
from embedkit.modeling.loading import load_backbone


def _two_tower(bert, out):
    """Query tower: layers 1 and 2 pass through; passage tower: 2 and 3 (layer 3 zeroed, layer 1 re-randomised)."""
    embedder, tokenizer = load_embedder(bert)
    passage = load_backbone(bert)
    rng = np.random.default_rng(1)
    for name, param in passage.named_parameters():
        if name.startswith("encoder.layers.3.") and ("out_proj" in name or "linear2" in name):
            param.set_value(paddle.zeros_like(param))
        elif name.startswith("encoder.layers.1.") and ("out_proj" in name or "linear2" in name):
            param.set_value(paddle.to_tensor(rng.normal(0, 0.3, param.shape).astype("float32")))
    Embedder(embedder.query_backbone, embedder.spec, passage).save_pretrained(out, tokenizer)
    return out


def test_each_tower_loses_its_own_lowest_layers(models, texts_file, tmp_path, run_cli):
    model = _two_tower(models["bert"], tmp_path / "two-tower")
    out = tmp_path / "pruned"
    result = run_cli("prune", model, "--output", out, "--n-prune-layers", "2", "--calibration", texts_file, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["removed_layers"] == {"query": [1, 2], "passage": [2, 3]}
    assert report["layer_choice"] == "per tower" and set(report["layer_scores"]) == {"query", "passage"}

    pruned, _ = load_embedder(out)
    assert pruned.spec.two_tower
    assert pruned.query_backbone.config.num_hidden_layers == pruned.passage_backbone.config.num_hidden_layers == 2
    texts = ["a claim about cells", "the protein binds its receptor"]
    before, after = embedkit.load(model, engine="paddle"), embedkit.load(out, engine="paddle")
    for encode in ("encode_queries", "encode_passages"):
        np.testing.assert_allclose(getattr(after, encode)(texts), getattr(before, encode)(texts), atol=1e-6)


def test_a_lora_adapter_is_merged_before_pruning(models, texts_file, tmp_path, run_cli):
    from embedkit.modeling.lora import apply_lora

    base = models["bert"]
    lora = apply_lora(load_backbone(base), r=4, alpha=8, dropout=0.0, target_modules=None, base_model=str(base))
    for name, param in lora.named_parameters():
        if "lora_B" in name:  # zero at init: give the adapter an effect
            param.set_value(paddle.full_like(param, 0.05))
    adapter = tmp_path / "adapter"
    lora.save_pretrained(str(adapter))
    load_embedder(base)[1].save_pretrained(str(adapter))  # as a LoRA training run's dir holds it
    out = tmp_path / "pruned"
    result = run_cli("prune", adapter, "--output", out, "--layers", "3", "--json")
    assert result.exit_code == 0, result.stderr

    merged, pruned = load_backbone(adapter), load_backbone(out)  # load_backbone merges the adapter
    key = "encoder.layers.0.self_attn.q_proj.weight"
    np.testing.assert_array_equal(pruned.state_dict()[key].numpy(), merged.state_dict()[key].numpy())
    assert not np.array_equal(merged.state_dict()[key].numpy(), load_backbone(base).state_dict()[key].numpy())
    assert not (out / "lora_config.json").exists()

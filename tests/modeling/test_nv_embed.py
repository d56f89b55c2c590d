"""NV-Embed-v1: a bidirectional Mistral (transformers' MistralModel with a non-causal mask as the reference) and the
latent-attention pooling block (a numpy implementation written from the paper as the reference), on a tiny random
checkpoint in the published Hugging Face layout; saving, reloading and LoRA."""

from __future__ import annotations

import json
import math

import numpy as np
import paddle
import pytest
from llm_checkpoints import (
    MIXED_TEXTS,
    NV_EMBED_LATENT,
    bidirectional_mistral_states,
    save_hf_nv_embed,
)

from embedkit.modeling.architectures import architecture_of, layer_list, read_architecture
from embedkit.modeling.embedder import load_embedder
from embedkit.modeling.encode import dygraph_forward, encode_texts
from embedkit.modeling.loading import load_backbone
from embedkit.modeling.nv_embed import NVEmbedModel
from embedkit.modeling.prompts import preset_fields

TASK = "Given a claim, retrieve documents that support or refute it"
QUERY_PROMPT = f"Instruct: {TASK}\nQuery: "
# The test tokenizer is trained on SciFact texts, so the prompt takes ~45 tokens (NV-Embed's ~20): lengths with
# room for it and the longest text.
SPEC = {**preset_fields("nv-embed", TASK), "query_max_len": 512, "passage_max_len": 512}


@pytest.fixture(scope="module")
def nv_embed(tmp_path_factory):
    return save_hf_nv_embed(tmp_path_factory.mktemp("nv") / "any-name")


# --- the reference -------------------------------------------------------------------------------------------


def _layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


_erf = np.vectorize(math.erf)


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def latent_attention_reference(hidden: np.ndarray, pool_mask: np.ndarray, weights: dict, heads: int) -> np.ndarray:
    """Lee et al. 2024, "NV-Embed", section 3.2, in float64: the token states Q [T, d] attend (multi-head, over
    pre-LayerNormed inputs) to the trainable latents as keys and values, O = softmax(QK^T/sqrt(d_h))V; then
    GEGLU MLP with a residual; then the mean over the pooling mask; L2-normalised (output_normalize)."""
    w = {k.removeprefix("latent_attention_model."): v.astype(np.float64) for k, v in weights.items()}
    h = hidden.astype(np.float64)
    x = _layer_norm(h, w["cross_attend_blocks.0.norm.weight"], w["cross_attend_blocks.0.norm.bias"])
    context = _layer_norm(w["latents"], w["cross_attend_blocks.0.norm_context.weight"],
                          w["cross_attend_blocks.0.norm_context.bias"])
    q = x @ w["cross_attend_blocks.0.fn.to_q.weight"].T  # [B, T, heads * dh]
    k, v = np.split(context @ w["cross_attend_blocks.0.fn.to_kv.weight"].T, 2, axis=-1)  # [R, heads * dh]
    dh = q.shape[-1] // heads
    batch, length = h.shape[:2]
    qh = q.reshape(batch, length, heads, dh)
    kh, vh = k.reshape(-1, heads, dh), v.reshape(-1, heads, dh)
    attention = _softmax(np.einsum("bthd,rhd->bhtr", qh, kh) / math.sqrt(dh))
    out = np.einsum("bhtr,rhd->bthd", attention, vh).reshape(batch, length, heads * dh)
    h = out @ w["cross_attend_blocks.0.fn.to_out.weight"].T + h
    y = _layer_norm(h, w["cross_attend_blocks.1.norm.weight"], w["cross_attend_blocks.1.norm.bias"])
    y = y @ w["cross_attend_blocks.1.fn.net.0.weight"].T + w["cross_attend_blocks.1.fn.net.0.bias"]
    value, gate = np.split(y, 2, axis=-1)
    h = (value * _gelu(gate)) @ w["cross_attend_blocks.1.fn.net.2.weight"].T + w["cross_attend_blocks.1.fn.net.2.bias"] + h
    m = pool_mask.astype(np.float64)[..., None]
    pooled = (h * m).sum(1) / m.sum(1)
    return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)


def _reference(model_dir, texts, instruction="", latent=None, causal=False):
    """NV-Embed's encode: ``instruction + text + eos`` tokenised (BOS added), right-padded, the first
    len(tokenize(instruction)) positions left out of the pool mask."""
    import transformers
    from safetensors.numpy import load_file

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    tokens = [tokenizer(instruction + text + tokenizer.eos_token)["input_ids"] for text in texts]
    hidden, mask = bidirectional_mistral_states(model_dir, tokens, pad_id=tokenizer.eos_token_id, causal=causal)
    pool_mask = mask.copy()
    pool_mask[:, :len(tokenizer.tokenize(instruction)) if instruction else 0] = 0
    weights = latent if latent is not None else {k: v for k, v in load_file(str(model_dir / "model.safetensors")).items()
                                                 if k.startswith("latent_attention_model.")}
    return latent_attention_reference(hidden, pool_mask, weights, NV_EMBED_LATENT["num_cross_heads"])


def _embedkit(model_dir, texts, side="query", instruction=QUERY_PROMPT, embedder=None):
    if embedder is None:
        embedder, tokenizer = load_embedder(model_dir, {**SPEC, "query_instruction": instruction})
    else:
        embedder, tokenizer = embedder
    embedder.eval()
    spec = embedder.spec
    return encode_texts(texts, tokenizer, dygraph_forward(embedder, side), max_len=512,
                        instruction=spec.query_instruction if side == "query" else spec.passage_instruction,
                        batch_size=len(texts), padding_side=spec.padding_side, append_eos=spec.appends_eos())


# --- parity ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("instruction", ["", QUERY_PROMPT], ids=["passage, no instruction", "query, instruction"])
def test_embeddings_match_the_bidirectional_mistral_and_numpy_latent_attention(instruction, nv_embed):
    ours = _embedkit(nv_embed, MIXED_TEXTS, instruction=instruction)
    reference = _reference(nv_embed, MIXED_TEXTS, instruction)
    diff = np.abs(ours - reference).max()
    print(f"NV-Embed parity ({'with' if instruction else 'without'} instruction): max abs diff {diff:.2e}")
    assert diff <= 1e-5, diff
    # The reference is sensitive to what is being checked: a causal mask would be another model.
    assert np.abs(_reference(nv_embed, MIXED_TEXTS, instruction, causal=True) - reference).max() > 1e-3


def test_the_instruction_is_left_out_of_the_pooling_but_still_attended(nv_embed):
    with_mask = _embedkit(nv_embed, MIXED_TEXTS)
    embedder, tokenizer = load_embedder(nv_embed, {**SPEC, "mask_instruction": False})
    unmasked = _embedkit(nv_embed, MIXED_TEXTS, embedder=(embedder, tokenizer))
    assert np.abs(with_mask - unmasked).max() > 1e-3
    assert np.abs(with_mask - _embedkit(nv_embed, MIXED_TEXTS, instruction="")).max() > 1e-3


def test_an_instruction_that_fills_the_max_length_is_refused_not_pooled_as_nothing(nv_embed):
    from embedkit.errors import UserError

    with pytest.raises(UserError, match="query_max_len 32 leaves no room for the text"):
        load_embedder(nv_embed, {**SPEC, "query_max_len": 32})


def test_the_query_prompt_and_passage_side_are_nv_embeds():
    fields = preset_fields("nv-embed", TASK)
    assert fields["query_instruction"] == f"Instruct: {TASK}\nQuery: "
    assert fields["passage_instruction"] == ""
    assert (fields["pooling"], fields["padding_side"], fields["append_eos"], fields["mask_instruction"]) == (
        "latent_attention", "right", True, True)


# --- layout, recognition ---------------------------------------------------------------------------------------


def test_recognised_from_config_json_whatever_the_path(nv_embed, tmp_path):
    misleading = tmp_path / "bge-llama-qwen3"
    misleading.mkdir()
    for f in nv_embed.iterdir():
        (misleading / f.name).symlink_to(f)
    assert read_architecture(misleading).name == "NV-Embed"
    backbone = load_backbone(misleading)
    assert isinstance(backbone, NVEmbedModel) and architecture_of(backbone).name == "NV-Embed"
    assert len(layer_list(backbone)) == 2
    mistral = backbone.embedding_model.config
    assert (mistral.num_attention_heads, mistral.num_key_value_heads) == (4, 2)
    assert backbone.embedding_model.layers[0].self_attn.head_dim == 16
    assert list(backbone.latent_attention_model.latents.shape) == [16, 64]


def test_a_published_dir_without_embedkit_json_gets_nv_embeds_spec(nv_embed, tmp_path):
    (tmp_path / "1_Pooling").mkdir()  # the published repo's sentence-transformers files say mean pooling
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    for f in nv_embed.iterdir():
        (tmp_path / f.name).symlink_to(f)
    embedder, _ = load_embedder(tmp_path, {"query_max_len": 512})
    expected = preset_fields("nv-embed")
    assert {key: embedder.spec.model_dump(mode="json")[key] for key in expected} == expected
    assert embedder.masked_tokens["query"] > 0 and embedder.masked_tokens["passage"] == 0


def test_weights_that_do_not_fit_are_refused_naming_them(nv_embed, tmp_path):
    from safetensors.numpy import load_file, save_file

    from embedkit.errors import UserError

    broken = tmp_path / "broken"
    broken.mkdir()
    for f in nv_embed.iterdir():
        if f.name != "model.safetensors":
            (broken / f.name).symlink_to(f)
    state = load_file(str(nv_embed / "model.safetensors"))
    del state["latent_attention_model.latents"]
    save_file(state, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UserError, match="latent_attention_model.latents"):
        load_backbone(broken)


# --- save / reload ---------------------------------------------------------------------------------------------


def test_a_saved_model_is_the_published_layout_and_reloads_to_the_same_embeddings(nv_embed, tmp_path):
    embedder, tokenizer = load_embedder(nv_embed, SPEC)
    embedder.save_pretrained(tmp_path / "saved", tokenizer)
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["model_type"] == "nvembed" and config["text_config"]["num_key_value_heads"] == 2
    assert config["latent_attention_config"]["num_latents_value"] == 16
    from safetensors.numpy import load_file

    keys = set(load_file(str(tmp_path / "saved" / "model.safetensors")))
    assert {k.split(".")[0] for k in keys} == {"embedding_model", "latent_attention_model"}
    for side in ("query", "passage"):  # the query side with its instruction left out of the pooling
        before = _embedkit(nv_embed, MIXED_TEXTS, side, embedder=(embedder, tokenizer))
        after = _embedkit(tmp_path / "saved", MIXED_TEXTS, side, embedder=load_embedder(tmp_path / "saved"))
        np.testing.assert_allclose(after, before, atol=1e-6)


# --- LoRA ------------------------------------------------------------------------------------------------------


def test_lora_adapts_the_backbone_projections_and_trains_the_latent_block_in_full(nv_embed):
    from embedkit.modeling.lora import apply_lora

    lora = apply_lora(load_backbone(nv_embed), r=4, alpha=8, dropout=0.0, target_modules=None, base_model=str(nv_embed))
    trainable = {name for name, p in lora.model.named_parameters() if not p.stop_gradient}
    latent = {name for name, _ in lora.model.latent_attention_model.named_parameters()}
    assert {f"latent_attention_model.{name}" for name in latent} <= trainable
    backbone_trainable = {name for name in trainable if name.startswith("embedding_model.")}
    assert backbone_trainable and all("lora_" in name for name in backbone_trainable)
    adapted = {name.rsplit(".", 1)[0] for name in backbone_trainable}  # "...q_proj.lora_A" -> "...q_proj"
    assert len(adapted) == 7 * 2  # q, k, v, o, gate, up, down in both layers
    assert trainable == backbone_trainable | {f"latent_attention_model.{name}" for name in latent}


def test_a_lora_adapter_saves_its_latent_block_and_reloads_merged(nv_embed, tmp_path):
    from embedkit.modeling.embedder import Embedder, instruction_token_counts
    from embedkit.modeling.loading import load_tokenizer
    from embedkit.modeling.lora import apply_lora
    from embedkit.modeling.spec import EmbedderSpec

    paddle.seed(3)
    lora = apply_lora(load_backbone(nv_embed), r=4, alpha=8, dropout=0.0, target_modules=None, base_model=str(nv_embed))
    with paddle.no_grad():  # as after training: adapters and latent block moved away from their start
        for param in lora.model.parameters():
            if not param.stop_gradient:
                param.set_value(param + paddle.randn(param.shape, dtype=param.dtype) * 0.05)
    spec = EmbedderSpec(**SPEC)
    tokenizer = load_tokenizer(nv_embed, padding_side="right")
    trained = Embedder(lora, spec, masked_tokens=instruction_token_counts(tokenizer, spec))
    trained.save_pretrained(tmp_path / "adapter", tokenizer)
    reloaded = load_embedder(tmp_path / "adapter")
    for side in ("query", "passage"):
        before = _embedkit(nv_embed, MIXED_TEXTS, side, embedder=(trained, tokenizer))
        after = _embedkit(tmp_path / "adapter", MIXED_TEXTS, side, embedder=reloaded)
        np.testing.assert_allclose(after, before, atol=1e-5)
    base = _embedkit(nv_embed, MIXED_TEXTS, "passage", embedder=load_embedder(nv_embed, SPEC))
    assert np.abs(base - after).max() > 1e-3  # the adapter and the trained latent block are what reloaded


# --- the commands ----------------------------------------------------------------------------------------------


def test_eval_auto_falls_back_to_dygraph_when_the_export_cannot_trace_it(run_cli, tmp_path):
    from llm_checkpoints import DEMO_DATA, demo_texts

    from embedkit.modeling.tiny import build_tiny_nv_embed

    model_dir = build_tiny_nv_embed(tmp_path / "tiny-nv-embed", demo_texts())
    result = run_cli("eval", model_dir, "--data", DEMO_DATA, "--engine", "auto", "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["engine"] == "paddle" and 0.0 <= payload["datasets"][0]["metrics"]["ndcg_at_10"] <= 1.0
    assert "cannot be exported to a static graph" in " ".join(result.stderr.split())
    assert payload["spec"]["pooling"] == "latent_attention" and payload["spec"]["mask_instruction"] is True


def test_a_sentence_transformers_export_is_refused_for_what_it_cannot_reproduce():
    from embedkit.errors import UserError
    from embedkit.export.st_layout import check_expressible
    from embedkit.modeling.spec import EmbedderSpec

    with pytest.raises(UserError, match="latent_attention"):
        check_expressible(EmbedderSpec(**SPEC))
    with pytest.raises(UserError, match="mask_instruction"):
        check_expressible(EmbedderSpec(**{**SPEC, "pooling": "mean"}))


def test_latent_attention_pooling_on_a_model_without_the_block_is_refused_at_load(tmp_path):
    from llm_checkpoints import save_hf_llama

    from embedkit.errors import UserError

    model_dir = save_hf_llama(tmp_path / "llama")
    with pytest.raises(UserError, match="pooling latent_attention needs the model's own block"):
        load_embedder(model_dir, {"pooling": "latent_attention"})


def test_prune_removes_mistral_layers_and_keeps_the_latent_block(nv_embed, run_cli, tmp_path):
    model_dir = tmp_path / "model"
    embedder, tokenizer = load_embedder(nv_embed, SPEC)
    embedder.save_pretrained(model_dir, tokenizer)
    result = run_cli("prune", model_dir, "--layers", "1", "--output", tmp_path / "pruned", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "pruned" / "config.json").read_text())["text_config"]["num_hidden_layers"] == 1
    pruned = load_backbone(tmp_path / "pruned")
    assert len(layer_list(pruned)) == 1
    before, after = embedder.query_backbone.state_dict(), pruned.state_dict()
    for key in (k for k in before if k.startswith("latent_attention_model.")):
        np.testing.assert_array_equal(after[key].numpy(), before[key].numpy())
    assert load_embedder(tmp_path / "pruned")[0].spec.pooling == "latent_attention"


def test_flash_attention_reaches_the_mistral_inside(nv_embed):
    """Set, not run (GPU only): the Mistral's attention reads its own config, and its flash path is given the
    bidirectional mask (never None, which would make it causal)."""
    from embedkit.training.modeling import enable_flash_attention

    backbone = load_backbone(nv_embed)
    assert enable_flash_attention(backbone) and backbone.embedding_model.config.use_flash_attention
    mask = backbone.embedding_model._prepare_decoder_attention_mask(None, (2, 5), paddle.zeros([2, 5, 64]), 0)
    assert mask is not None and float(mask.abs().sum()) == 0.0


def test_the_identity_covers_latent_attention_and_the_instruction_mask():
    from embedkit.inference.identity import EmbeddingIdentity
    from embedkit.modeling.spec import EmbedderSpec

    def identity(**fields):
        return EmbeddingIdentity.of({"shared": "w"}, EmbedderSpec(**{**SPEC, **fields}), "paddle", "fp32")

    assert identity().digest != identity(mask_instruction=False).digest != identity(pooling="mean").digest
    assert identity().graph("shared")["query_instruction"] == SPEC["query_instruction"]  # its length is in the graph
    # Models without the mask keep the identity they had (the field is left out when false).
    assert "mask_instruction" not in EmbeddingIdentity.of({"shared": "w"}, EmbedderSpec(), "paddle", "fp32").spec

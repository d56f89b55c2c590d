"""Tiny random decoder checkpoints in the Hugging Face layouts of the LLM embedders, built with transformers (torch),
and the torch reference embeddings they are checked against (a uniquely named module: test dirs share sys.path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle  # noqa: F401  (paddle before torch, or their bundled libraries clash)
import torch

from embedkit.modeling.tiny import build_byte_bpe_tokenizer

REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "demo" / "scifact-mini"


def demo_texts(n: int = 200) -> list[str]:
    with (DEMO_DATA / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(next(handle)) for _ in range(n)]
    return [f"{d['title']} {d['text']}".strip() for d in docs]


# Mixed lengths in one batch, from 1 token to ~200 (within every max length used), so padding dominates the short rows.
MIXED_TEXTS = ["a", "short query about cells", "What reduces the risk of stroke?", *(t[:500] for t in demo_texts(5))]


def save_hf_qwen3(out_dir: Path, tied: bool = True, causal_lm: bool = False, seed: int = 0) -> Path:
    """A 2-layer Qwen3 shaped like the real ones where it matters: 4 query heads sharing 2 key/value heads, an
    explicit head_dim (32) unequal to hidden/heads (16), a non-default rope_theta, biases absent."""
    import transformers

    vocab = build_byte_bpe_tokenizer(out_dir, demo_texts(), "Qwen2Tokenizer", eos="<|endoftext|>",
                                     pad="<|endoftext|>")
    torch.manual_seed(seed)
    config = transformers.Qwen3Config(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                                      max_position_embeddings=512, rope_theta=1_000_000.0,
                                      tie_word_embeddings=tied, eos_token_id=0, pad_token_id=0, bos_token_id=None)
    model_class = transformers.Qwen3ForCausalLM if causal_lm else transformers.Qwen3Model
    model = model_class(config)
    with torch.no_grad():  # RMSNorm weights start at 1: random ones make a wrong norm visible
        for name, param in model.named_parameters():
            if "norm" in name:
                param.uniform_(0.5, 1.5)
    model.eval().save_pretrained(out_dir, safe_serialization=True)
    return out_dir


LLAMA_SPECIAL = {"eos": "</s>", "bos": "<s>", "pad": None}


def save_hf_llama(out_dir: Path, extra_special: tuple[str, ...] = (), seed: int = 0, family: str = "llama") -> Path:
    """A 2-layer LLaMA or Mistral (4 query heads sharing 2 key/value heads, untied embeddings) with a
    BOS-prepending tokenizer, in the base layout (``*Model`` weights without the ``model.`` prefix)."""
    import transformers

    # Mistral's repos (bge-en-icl, NV-Embed) name LLaMA's tokenizer class too.
    vocab = build_byte_bpe_tokenizer(out_dir, demo_texts(), "LlamaTokenizer", **LLAMA_SPECIAL,
                                     extra_special=extra_special)
    torch.manual_seed(seed)
    config_class, model_class = {"llama": (transformers.LlamaConfig, transformers.LlamaModel),
                                 "mistral": (transformers.MistralConfig, transformers.MistralModel)}[family]
    config = config_class(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                          rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=0,
                          pad_token_id=None)
    model = model_class(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.uniform_(0.5, 1.5)
    model.eval().save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def padded(token_lists: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in token_lists)
    ids = torch.full((len(token_lists), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_lists), width), dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        span = slice(0, len(tokens)) if side == "right" else slice(width - len(tokens), width)
        ids[row, span] = torch.tensor(tokens)
        mask[row, span] = 1
    return ids, mask


def reference_states(model, token_lists: list[list[int]], pad_id: int, side: str):
    """(last hidden states, mask) of a padded batch through a transformers model."""
    ids, mask = padded(token_lists, pad_id, side)
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state, mask


def reference_last_token(model, token_lists: list[list[int]], pad_id: int, side: str = "left") -> np.ndarray:
    """The last real token's state, L2-normalised: with left padding the final position (Hugging Face's recipe
    for Qwen3-Embedding), with right padding the one at length - 1 (Tevatron's for RepLLaMA)."""
    hidden, mask = reference_states(model, token_lists, pad_id, side)
    last = mask.sum(dim=1) - 1 if side == "right" else torch.full((len(token_lists),), hidden.shape[1] - 1)
    pooled = hidden[torch.arange(len(token_lists)), last]
    return torch.nn.functional.normalize(pooled, p=2, dim=-1).numpy()


def hf_token_lists(model_dir: Path, texts: list[str], prefix: str = "", suffix: str = "",
                   eos: bool = True) -> list[list[int]]:
    """Token ids by transformers' tokenizer: ``prefix + text`` (special tokens as the tokenizer adds them), then
    ``suffix`` tokenised on its own, then EOS."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    tail = tokenizer(suffix, add_special_tokens=False)["input_ids"] if suffix else []
    return [tokenizer(prefix + text)["input_ids"] + tail + ([tokenizer.eos_token_id] if eos else [])
            for text in texts]


# castorini/repllama-v1-7b-lora-passage's adapter_config.json, key for key (values shrunk where sizes matter).
REPLLAMA_ADAPTER_CONFIG = {
    "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
    "bias": "none",
    "enable_lora": None,
    "fan_in_fan_out": False,
    "inference_mode": True,
    "lora_alpha": 32,
    "lora_dropout": 0.1,
    "merge_weights": False,
    "modules_to_save": None,
    "peft_type": "LORA",
    "r": 8,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj", "up_proj", "gate_proj"],
    "task_type": "FEATURE_EXTRACTION",
}


def save_peft_adapter(out_dir: Path, base_dir: Path, fmt: str = "safetensors", seed: int = 1,
                      **config_changes) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A PEFT LoRA adapter for the LLaMA in ``base_dir``, written by hand in PEFT's layout (keys
    ``base_model.model.layers.N.self_attn.q_proj.lora_A.weight``, A [r, in], B [out, r]); B is random, as after
    training (PEFT starts it at zero). Returns module name -> (A, B)."""
    import transformers

    config = {**REPLLAMA_ADAPTER_CONFIG, **config_changes}
    base = transformers.LlamaModel.from_pretrained(base_dir)
    generator = torch.Generator().manual_seed(seed)
    pairs, state = {}, {}
    for name, module in base.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in config["target_modules"]:
            a = torch.randn(config["r"], module.in_features, generator=generator) * 0.1
            b = torch.randn(module.out_features, config["r"], generator=generator) * 0.1
            pairs[name] = (a, b)
            state[f"base_model.model.{name}.lora_A.weight"] = a
            state[f"base_model.model.{name}.lora_B.weight"] = b
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "adapter_config.json").write_text(json.dumps(config, indent=2))
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    else:
        torch.save(state, out_dir / "adapter_model.bin")
    return pairs


def merged_llama(base_dir: Path, pairs, scale: float):
    """The transformers LlamaModel of ``base_dir`` with W + scale * B @ A in every adapted Linear, in torch."""
    import transformers

    model = transformers.LlamaModel.from_pretrained(base_dir).eval()
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, (a, b) in pairs.items():
            modules[name].weight += scale * (b @ a)
    return model


# NV-Embed-v1's latent block, shrunk: 16 latents, 4 cross-attention heads of 32, on the 64-wide backbone.
NV_EMBED_LATENT = {"model_type": "latent_attention", "num_latents_value": 16, "num_cross_heads": 4,
                   "output_normalize": True, "hidden_dim": 64, "latent_dim": 64, "cross_dim_head": 32}


def nv_embed_latent_weights(latent: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Random ``latent_attention_model.*`` weights in the published checkpoint's names and torch layout
    (Linear weights [out, in]); LayerNorms away from 1/0 so a wrong one shows."""
    rng = np.random.default_rng(seed)
    dim, inner, mult = latent["latent_dim"], latent["num_cross_heads"] * latent["cross_dim_head"], 4

    def normal(*shape, scale=0.1):
        return (rng.normal(size=shape) * scale).astype("float32")

    prefix = "latent_attention_model."
    return {f"{prefix}{name}": value for name, value in {
        "latents": normal(latent["num_latents_value"], dim, scale=1.0),
        "cross_attend_blocks.0.norm.weight": rng.uniform(0.5, 1.5, dim).astype("float32"),
        "cross_attend_blocks.0.norm.bias": normal(dim),
        "cross_attend_blocks.0.norm_context.weight": rng.uniform(0.5, 1.5, latent["hidden_dim"]).astype("float32"),
        "cross_attend_blocks.0.norm_context.bias": normal(latent["hidden_dim"]),
        "cross_attend_blocks.0.fn.to_q.weight": normal(inner, dim, scale=0.3),
        "cross_attend_blocks.0.fn.to_kv.weight": normal(2 * inner, latent["hidden_dim"], scale=0.3),
        "cross_attend_blocks.0.fn.to_out.weight": normal(dim, inner),
        "cross_attend_blocks.1.norm.weight": rng.uniform(0.5, 1.5, dim).astype("float32"),
        "cross_attend_blocks.1.norm.bias": normal(dim),
        "cross_attend_blocks.1.fn.net.0.weight": normal(dim * mult * 2, dim),
        "cross_attend_blocks.1.fn.net.0.bias": normal(dim * mult * 2),
        "cross_attend_blocks.1.fn.net.2.weight": normal(dim, dim * mult),
        "cross_attend_blocks.1.fn.net.2.bias": normal(dim),
    }.items()}


def save_hf_nv_embed(out_dir: Path, seed: int = 0) -> Path:
    """A tiny NV-Embed-v1 in the published layout: ``config.json`` (model_type nvembed, a ``bidir_mistral``
    ``text_config`` with 4 query heads sharing 2 key/value heads and an explicit head_dim, a
    ``latent_attention_config``), one torch-format safetensors file of ``embedding_model.*`` (a transformers
    MistralModel's weights) and ``latent_attention_model.*``, and a BOS-prepending LLaMA-class tokenizer."""
    import transformers
    from safetensors.numpy import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = build_byte_bpe_tokenizer(out_dir, demo_texts(), "LlamaTokenizer", **LLAMA_SPECIAL)
    torch.manual_seed(seed)
    text = transformers.MistralConfig(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                      max_position_embeddings=512, rms_norm_eps=1e-5, tie_word_embeddings=False,
                                      bos_token_id=1, eos_token_id=0, pad_token_id=None)
    mistral = transformers.MistralModel(text).eval()
    with torch.no_grad():
        for name, param in mistral.named_parameters():
            if "norm" in name:
                param.uniform_(0.5, 1.5)
    state = {f"embedding_model.{k}": v.numpy() for k, v in mistral.state_dict().items()}
    state.update(nv_embed_latent_weights(NV_EMBED_LATENT, seed))
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    text_config = {**text.to_dict(), "model_type": "bidir_mistral", "architectures": ["MistralModel"],
                   "_name_or_path": "nvidia/NV-Embed-v1"}
    (out_dir / "config.json").write_text(json.dumps({
        "_name_or_path": "nvidia/NV-Embed-v1", "add_eos": True, "add_pad_token": True,
        "architectures": ["NVEmbedModel"],
        "auto_map": {"AutoConfig": "configuration_nvembed.NVEmbedConfig", "AutoModel": "modeling_nvembed.NVEmbedModel"},
        "hidden_size": 64, "is_mask_instruction": True, "latent_attention_config": NV_EMBED_LATENT,
        "mask_type": "b", "model_type": "nvembed", "padding_side": "right", "text_config": text_config,
        "torch_dtype": "float32", "transformers_version": transformers.__version__}, indent=2))
    return out_dir


def bidirectional_mistral_states(model_dir: Path, token_lists: list[list[int]], pad_id: int, causal: bool = False):
    """(last hidden states as numpy, mask) of a right-padded batch through transformers' MistralModel holding
    the checkpoint's ``embedding_model.*`` weights, run with a non-causal mask (padded keys masked), as NV-Embed's
    BidirectionalMistralModel runs it."""
    import transformers
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())["text_config"]
    config = transformers.MistralConfig(**{k: v for k, v in config.items() if k not in ("model_type", "architectures")})
    config._attn_implementation = "eager"
    model = transformers.MistralModel(config).eval()
    state = {k.removeprefix("embedding_model."): torch.from_numpy(v)
             for k, v in load_file(str(model_dir / "model.safetensors")).items() if k.startswith("embedding_model.")}
    model.load_state_dict(state, strict=True)
    for layer in model.layers:
        layer.self_attn.is_causal = False
    ids, mask = padded(token_lists, pad_id, "right")
    additive = torch.zeros(mask.shape[0], 1, mask.shape[1], mask.shape[1])
    hidden_keys = mask[:, None, None, :] == 0
    if causal:  # the ordinary decoder, for tests that show the difference
        hidden_keys = hidden_keys | ~torch.ones(mask.shape[1], mask.shape[1], dtype=torch.bool).tril()
    additive = additive.masked_fill(hidden_keys, torch.finfo(torch.float32).min)
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=additive).last_hidden_state
    return hidden.numpy(), mask.numpy()

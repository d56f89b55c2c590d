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

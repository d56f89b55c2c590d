"""Tiny randomly initialised models (2 layers, hidden 32-64) for tests and the `tiny-*` recipes.

The vocabulary is built from the texts given (BERT: whole words, then single characters as ``##`` pieces;
decoders: a byte-level BPE), so a tiny model needs no download and tokenises any text without unknown-token
collapse on the demo data. `TINY_MODELS` are the ones a recipe can name: ``tiny-bert``, and decoders set up as
the LLM embedder families (their `embedkit.modeling.prompts` preset in ``embedkit.json``): ``tiny-qwen3``
(Qwen3-Embedding), ``tiny-llara`` (a LLaMA with LLARA's ``<s1>``..``<s16>`` tokens), ``tiny-bge-en-icl`` (a
Mistral) and ``tiny-repllama`` (a Hugging Face PEFT LoRA adapter on a tiny LLaMA, as RepLLaMA is published).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from embedkit.filenames import SPEC_FILE

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_vocab(texts: Iterable[str], size: int = 2000) -> list[str]:
    words = Counter()
    chars = set()
    for text in texts:
        lowered = text.lower()
        words.update(re.findall(r"\w+|[^\w\s]", lowered))
        chars.update(ch for ch in lowered if not ch.isspace())
    pieces = sorted(chars) + [f"##{ch}" for ch in sorted(chars)]
    budget = max(size - len(SPECIAL_TOKENS) - len(pieces), 0)
    common = [w for w, _ in words.most_common() if len(w) > 1][:budget]
    return SPECIAL_TOKENS + pieces + common


def build_tiny_bert(out_dir: str | Path, texts: Iterable[str], hidden: int = 32, layers: int = 2, heads: int = 2,
                    max_position: int = 512, seed: int = 0, vocab_size: int = 2000) -> Path:
    """Write a randomly initialised BERT (config, safetensors weights, vocab) to ``out_dir``."""
    import paddle
    from paddlenlp.transformers import BertConfig, BertModel, BertTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab(texts, vocab_size)
    (out_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    paddle.seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 4,
                        max_position_embeddings=max_position, pad_token_id=0)
    BertModel(config).save_pretrained(str(out_dir), safe_serialization=True)
    BertTokenizer(str(out_dir / "vocab.txt"), do_lower_case=True).save_pretrained(str(out_dir))
    return out_dir


def build_byte_bpe_tokenizer(out_dir: str | Path, texts: Iterable[str], tokenizer_class: str, eos: str,
                             bos: str | None = None, pad: str | None = None, extra_special: Iterable[str] = (),
                             vocab_size: int = 600) -> int:
    """Write a byte-level BPE trained on ``texts`` (a decoder LLM's tokenizer files, tiny); return its size.

    ``tokenizer_class`` is what ``tokenizer_config.json`` names (``Qwen2Tokenizer``, ``LlamaTokenizer``); with
    ``bos`` every text starts with it, as LLaMA's tokenizer does. ``extra_special`` become special tokens
    (LLARA's ``<s1>``..``<s16>``).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specials = list(dict.fromkeys([t for t in (eos, bos, pad) if t] + list(extra_special)))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(list(texts), trainer)
    if bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.token_to_id(bos))])
    tokenizer.save(str(out_dir / "tokenizer.json"))
    tokenizer.model.save(str(out_dir))  # vocab.json and merges.txt, which PaddleNLP's slow Qwen2 tokenizer reads
    (out_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": tokenizer_class, "eos_token": eos, "bos_token": bos, "pad_token": pad, "unk_token": None,
        "add_bos_token": bool(bos), "add_eos_token": False, "additional_special_tokens": list(extra_special),
        "model_max_length": 4096}), encoding="utf-8")
    return tokenizer.get_vocab_size()


def _write_preset(model_dir: Path, preset: str) -> None:
    from embedkit.modeling.prompts import preset_fields

    (model_dir / SPEC_FILE).write_text(json.dumps(preset_fields(preset), indent=2), encoding="utf-8")


def build_tiny_qwen3(out_dir: str | Path, texts: Iterable[str], seed: int = 0) -> Path:
    """A Qwen3 like Qwen3-Embedding's in the ways that matter: grouped KV heads, explicit head_dim, tied embeddings."""
    import paddle

    from embedkit.modeling.qwen3 import Qwen3Config, Qwen3Model

    out_dir = Path(out_dir)
    vocab = build_byte_bpe_tokenizer(out_dir, texts, "Qwen2Tokenizer", eos="<|endoftext|>", pad="<|endoftext|>")
    paddle.seed(seed)
    config = Qwen3Config(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=1024,
                         rope_theta=1_000_000.0, tie_word_embeddings=True, eos_token_id=0, pad_token_id=0)
    Qwen3Model(config).save_pretrained(str(out_dir), safe_serialization=True)
    _write_preset(out_dir, "qwen3-embedding")
    return out_dir


def _tiny_llama(out_dir: Path, texts: Iterable[str], seed: int, extra_special: Iterable[str] = (),
                mistral: bool = False):
    """A tiny LLaMA (or Mistral, which shares its layout and tokenizer) with grouped KV heads, BOS-prefixed."""
    import paddle
    from paddlenlp.transformers import LlamaConfig, LlamaModel, MistralConfig, MistralModel

    vocab = build_byte_bpe_tokenizer(out_dir, texts, "LlamaTokenizer", eos="</s>", bos="<s>",
                                     extra_special=extra_special)
    paddle.seed(seed)
    config_class, model_class = (MistralConfig, MistralModel) if mistral else (LlamaConfig, LlamaModel)
    config = config_class(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                          rms_norm_eps=1e-5, eos_token_id=0, bos_token_id=1, pad_token_id=0)
    model = model_class(config)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    return model


def build_tiny_llara(out_dir: str | Path, texts: Iterable[str], seed: int = 0) -> Path:
    from embedkit.modeling.prompts import LLARA_SPECIAL_TOKENS

    out_dir = Path(out_dir)
    _tiny_llama(out_dir, texts, seed, LLARA_SPECIAL_TOKENS)
    _write_preset(out_dir, "llara")
    return out_dir


def build_tiny_bge_en_icl(out_dir: str | Path, texts: Iterable[str], seed: int = 0) -> Path:
    out_dir = Path(out_dir)
    _tiny_llama(out_dir, texts, seed, mistral=True)
    _write_preset(out_dir, "bge-en-icl")
    return out_dir


def build_tiny_repllama(out_dir: str | Path, texts: Iterable[str], seed: int = 0, r: int = 8) -> Path:
    """``out_dir/base``, a tiny LLaMA, and ``out_dir/adapter``, a PEFT LoRA adapter on it in RepLLaMA's layout
    (returned). Its B matrices are random, as after training, so the merge changes the model."""
    import numpy as np
    from paddle import nn
    from safetensors.numpy import save_file

    from embedkit.filenames import PEFT_CONFIG_FILE

    out_dir = Path(out_dir)
    base = _tiny_llama(out_dir / "base", texts, seed)
    rng = np.random.default_rng(seed)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj", "up_proj", "gate_proj"]
    state = {}
    for name, layer in base.named_sublayers():
        if isinstance(layer, nn.Linear) and name.rsplit(".", 1)[-1] in targets:
            fan_in, fan_out = layer.weight.shape
            state[f"base_model.model.{name}.lora_A.weight"] = (rng.normal(size=(r, fan_in)) * 0.1).astype("float32")
            state[f"base_model.model.{name}.lora_B.weight"] = (rng.normal(size=(fan_out, r)) * 0.1).astype("float32")
    adapter = out_dir / "adapter"
    adapter.mkdir()
    save_file(state, str(adapter / "adapter_model.safetensors"), metadata={"format": "pt"})
    (adapter / PEFT_CONFIG_FILE).write_text(json.dumps({
        "base_model_name_or_path": "../base",  # relative to the adapter: the builder's staging dir moves
        "peft_type": "LORA", "task_type": "FEATURE_EXTRACTION", "r": r, "lora_alpha": 2 * r, "lora_dropout": 0.1,
        "target_modules": targets, "bias": "none", "fan_in_fan_out": False, "modules_to_save": None,
        "inference_mode": True}, indent=2), encoding="utf-8")
    _write_preset(adapter, "repllama")
    return adapter


def build_tiny_nv_embed(out_dir: str | Path, texts: Iterable[str], seed: int = 0) -> Path:
    """An NV-Embed in its published layout (config.json with text and latent-attention sub-configs, weights
    ``embedding_model.*`` and ``latent_attention_model.*``): a bidirectional Mistral with grouped KV heads and
    an explicit head_dim, and a latent block of 16 latents and 4 heads."""
    import paddle

    from embedkit.modeling.nv_embed import NVEmbedConfig, NVEmbedModel
    from embedkit.modeling.prompts import preset_fields

    out_dir = Path(out_dir)
    # The query prompt is among the tokenizer's training texts, so it takes a few tokens, as in the real one,
    # rather than most of a short query's max length (it is left out of the pooling).
    prompt = preset_fields("nv-embed")["query_instruction"]
    vocab = build_byte_bpe_tokenizer(out_dir, [*texts, *[prompt] * 1000], "LlamaTokenizer", eos="</s>", bos="<s>")
    paddle.seed(seed)
    text = {"model_type": "bidir_mistral", "architectures": ["MistralModel"], "vocab_size": vocab, "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 16, "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "sliding_window": 4096, "eos_token_id": 0, "bos_token_id": 1}
    latent = {"num_latents_value": 16, "num_cross_heads": 4, "cross_dim_head": 16, "hidden_dim": 64, "latent_dim": 64,
              "output_normalize": True}
    config = NVEmbedConfig(text_config=text, latent_attention_config=latent, eos_token_id=0, bos_token_id=1)
    NVEmbedModel(config).save_pretrained(str(out_dir), safe_serialization=True)
    _write_preset(out_dir, "nv-embed")
    return out_dir


# Name -> builder(out_dir, texts, seed) returning the model dir inside out_dir.
TINY_MODELS = {"tiny-bert": build_tiny_bert, "tiny-qwen3": build_tiny_qwen3, "tiny-llara": build_tiny_llara,
               "tiny-repllama": build_tiny_repllama, "tiny-bge-en-icl": build_tiny_bge_en_icl,
               "tiny-nv-embed": build_tiny_nv_embed}

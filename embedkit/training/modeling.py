"""The model being trained: an :class:`Embedder` set up for the recipe's fine-tune type, plus its loss.

- ``sft``: every parameter trains;
- ``lora``: adapters on the attention projections (``embedkit.modeling.lora``), everything else frozen;
- ``bitfit``: only bias terms train (Ben Zaken et al. 2022, "BitFit"); a model without biases is an error.

``separate_towers: true`` gives the query and passage sides their own encoder, both initialised from the
same checkpoint (or from the base model's own towers when it already has two).
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

import paddle
from paddle import nn

from embedkit.config import TrainConfig
from embedkit.errors import UserError
from embedkit.losses import LossInputs, build_loss
from embedkit.modeling.embedder import Embedder, instruction_token_counts, resolve_spec, tower_dirs
from embedkit.modeling.loading import load_backbone, load_tokenizer
from embedkit.modeling.lora import apply_lora
from embedkit.modeling.spec import EmbedderSpec


@dataclass
class ParameterCount:
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0


def embedder_spec(base_dir: Path, config: TrainConfig, base_reference: str) -> EmbedderSpec:
    """The base model's spec with the recipe's pooling, normalisation, instructions and lengths applied."""
    overrides = {
        "pooling": config.sentence_pooling_method,
        "normalized": config.normalized,
        "query_instruction": config.query_instruction_for_retrieval or "",
        "passage_instruction": config.passage_instruction_for_retrieval or "",
        "query_max_len": config.query_max_len,
        "passage_max_len": config.passage_max_len,
        "matryoshka_dims": list(config.matryoshka_dims) if config.use_matryoshka else [],
        "base_model": base_reference,
    }
    spec = resolve_spec(base_dir, overrides)
    # Empty instructions and dims are real values here, not "keep the base model's".
    spec.query_instruction, spec.passage_instruction = overrides["query_instruction"], overrides["passage_instruction"]
    spec.matryoshka_dims = overrides["matryoshka_dims"]
    return spec


def model_dtype(config: TrainConfig) -> str:
    """Weights load in float32 under AMP O1; O2 ("pure" half precision) loads them in half precision."""
    if config.fp16_opt_level == "O2" and (config.fp16 or config.bf16):
        return "bfloat16" if config.bf16 else "float16"
    return "float32"


def load_embedder_for_training(base_dir: Path, config: TrainConfig, base_reference: str):
    """(Embedder, tokenizer) for the recipe, with its fine-tune type applied."""
    spec = embedder_spec(base_dir, config, base_reference)
    dtype = model_dtype(config)
    query_dir, passage_dir = tower_dirs(base_dir, spec)
    if passage_dir is not None and not config.separate_towers:
        raise UserError("the base model has separate query and passage towers: set separate_towers: true", base_dir)
    query = load_backbone(query_dir, dtype=dtype)
    passage = None
    if config.separate_towers:
        passage = load_backbone(passage_dir or query_dir, dtype=dtype)
    spec.query_model = spec.passage_model = None  # Embedder.save_pretrained lays the towers out itself
    tokenizer = load_tokenizer(query_dir, padding_side=spec.padding_side)
    if config.use_matryoshka:  # the dims actually trained (validated; the full width is always among them)
        from embedkit.losses.matryoshka import matryoshka_schedule

        spec.matryoshka_dims = [dim for dim, _ in matryoshka_schedule(
            config.matryoshka_dims, config.matryoshka_loss_weights, query.config.hidden_size)]
    if config.use_flash_attention:
        for backbone in filter(None, (query, passage)):
            enable_flash_attention(backbone)
    if config.fine_tune_type == "lora":
        lora = config.lora
        towers = {"query": (query, query_dir), "passage": (passage, passage_dir or query_dir)}
        wrapped = {side: apply_lora(bb, lora.r, lora.alpha, lora.dropout, lora.target_modules, str(d))
                   if bb is not None else None for side, (bb, d) in towers.items()}
        query, passage = wrapped["query"], wrapped["passage"]
    embedder = Embedder(query, spec, passage, instruction_token_counts(tokenizer, spec))
    if config.fine_tune_type == "bitfit":
        freeze_all_but_biases(embedder)
    return embedder, tokenizer


def enable_flash_attention(backbone: nn.Layer) -> bool:
    """Set ``config.use_flash_attention`` where the architecture's modeling code reads it; say so where not.

    PaddleNLP's decoder LLMs (LLaMA, Qwen2, Mistral, ...) implement it; BERT and ERNIE attend through
    ``paddle.nn.MultiHeadAttention`` and ignore it, which is reported instead of passing silently (the original
    example declared the flag and never read it).
    """
    from embedkit import console

    # The backbone, or the PaddleNLP model inside it whose config its attention reads (NV-Embed's Mistral,
    # under embedding_model, whose attention mask is bidirectional, so flash attention stays non-causal).
    models = [layer for layer in [backbone, *backbone.sublayers()] if getattr(layer, "config", None) is not None]
    readers = [m for m in models if "use_flash_attention" in inspect.getsource(sys.modules[type(m).__module__])]
    if not readers:
        console.get().info(f"[yellow]use_flash_attention is ignored: {type(backbone).__name__} has no flash-attention "
                           "path in PaddleNLP (decoder LLMs such as LLaMA, Qwen2 and Mistral do)[/]")
        return False
    for model in readers:
        model.config.use_flash_attention = True
    return True


def freeze_all_but_biases(embedder: Embedder) -> None:
    biases = 0
    for name, param in embedder.named_parameters():
        is_bias = name.endswith("bias") or ".bias" in name
        param.stop_gradient = not is_bias
        biases += is_bias
    if not biases:
        raise UserError("fine_tune_type bitfit: this model has no bias parameters to train (LLaMA-style models "
                        "use bias-free layers); use lora or sft")


def count_parameters(layer: nn.Layer) -> ParameterCount:
    trainable = total = 0
    for param in layer.parameters():
        n = int(paddle.numel(param).item()) if hasattr(paddle, "numel") else int(param.size)
        total += n
        if not param.stop_gradient:
            trainable += n
    return ParameterCount(trainable, total)


class BiEncoderForTraining(nn.Layer):
    """Embedder + loss in one layer, so data parallel wraps (and synchronises) both through ``forward``."""

    def __init__(self, embedder: Embedder, config: TrainConfig):
        super().__init__()
        self.embedder = embedder
        self.loss = build_loss(config, embedder.hidden_size)
        self.group_size = 1 if config.use_inbatch_neg else config.train_group_size
        # Matryoshka normalises each truncated slice itself, so it needs the raw pooled embeddings.
        self.normalize_embeddings = config.normalized and not config.use_matryoshka

    def forward(self, query, passage, false_negatives=None, teacher_scores=None, query_positive_hashes=None,
                passage_hashes=None):
        q = self.embedder.embed(query, "query", normalized=self.normalize_embeddings)
        p = self.embedder.embed(passage, "passage", normalized=self.normalize_embeddings)
        inputs = LossInputs(self.group_size, false_negatives=false_negatives, teacher_scores=teacher_scores,
                            query_positive_hashes=query_positive_hashes, passage_hashes=passage_hashes)
        return self.loss(q, p, inputs)

"""The bi-encoder: one shared backbone (default) or separate query and passage towers, plus pooling.

A pooling with parameters (NV-Embed's latent attention) uses the block its backbone holds, so the block trains,
saves and loads with the backbone. With ``spec.mask_instruction`` each side's instruction prefix is left out of
the pooling: its token count per side is fixed when the embedder is built from its tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import paddle
from paddle import nn

from embedkit.choices import Side
from embedkit.errors import UserError
from embedkit.modeling.loading import load_backbone, load_tokenizer
from embedkit.modeling.pooling import POOLING_BLOCKS, normalize, pool, pooling_block
from embedkit.modeling.spec import EmbedderSpec, read_spec
from embedkit.modeling.tokenize import instruction_tokens


class Embedder(nn.Layer):
    """Maps tokenised text to sentence embeddings [B, H] (L2-normalised when ``spec.normalized``)."""

    def __init__(self, query_backbone: nn.Layer, spec: EmbedderSpec, passage_backbone: Optional[nn.Layer] = None,
                 masked_tokens: Optional[dict[str, int]] = None):
        super().__init__()
        self.spec = spec
        # Side -> leading tokens left out of the pooling (`instruction_token_counts`); none unless given.
        self.masked_tokens = dict(masked_tokens or {})
        self.query_backbone = query_backbone
        # A shared encoder is registered once, so its parameters are trained and saved once.
        self.passage_backbone = passage_backbone
        if spec.pooling in POOLING_BLOCKS:
            for backbone in filter(None, (query_backbone, passage_backbone)):
                if pooling_block(backbone, spec.pooling) is None:
                    raise UserError(f"pooling {spec.pooling} needs the model's own block "
                                    f"({POOLING_BLOCKS[spec.pooling]}, as NV-Embed has); "
                                    f"{type(backbone).__name__} has none")

    @property
    def hidden_size(self) -> int:
        return self.query_backbone.config.hidden_size

    def backbone(self, side: Side) -> nn.Layer:
        return self.passage_backbone if side == "passage" and self.passage_backbone is not None else self.query_backbone

    def embed(self, inputs: dict[str, paddle.Tensor], side: Side, normalized: Optional[bool] = None) -> paddle.Tensor:
        model_inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        # One expression, as before NV-Embed: how the backbone is called changes what paddle.jit.to_static
        # converts (through a local name, a tiny LLaMA once traced without embedkit.inference.traceable). The
        # decoder export tests (tests/inference/test_decoder_models.py) say which families export.
        outputs = self.backbone(side)(**model_inputs, return_dict=True)
        pooled = pool(outputs.last_hidden_state, inputs["attention_mask"], self.spec.pooling,
                      block=pooling_block(self.backbone(side), self.spec.pooling),
                      skip=self.masked_tokens.get(side, 0))
        if self.spec.normalized if normalized is None else normalized:
            pooled = normalize(pooled)
        return pooled

    def forward(self, query: dict[str, paddle.Tensor], passage: dict[str, paddle.Tensor], normalized: Optional[bool] = None):
        return self.embed(query, "query", normalized), self.embed(passage, "passage", normalized)

    def save_pretrained(self, out_dir: str | Path, tokenizer=None) -> None:
        """Weights as safetensors, the tokenizer, and ``embedkit.json`` (towers in subfolders when separate)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        spec = self.spec
        if self.passage_backbone is None:
            self.query_backbone.save_pretrained(str(out_dir), safe_serialization=True)
            if tokenizer is not None:
                tokenizer.save_pretrained(str(out_dir))
            spec = spec.updated(query_model=None, passage_model=None)
        else:
            for side, sub in (("query", "query_model"), ("passage", "passage_model")):
                self.backbone(side).save_pretrained(str(out_dir / sub), safe_serialization=True)
                if tokenizer is not None:
                    tokenizer.save_pretrained(str(out_dir / sub))
            spec = spec.updated(query_model="query_model", passage_model="passage_model")
        spec.save(out_dir)


def instruction_token_counts(tokenizer, spec: EmbedderSpec) -> dict[str, int]:
    """Side -> how many leading tokens the pooling leaves out: each side's instruction prefix when
    ``spec.mask_instruction``, else none."""
    if not spec.mask_instruction:
        return {}
    counts = {"query": instruction_tokens(tokenizer, spec.query_instruction),
              "passage": instruction_tokens(tokenizer, spec.passage_instruction)}
    for side, max_len in (("query", spec.query_max_len), ("passage", spec.passage_max_len)):
        if counts[side] and counts[side] >= max_len - 1:  # room for at least one token of text and EOS
            raise UserError(f"{side}_max_len {max_len} leaves no room for the text: the {side} instruction takes "
                            f"{counts[side]} tokens, which mask_instruction leaves out of the pooling")
    return counts


def resolve_spec(model_dir: str | Path, overrides: Optional[dict] = None) -> EmbedderSpec:
    """The model's own spec (or a default one for a plain checkpoint) with explicit ``overrides`` applied."""
    spec = read_spec(model_dir) or EmbedderSpec()
    return spec.updated(**{k: v for k, v in (overrides or {}).items() if v is not None})


def tower_dirs(model_dir: str | Path, spec: EmbedderSpec) -> tuple[Path, Optional[Path]]:
    model_dir = Path(model_dir)
    if spec.two_tower:
        return model_dir / spec.query_model, model_dir / spec.passage_model
    return model_dir, None


def load_embedder(model_dir: str | Path, overrides: Optional[dict] = None, dtype: str = "float32"):
    """(Embedder, tokenizer) for an embedkit output dir, a sentence-transformers dir or a plain checkpoint."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError("model directory not found", model_dir)
    spec = resolve_spec(model_dir, overrides)
    quantization = spec.quantization or {}
    weight_only = quantization.get("engine") == "paddle"
    if weight_only:  # refused on CPU before anything loads; on GPU the backbone computes in the record's dtype
        from embedkit.modeling.weight_only import require_weight_only_gpu

        arch = require_weight_only_gpu(quantization["type"], "auto", quantization.get("group_size") or -1)
        dtype = quantization.get("compute_dtype", "float16")
    query_dir, passage_dir = tower_dirs(model_dir, spec)
    query_backbone = load_backbone(query_dir, dtype=dtype)
    passage_backbone = load_backbone(passage_dir, dtype=dtype) if passage_dir is not None else None
    tokenizer = load_tokenizer(query_dir, padding_side=spec.padding_side)
    embedder = Embedder(query_backbone, spec, passage_backbone, instruction_token_counts(tokenizer, spec))
    if weight_only:
        from embedkit.modeling.weight_only import quantize_linears

        for backbone in (b for b in (query_backbone, passage_backbone) if b is not None):
            quantize_linears(backbone, quantization["type"], quantization.get("group_size") or -1, arch, dtype=dtype)
    return embedder, tokenizer


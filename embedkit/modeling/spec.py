"""`embedkit.json`: what a saved embedder needs besides its weights, so later commands need no flags.

Plain checkpoints (a Hugging Face or PaddleNLP model dir without `embedkit.json`) get a spec from
command-line flags instead; sentence-transformers dirs contribute their pooling from `1_Pooling/` and their
query/document prompts from `config_sentence_transformers.json` (Qwen3-Embedding's query instruction).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

from pydantic import Field

from embedkit.choices import PaddingSide, Pooling
from embedkit.config.schema import DEFAULT_PASSAGE_MAX_LEN, DEFAULT_QUERY_MAX_LEN
from embedkit.config.validation import LAX, Schema, Source, read_json, validate
from embedkit.errors import UserError
from embedkit.filenames import (
    MODEL_CONFIG_FILE,
    SPEC_FILE,
    ST_CONFIG_FILE,
    ST_MODULES_FILE,
    ST_POOLING_CONFIG,
    ST_PROMPTS_FILE,
)
from embedkit.fsutil import write_json


class EmbedderSpec(Schema):
    pooling: Annotated[Pooling, LAX] = Pooling.MEAN
    normalized: bool = True
    query_instruction: str = ""
    passage_instruction: str = ""
    query_max_len: int = Field(DEFAULT_QUERY_MAX_LEN, ge=1)
    passage_max_len: int = Field(DEFAULT_PASSAGE_MAX_LEN, ge=1)
    matryoshka_dims: list[Annotated[int, Field(gt=0)]] = Field(default_factory=list)
    # Two-tower (RocketQA-style) models keep each tower in a subfolder; None means one shared encoder.
    query_model: Optional[str] = None
    passage_model: Optional[str] = None
    padding_side: Annotated[PaddingSide, LAX] = PaddingSide.RIGHT
    # Append the tokenizer's EOS token when the tokenizer did not; None: exactly when pooling is "last".
    append_eos: Optional[bool] = None
    # Leave each text's instruction prefix out of the pooling mask (NV-Embed's is_mask_instruction): the first
    # len(tokenizer.tokenize(prefix)) real tokens, counted as NV-Embed counts them (`instruction_tokens`).
    mask_instruction: bool = False
    base_model: Optional[str] = None
    # What `embedkit prune` removed to make this model (layers, scores, selection); None for an unpruned one.
    pruned: Optional[dict[str, Any]] = None
    # What `embedkit quantize` did to make this model (type, engine, group size, calibration, ignored layers);
    # part of the embedding identity. None for an unquantized one.
    quantization: Optional[dict[str, Any]] = None
    embedkit_version: str = ""

    def appends_eos(self) -> bool:
        """Last-token embedders (RepLLaMA, e5-mistral, gte-Qwen2, Qwen3-Embedding) pool the EOS token they were
        trained with; without it the last word of the text would be pooled instead."""
        return self.append_eos if self.append_eos is not None else self.pooling == Pooling.LAST

    @property
    def two_tower(self) -> bool:
        return self.query_model is not None and self.passage_model is not None

    def updated(self, **changes: Any) -> EmbedderSpec:
        """A copy with ``changes`` (fields by name, from flags or a recipe) applied and checked."""
        return validate(EmbedderSpec, {**self.model_dump(), **changes}, Source(None))

    def save(self, model_dir: str | Path) -> None:
        from embedkit import __version__

        self.embedkit_version = __version__
        write_json(Path(model_dir) / SPEC_FILE, self.model_dump(mode="json"))


def read_spec(model_dir: str | Path) -> Optional[EmbedderSpec]:
    """The spec saved in ``model_dir``; else its family's preset when the family is one embedder (NV-Embed, whose
    published sentence-transformers files describe a mean pooling its latent block wraps); else a spec derived
    from a sentence-transformers layout; else None."""
    model_dir = Path(model_dir)
    path = model_dir / SPEC_FILE
    if path.is_file():
        return validate(EmbedderSpec, *_json_object(path))
    return _family_spec(model_dir) or _sentence_transformers_spec(model_dir)


def _family_spec(model_dir: Path) -> Optional[EmbedderSpec]:
    from embedkit.modeling.architectures import read_architecture
    from embedkit.modeling.prompts import preset_fields

    if not (model_dir / MODEL_CONFIG_FILE).is_file():
        return None
    try:
        preset = read_architecture(model_dir).preset
    except UserError:  # an unknown family, or a config.json that loading reports on
        return None
    return EmbedderSpec(**preset_fields(preset)) if preset else None


def _json_object(path: Path) -> tuple[dict, Source]:
    data, source = read_json(path)
    if not isinstance(data, dict):
        raise UserError("expected a JSON object", path, 1)
    return data, source


def _sentence_transformers_spec(model_dir: Path) -> Optional[EmbedderSpec]:
    pooling_cfg = model_dir / ST_POOLING_CONFIG
    if not pooling_cfg.is_file():
        return None
    cfg, _ = _json_object(pooling_cfg)
    pooling = Pooling.MEAN
    if cfg.get("pooling_mode_cls_token"):
        pooling = Pooling.CLS
    elif cfg.get("pooling_mode_lasttoken"):
        pooling = Pooling.LAST
    modules = model_dir / ST_MODULES_FILE
    normalized = modules.is_file() and "Normalize" in modules.read_text(encoding="utf-8")
    max_len = 256
    st_cfg = model_dir / ST_CONFIG_FILE
    if st_cfg.is_file():
        max_len = _json_object(st_cfg)[0].get("max_seq_length", max_len)
    prompts = _st_prompts(model_dir / ST_PROMPTS_FILE)
    return EmbedderSpec(pooling=pooling, normalized=normalized, query_max_len=max_len, passage_max_len=max_len,
                        query_instruction=prompts.get("query", ""),
                        passage_instruction=prompts.get("document", prompts.get("passage", "")))


def _st_prompts(path: Path) -> dict[str, str]:
    """sentence-transformers' named prompts, text prefixed before encoding (only the string-valued ones)."""
    prompts = _json_object(path)[0].get("prompts") if path.is_file() else None
    return {k: v for k, v in prompts.items() if isinstance(v, str)} if isinstance(prompts, dict) else {}

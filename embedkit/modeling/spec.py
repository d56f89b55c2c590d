"""`embedkit.json`: what a saved embedder needs besides its weights, so later commands need no flags.

Plain checkpoints (a Hugging Face or PaddleNLP model dir without `embedkit.json`) get a spec from
command-line flags instead; sentence-transformers dirs contribute their pooling from `1_Pooling/`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Optional

from embedkit.errors import UserError
from embedkit.fsutil import write_json

SPEC_FILE = "embedkit.json"
Pooling = Literal["cls", "mean", "last"]


@dataclass
class EmbedderSpec:
    pooling: Pooling = "mean"
    normalized: bool = True
    query_instruction: str = ""
    passage_instruction: str = ""
    query_max_len: int = 32
    passage_max_len: int = 128
    matryoshka_dims: list[int] = field(default_factory=list)
    # Two-tower (RocketQA-style) models keep each tower in a subfolder; None means one shared encoder.
    query_model: Optional[str] = None
    passage_model: Optional[str] = None
    padding_side: Literal["right", "left"] = "right"
    # Append the tokenizer's EOS token when the tokenizer did not; None: exactly when pooling is "last".
    append_eos: Optional[bool] = None
    base_model: Optional[str] = None
    # What `embedkit prune` removed to make this model (layers, scores, selection); None for an unpruned one.
    pruned: Optional[dict[str, Any]] = None
    embedkit_version: str = ""

    def appends_eos(self) -> bool:
        """Last-token embedders (RepLLaMA, e5-mistral, gte-Qwen2, Qwen3-Embedding) pool the EOS token they were
        trained with; without it the last word of the text would be pooled instead."""
        return self.append_eos if self.append_eos is not None else self.pooling == "last"

    @property
    def two_tower(self) -> bool:
        return self.query_model is not None and self.passage_model is not None

    def save(self, model_dir: str | Path) -> None:
        from embedkit import __version__

        self.embedkit_version = __version__
        write_json(Path(model_dir) / SPEC_FILE, asdict(self))


def read_spec(model_dir: str | Path) -> Optional[EmbedderSpec]:
    """The spec saved in ``model_dir``, a spec derived from a sentence-transformers layout, or None."""
    model_dir = Path(model_dir)
    path = model_dir / SPEC_FILE
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserError(f"invalid JSON: {exc.msg}", path, exc.lineno) from None
        known = {f.name for f in fields(EmbedderSpec)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown key(s) {', '.join(unknown)}", path)
        return EmbedderSpec(**data)
    return _sentence_transformers_spec(model_dir)


def _sentence_transformers_spec(model_dir: Path) -> Optional[EmbedderSpec]:
    pooling_cfg = model_dir / "1_Pooling" / "config.json"
    if not pooling_cfg.is_file():
        return None
    cfg = json.loads(pooling_cfg.read_text(encoding="utf-8"))
    pooling: Pooling = "mean"
    if cfg.get("pooling_mode_cls_token"):
        pooling = "cls"
    elif cfg.get("pooling_mode_lasttoken"):
        pooling = "last"
    modules = model_dir / "modules.json"
    normalized = modules.is_file() and "Normalize" in modules.read_text(encoding="utf-8")
    max_len = 256
    st_cfg = model_dir / "sentence_bert_config.json"
    if st_cfg.is_file():
        max_len = json.loads(st_cfg.read_text(encoding="utf-8")).get("max_seq_length", max_len)
    return EmbedderSpec(pooling=pooling, normalized=normalized, query_max_len=max_len, passage_max_len=max_len)

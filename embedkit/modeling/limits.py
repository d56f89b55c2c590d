"""What a model's ``config.json`` allows: the longest input its position embeddings take, and its width.

Read without loading the model, so a recipe or flag asking for more is refused before any work starts (a
longer input would otherwise fail deep in the encoder, as an ONNX Runtime INVALID_ARGUMENT for example).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from embedkit.config.validation import read_json
from embedkit.errors import UserError
from embedkit.filenames import LORA_CONFIG_FILE, MODEL_CONFIG_FILE, SPEC_FILE
from embedkit.modeling.hf_peft import architecture_config_file, is_peft_dir
from embedkit.modeling.model_config import read_model_config
from embedkit.modeling.spec import EmbedderSpec, read_spec

# fairseq's RoBERTa numbers positions from pad_token_id + 1, so that many position embeddings never hold a token.
_POSITIONS_AFTER_PADDING = ("roberta", "xlm-roberta")


@dataclass(frozen=True)
class ModelLimits:
    max_sequence_length: Optional[int]  # None: config.json does not say
    hidden_size: Optional[int]
    config_file: Path
    length_origin: str  # how max_sequence_length follows from config.json, for messages

    def length_problem(self, length: Optional[int]) -> Optional[str]:
        """Why ``length`` tokens do not fit this model, or None when they do (or nothing is known)."""
        if length is None or self.max_sequence_length is None or length <= self.max_sequence_length:
            return None
        return (f"{length} tokens are more than the model takes: {self.max_sequence_length} "
                f"({self.length_origin} in {self.config_file})")


def model_limits(model_dir: str | Path) -> Optional[ModelLimits]:
    """The limits of the encoder(s) in ``model_dir`` (the tighter tower of a two-tower model, a LoRA adapter's
    base model), or None when there is no config.json to read them from."""
    limits = [_limits(path) for path in _config_files(Path(model_dir))]
    if not limits:
        return None
    return min(limits, key=lambda lim: (lim.max_sequence_length is None, lim.max_sequence_length or 0))


def fitted_to_model(model_dir: str | Path, spec: EmbedderSpec, overrides: Optional[dict] = None) -> EmbedderSpec:
    """``spec`` with max lengths the model can take.

    A length the user chose (an option, or the model's own ``embedkit.json`` / sentence-transformers config)
    that is too long is an error now, not an encoder failure mid-corpus; embedkit's default for a plain
    checkpoint (128 passage tokens) is lowered to what the model takes.
    """
    limits = model_limits(model_dir)
    if limits is None or limits.max_sequence_length is None:
        return spec
    own_spec = read_spec(model_dir) is not None
    lowered = {}
    for field in ("query_max_len", "passage_max_len"):
        problem = limits.length_problem(getattr(spec, field))
        if problem is None:
            continue
        if field in (overrides or {}):
            raise UserError(f"{field}: {problem}")
        if own_spec:
            raise UserError(f"{field}: {problem}", Path(model_dir) / SPEC_FILE)
        lowered[field] = limits.max_sequence_length
    return spec.updated(**lowered) if lowered else spec


def _config_files(model_dir: Path) -> list[Path]:
    spec = read_spec(model_dir)
    if spec is not None and spec.two_tower:
        return [*_config_files(model_dir / spec.query_model), *_config_files(model_dir / spec.passage_model)]
    if (model_dir / MODEL_CONFIG_FILE).is_file():
        return [model_dir / MODEL_CONFIG_FILE]
    if (model_dir / LORA_CONFIG_FILE).is_file():
        base = _object(model_dir / LORA_CONFIG_FILE).get("base_model_name_or_path")
        if isinstance(base, str) and Path(base).is_dir():
            return _config_files(Path(base))
    if is_peft_dir(model_dir):
        try:
            return [architecture_config_file(model_dir)]
        except UserError:  # loading the model says what is missing
            return []
    return []


def _limits(config_file: Path) -> ModelLimits:
    config = read_model_config(config_file.parent)
    positions = config.get("max_position_embeddings")
    hidden = config.get("hidden_size")
    origin = "max_position_embeddings"
    if isinstance(positions, int) and config.get("model_type") in _POSITIONS_AFTER_PADDING:
        pad = config.get("pad_token_id")
        pad = pad if isinstance(pad, int) else 1
        origin = f"max_position_embeddings {positions} minus the {pad + 1} positions {config['model_type']} reserves,"
        positions -= pad + 1
    return ModelLimits(positions if isinstance(positions, int) else None, hidden if isinstance(hidden, int) else None,
                       config_file, origin)


def _object(path: Path) -> dict[str, Any]:
    data, _ = read_json(path)
    return data if isinstance(data, dict) else {}

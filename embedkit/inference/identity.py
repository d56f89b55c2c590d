"""The embedding identity: everything that decides which vector a model gives a text, in one value.

It is made of the weights fingerprint of each tower (weights, config and tokenizer files), the spec fields
that change the vectors (pooling, normalisation, instructions, max lengths, padding side, EOS), the engine,
the numeric precision it computes in, and the quantization `embedkit quantize` applied (the spec's record). The embedding cache keys its
entries by it, exports key their graphs by the part of it a graph depends on, and reports show its digest as
the model's fingerprint, so vectors of one identity are never served for another: a bf16 or int8 encoding
never reuses fp32 vectors, and an edited vocabulary never reuses old ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Optional

from embedkit.modeling.spec import EmbedderSpec

# Spec fields that change the embeddings a model produces (the rest is bookkeeping: versions, base model...).
EMBEDDING_SPEC_FIELDS = ("pooling", "normalized", "query_instruction", "passage_instruction", "query_max_len",
                         "passage_max_len", "padding_side", "append_eos", "mask_instruction")
# Of those, the ones inside an exported graph; instructions, lengths and EOS act on the tokens fed to it (but
# under mask_instruction the instructions' token counts are part of the graph's pooling too).
GRAPH_SPEC_FIELDS = ("pooling", "normalized")
_MASKED_GRAPH_FIELDS = ("mask_instruction", "query_instruction", "passage_instruction")


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


@dataclass(frozen=True)
class EmbeddingIdentity:
    weights: dict[str, str]  # tower name -> model_fingerprint of its directory
    spec: dict[str, Any]
    engine: str
    precision: str
    quantization: Optional[dict[str, Any]] = field(default=None)

    @classmethod
    def of(cls, weights: dict[str, str], spec: EmbedderSpec, engine: str, precision: str) -> EmbeddingIdentity:
        fields = spec_fields(spec)
        fields["append_eos"] = spec.appends_eos()  # the effective value, so None and its default agree
        return cls(dict(sorted(weights.items())), fields, str(_plain(engine)), str(_plain(precision)),
                   spec.quantization)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def digest(self) -> str:
        """16 hex digits naming these embeddings (reports' "fingerprint", MTEB's revision)."""
        return _digest(self.to_dict())[:16]

    def graph(self, tower: str) -> dict[str, Any]:
        """What the exported graph of ``tower`` depends on."""
        fields = GRAPH_SPEC_FIELDS + (_MASKED_GRAPH_FIELDS if self.spec.get("mask_instruction") else ())
        return {"weights": self.weights[tower], **{k: self.spec[k] for k in fields},
                "engine": self.engine, "precision": self.precision, "quantization": self.quantization}


def spec_fields(spec: EmbedderSpec) -> dict[str, Any]:
    # mask_instruction only when set, so the identities of every model without it stay what they were.
    return {name: _plain(getattr(spec, name)) for name in EMBEDDING_SPEC_FIELDS
            if name != "mask_instruction" or spec.mask_instruction}


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()

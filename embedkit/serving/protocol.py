"""The OpenAI embeddings request and response, as pydantic models, and the error body OpenAI clients read."""

from __future__ import annotations

import base64
from typing import Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError

from embedkit.choices import EncodingFormat, Side


class EmbeddingRequest(BaseModel):
    # OpenAI clients send fields embedkit does not use (``user``); they are ignored, as OpenAI does.
    model_config = ConfigDict(extra="ignore")

    input: Union[StrictStr, list[StrictStr]]
    model: Optional[str] = None
    encoding_format: Literal[tuple(EncodingFormat.values())] = EncodingFormat.FLOAT.value
    # embedkit's addition: which side's instruction, max length and tower encode the texts.
    input_type: Literal[tuple(Side.values())] = Side.PASSAGE.value
    dimensions: Optional[int] = None

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else self.input


def validation_message(exc: ValidationError) -> str:
    """One line per problem, naming the field: ``input: Input should be a valid string``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"] if p not in ("str", "list[str]"))
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(dict.fromkeys(parts))


def error_body(message: str, kind: str = "invalid_request_error", param: Optional[str] = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def encode_vector(vector: np.ndarray, encoding_format: str) -> Union[list[float], str]:
    """A float list, or OpenAI's base64: the little-endian float32 bytes."""
    if encoding_format == EncodingFormat.BASE64:
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


def embedding_response(vectors: np.ndarray, tokens: list[int], model: str, encoding_format: str) -> dict:
    return {"object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": encode_vector(v, encoding_format)}
                     for i, v in enumerate(vectors)],
            "model": model, "usage": {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)}}

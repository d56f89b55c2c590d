"""The FastAPI app: ``POST /v1/embeddings`` (OpenAI's shape) and ``GET /health`` over one Encoder and a Batcher."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from embedkit.serving.batcher import Batcher, EncodeFn
from embedkit.serving.protocol import EmbeddingRequest, embedding_response, error_body, validation_message


@dataclass(frozen=True)
class Limits:
    max_texts: int = 2048  # per request, as OpenAI's API
    max_bytes: int = 8 << 20  # request body


@dataclass(frozen=True)
class ServedModel:
    name: str
    encode: EncodeFn
    dim: int
    engine: str
    fingerprint: str


class _RequestError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


def create_app(model: ServedModel, limits: Limits, max_batch: int = 32, max_wait_ms: float = 5.0) -> FastAPI:
    batcher = Batcher(model.encode, max_batch, max_wait_ms / 1000.0)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        batcher.start()
        yield
        await batcher.stop()  # uvicorn has answered every in-flight request by now

    app = FastAPI(title="embedkit", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher = batcher

    @app.exception_handler(_RequestError)
    async def request_error(_: Request, exc: _RequestError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, param=exc.param), status_code=exc.status)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": model.name, "engine": model.engine, "dim": model.dim,
                "fingerprint": model.fingerprint, "max_batch": max_batch, "max_wait_ms": max_wait_ms,
                "queued": batcher.queued, **batcher.stats.to_dict()}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        parsed = _parse(await _body(request, limits.max_bytes))
        texts = parsed.texts
        if not texts:
            raise _RequestError(422, "input: give at least one text", "input")
        if len(texts) > limits.max_texts:
            raise _RequestError(413, f"input: {len(texts)} texts, more than this server takes per request "
                                     f"({limits.max_texts}); split the request", "input")
        if parsed.dimensions is not None and parsed.dimensions != model.dim:
            raise _RequestError(422, f"dimensions: this model gives {model.dim}-dimensional vectors only",
                                "dimensions")
        vectors, tokens = await batcher.submit(texts, parsed.input_type)
        # A JSONResponse as it is: FastAPI would otherwise walk every float through jsonable_encoder first.
        return JSONResponse(embedding_response(vectors, tokens, model.name, parsed.encoding_format))

    return app


async def _body(request: Request, max_bytes: int) -> bytes:
    """The request body, read no further than ``max_bytes`` (a client's Content-Length is not trusted alone)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _RequestError(413, f"request body of {declared} bytes is over this server's limit of {max_bytes}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _RequestError(413, f"request body is over this server's limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> EmbeddingRequest:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _RequestError(422, f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise _RequestError(422, "the body must be a JSON object with an \"input\" field")
    try:
        return EmbeddingRequest.model_validate(payload)
    except ValidationError as exc:
        raise _RequestError(422, validation_message(exc)) from None

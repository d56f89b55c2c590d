"""`embedkit serve`: load a model, build the app, run it under uvicorn until SIGINT/SIGTERM.

On a signal uvicorn stops accepting connections, lets in-flight requests finish (the batcher answers every
queued one), then stops the batcher: nothing accepted is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from embedkit.errors import UserError
from embedkit.serving.app import Limits, ServedModel, create_app

# What a graceful shutdown waits for in-flight requests before closing them.
SHUTDOWN_GRACE_S = 30


@dataclass
class ServeSettings:
    model_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    name: Optional[str] = None  # the "model" answered; default: the model dir's name
    max_batch: int = 32
    max_wait_ms: float = 5.0
    limits: Limits = field(default_factory=Limits)
    encoder_options: dict[str, Any] = field(default_factory=dict)  # engine, device, threads, overrides
    log_level: str = "info"


def served_model(encoder, name: str) -> ServedModel:
    """An Encoder as the app uses it: encode with the token count of each text (OpenAI's ``usage``)."""
    from embedkit.inference.runtime import tower_name
    from embedkit.modeling.tokenize import tokenize

    spec = encoder.spec

    def encode(texts: Sequence[str], side: str) -> tuple[np.ndarray, list[int]]:
        vectors = encoder.encode(texts, side)
        query = side == "query"
        features = tokenize(encoder.towers[tower_name(spec, side)].tokenizer, texts,
                            spec.query_max_len if query else spec.passage_max_len,
                            spec.query_instruction if query else spec.passage_instruction, spec.appends_eos())
        return vectors, [len(f["input_ids"]) for f in features]

    return ServedModel(name, encode, encoder.dim, str(encoder.engine), encoder.fingerprint)


def build_server(settings: ServeSettings, encoder=None):
    """A ``uvicorn.Server`` for ``settings`` (``encoder``: an already loaded one, else the model dir's)."""
    import uvicorn

    from embedkit.inference import Encoder

    if encoder is None:
        encoder = Encoder.from_model_dir(settings.model_dir, batch_size=settings.max_batch,
                                         **settings.encoder_options)
    app = create_app(served_model(encoder, settings.name or Path(settings.model_dir).resolve().name),
                     settings.limits, settings.max_batch, settings.max_wait_ms)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S, access_log=settings.log_level == "debug")
    return uvicorn.Server(config)


def serve(settings: ServeSettings) -> None:
    _check_address(settings.host, settings.port)  # before the model loads, and as a UserError, not uvicorn's exit
    build_server(settings).run()


def _check_address(host: str, port: int) -> None:
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UserError(f"cannot resolve host {host!r}: {exc.strerror}", "--host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}", "--port") from None

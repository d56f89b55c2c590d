"""`embedkit serve`: an OpenAI-compatible embeddings API (POST /v1/embeddings, GET /health) for one model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from embedkit.cli.options import DeviceOpt, EngineOpt, ThreadsOpt, embedding_options, output_options, spec_overrides
from embedkit.cli.params import count_option
from embedkit.console import Output


@output_options
@embedding_options
def serve_command(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="Model directory (any that eval takes, or an ONNX serving dir from export).")],
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, count_option("--port", minimum=0, help="TCP port.")] = 8080,
    name: Annotated[Optional[str], typer.Option(help="Model name in responses. (default: the model dir's name).")] = None,
    max_batch: Annotated[int, count_option("--max-batch", help="Most texts encoded together from concurrent requests.")] = 32,
    max_wait_ms: Annotated[int, count_option("--max-wait-ms", minimum=0, help="How long a request waits for others to batch with.")] = 5,
    max_texts: Annotated[int, count_option("--max-texts", help="Most texts per request (more: 413).")] = 2048,
    max_bytes: Annotated[int, count_option("--max-bytes", help="Largest request body in bytes (larger: 413).")] = 8 << 20,
    engine: EngineOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    *,
    embedding: dict[str, Any],
    out: Output,
) -> None:
    """Serve embeddings over HTTP in OpenAI's format, batching concurrent requests (Ctrl-C/SIGTERM: drain, stop).

    POST /v1/embeddings, GET /health. Requests in flight at a signal are answered before the server exits.
    """
    from embedkit.serving import Limits, ServeSettings, serve

    given = {"engine": engine, "threads": threads, "overrides": spec_overrides(embedding) or None}
    log_level = "warning" if out.verbosity < 0 else "debug" if out.verbosity > 0 else "info"
    serve(ServeSettings(model, host, port, name, max_batch, max_wait_ms, Limits(max_texts, max_bytes),
                        {"device": device, **{k: v for k, v in given.items() if v is not None}}, log_level))

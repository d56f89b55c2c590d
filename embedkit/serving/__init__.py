"""`embedkit serve`: an OpenAI-compatible embeddings HTTP API with dynamic batching (FastAPI + uvicorn)."""

from embedkit.serving.app import Limits, create_app
from embedkit.serving.server import ServeSettings, build_server, serve

__all__ = ["Limits", "ServeSettings", "build_server", "create_app", "serve"]

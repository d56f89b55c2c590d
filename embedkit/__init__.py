"""embedkit: train, evaluate, benchmark, prune, quantize, export and serve text-embedding models on PaddlePaddle."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("load", "evaluate", "train", "quantize")


def __getattr__(name: str) -> Any:
    # The API imports Paddle when called; `import embedkit` (and `embedkit --version`) stays fast.
    if name in _API:
        from embedkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'embedkit' has no attribute {name!r}")


__all__ = ["__version__", *_API]

"""Where embedkit keeps caches: ``$EMBEDKIT_HOME`` or ``~/.cache/embedkit``."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("EMBEDKIT_HOME") or Path.home() / ".cache" / "embedkit")


def cache_dir(*parts: str) -> Path:
    path = home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path

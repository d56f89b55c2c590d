"""Models served by PaddleNLP's own model store (the RocketQA encoders), fetched through paddlenlp.

PaddleNLP resolves names like ``rocketqa-zh-base-query-encoder`` to files on its store inside
``from_pretrained``; going through it (rather than hard-coding its URLs) keeps the tokenizer files and
config that go with the weights. The result is saved with ``save_pretrained`` into one directory
that ``from_pretrained(<that directory>)`` loads offline.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from embedkit.errors import UserError
from embedkit.fsutil import atomic_path
from embedkit.hub.registry import Entry

Saver = Callable[[str, Path], None]  # (PaddleNLP model name, empty directory) -> model + tokenizer files in it


def save_from_paddlenlp(name: str, directory: Path) -> None:
    from paddlenlp.transformers import AutoModel, AutoTokenizer

    # paddlenlp's own download cache is thrown away: the saved directory is what we keep
    with tempfile.TemporaryDirectory(prefix=".paddlenlp-cache.", dir=directory.parent) as cache:
        AutoModel.from_pretrained(name, cache_dir=cache).save_pretrained(str(directory))
        AutoTokenizer.from_pretrained(name, cache_dir=cache).save_pretrained(str(directory))


def fetch_paddlenlp(entry: Entry, target: Path, *, saver: Saver | None = None, replace: bool = False) -> None:
    """Fill ``target`` with the model and tokenizer PaddleNLP serves under ``entry.repo``.

    ``replace``: ``target`` is a directory embedkit made (an earlier download), which is replaced whole.
    """
    saver = saver or save_from_paddlenlp
    try:
        with atomic_path(target, replace_dir=replace) as staged:
            staged.mkdir()
            saver(entry.repo, staged)
    except OSError as exc:  # paddlenlp reports download failures as EnvironmentError; requests' errors are OSErrors too
        raise UserError(
            f"could not fetch {entry.repo} through paddlenlp ({exc}). No network? PaddleNLP serves its weights "
            f"from {entry.url} and its tokenizer files from the same store. On a machine that has access run "
            f"`python -c \"from paddlenlp.transformers import AutoModel, AutoTokenizer; "
            f"AutoModel.from_pretrained('{entry.repo}').save_pretrained('DIR'); "
            f"AutoTokenizer.from_pretrained('{entry.repo}').save_pretrained('DIR')\"`, copy DIR's files into "
            f"{target}, then rerun this command: files already in place are recorded instead of downloaded."
        ) from None

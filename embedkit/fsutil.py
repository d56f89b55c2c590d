"""Atomic writes: every file embedkit produces is written to a temporary sibling, then renamed."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from embedkit.errors import UserError


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    Works for files and directories alike (the caller creates what it needs at the yielded path).
    """
    target = Path(target)
    new_parent = not target.parent.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    staged = tmp / target.name
    try:
        yield staged
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(staged, target)
    except BaseException:
        if new_parent:  # a failed write leaves no empty directory it made either
            shutil.rmtree(tmp, ignore_errors=True)
            with contextlib.suppress(OSError):
                target.parent.rmdir()
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def no_space_message(path: str | Path) -> Iterator[None]:
    """Turn a full disk (ENOSPC, EDQUOT) while writing under ``path`` into ``PATH: no space left on device``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise UserError("no space left on device", path) from None


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: str | Path, payload: Any) -> None:
    write_text(target, json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")


def update_digest(digest, path: str | Path) -> None:
    """Feed a file's bytes into ``digest`` in 1 MiB blocks (weights and corpora can be many GB)."""
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    update_digest(digest, path)
    return digest.hexdigest()

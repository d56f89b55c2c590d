"""Atomic writes: every file embedkit produces is written to a temporary sibling, then renamed."""

from __future__ import annotations

import contextlib
import errno
import glob
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
def atomic_path(target: str | Path, *, replace_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    Works for files and directories alike (the caller creates what it needs at the yielded path).
    An existing directory at ``target`` is replaced only with ``replace_dir=True``, which a caller passes
    for a directory embedkit made itself (an export, a cache entry, a run's merged/); any other is
    refused before the block runs, because embedkit never deletes what it did not create.
    """
    target = Path(target)
    check_file_target(target, replace_dir=replace_dir)
    new_parent = not target.parent.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
    staged = tmp / target.name
    try:
        with no_space_message(target):
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


def remove_stale_staging(target: Path) -> None:
    """Remove staging dirs of ``target`` left by embedkit processes that were killed mid-write.

    A staging dir is named ``.<target name>.<pid>.<random>.tmp``: one whose process is gone is embedkit's own
    leftover; one of a live process (another write to the same target) is left alone.
    """
    prefix = f".{target.name}."
    for leftover in target.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = leftover.name[len(prefix):].split(".", 1)[0]
        if leftover.is_dir() and pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextlib.contextmanager
def no_space_message(path: str | Path) -> Iterator[None]:
    """Turn a full disk (ENOSPC, EDQUOT) while writing under ``path`` into ``PATH: no space left on device``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise UserError("no space left on device", path) from None


def check_file_target(target: str | Path, *, replace_dir: bool = False) -> None:
    """Refuse, before any work, an output file whose path is a directory or lies under a file.

    ``replace_dir`` lets through a directory the caller made and replaces whole.
    """
    target = Path(target)
    if target.is_dir() and not replace_dir:
        raise UserError("is a directory, expected a file", target)
    check_dir_target(target.parent)


def check_dir_target(directory: str | Path) -> None:
    """Refuse, before any work, an output directory that is a file, lies under one, or cannot be written to."""
    directory = Path(directory)
    for path in (directory, *directory.parents):
        if path.exists():
            if not path.is_dir():
                raise UserError("is a file, expected a directory" if path == directory else "is not a directory", path)
            if not os.access(path, os.W_OK | os.X_OK):
                raise UserError("permission denied: cannot write here", path)
            return


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

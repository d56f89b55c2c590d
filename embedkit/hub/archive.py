"""Safe extraction of downloaded .tar, .tar.gz/.tgz and .zip archives.

Every member is checked before anything is written: a member that would land outside the target
directory (``../`` or an absolute path) or that is a link or device is refused, naming the member.
Extraction goes to a temporary sibling that is renamed onto the target only when all went well, so
a failure never leaves a half-extracted directory behind.
"""

from __future__ import annotations

import posixpath
import re
import stat
import tarfile
import zipfile
from pathlib import Path

from embedkit.errors import UserError
from embedkit.fsutil import atomic_path

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def archive_stem(file_name: str) -> str | None:
    """``data.tar.gz`` -> ``data``; None when the name has no archive suffix we extract."""
    for suffix in ARCHIVE_SUFFIXES:
        if file_name.lower().endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return None


def extract_archive(archive: Path, target_dir: Path, *, replace: bool = False) -> int:
    """Extract ``archive`` into ``target_dir``; return the number of members.

    ``replace``: ``target_dir`` is an earlier extraction of embedkit's, which is replaced whole.
    """
    try:
        if archive.name.lower().endswith(".zip"):
            return _extract_zip(archive, target_dir, replace)
        return _extract_tar(archive, target_dir, replace)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"cannot read the archive ({exc}); nothing was extracted", archive) from exc


def _extract_tar(archive: Path, target_dir: Path, replace: bool) -> int:
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            if member.issym() or member.islnk():
                _refuse(archive, member.name, f"is a {'symbolic' if member.issym() else 'hard'} link (to {member.linkname!r})")
            if not (member.isfile() or member.isdir()):
                _refuse(archive, member.name, "is a device, FIFO or other special file")
            _check_member_path(archive, member.name)
        with atomic_path(target_dir, replace_dir=replace) as staged:
            staged.mkdir()
            # the "data" filter re-checks what we checked above and drops set-uid bits and the like
            tar.extractall(staged, members=members, filter="data")
    return len(members)


def _extract_zip(archive: Path, target_dir: Path, replace: bool) -> int:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            mode = info.external_attr >> 16  # unix mode bits, when the archive was made on unix
            if stat.S_ISLNK(mode):
                _refuse(archive, info.filename, "is a symbolic link")
            _check_member_path(archive, info.filename)
        with atomic_path(target_dir, replace_dir=replace) as staged:
            staged.mkdir()
            zf.extractall(staged)
    return len(infos)


def _check_member_path(archive: Path, name: str) -> None:
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        _refuse(archive, name, "has an absolute path")
    resolved = posixpath.normpath(normalised)
    if resolved == ".." or resolved.startswith("../"):
        _refuse(archive, name, "would be written outside the target directory")


def _refuse(archive: Path, member: str, why: str) -> None:
    raise UserError(f"refusing to extract: member {member!r} {why}; nothing was extracted", archive)

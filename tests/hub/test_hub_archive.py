"""Archive extraction: the good cases, and every unsafe member refused with the target left clean."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from hub_support import FAST

from embedkit.errors import UserError
from embedkit.hub.archive import archive_stem, extract_archive
from embedkit.hub.download import fetch


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, members: list[tuple[str, bytes]], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)  # unix mode: symbolic link
            zf.writestr(info, "/etc/passwd")
    return path


def link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize("suffix, mode", [(".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar", "w")])
def test_tar_archives_extract(tmp_path, suffix, mode):
    archive = make_tar(tmp_path / f"data{suffix}", [("data/a.txt", b"a"), ("data/sub/b.txt", b"b")], mode)

    count = extract_archive(archive, tmp_path / "out")

    assert count == 2
    assert (tmp_path / "out" / "data" / "sub" / "b.txt").read_bytes() == b"b"


def test_zip_archives_extract(tmp_path):
    archive = make_zip(tmp_path / "data.zip", [("a.txt", b"a"), ("sub/b.txt", b"b")])

    extract_archive(archive, tmp_path / "out")

    assert (tmp_path / "out" / "sub" / "b.txt").read_bytes() == b"b"


UNSAFE_TARS = {
    "tar slip": ([("ok.txt", b"x"), ("../../evil.txt", b"x")], "../../evil.txt", "outside the target directory"),
    "absolute path": ([("/tmp/evil.txt", b"x")], "/tmp/evil.txt", "absolute path"),
    "symlink": ([("ok.txt", b"x"), link("escape", "/etc", tarfile.SYMTYPE)], "escape", "symbolic link"),
    "hardlink": ([link("hard", "/etc/passwd", tarfile.LNKTYPE)], "hard", "hard link"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE_TARS))
def test_unsafe_tar_members_are_refused_and_nothing_is_extracted(tmp_path, case):
    members, bad_name, why = UNSAFE_TARS[case]
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    archive = make_tar(work / "data.tar.gz", members)

    with pytest.raises(UserError, match=why) as caught:
        extract_archive(archive, work / "out")

    assert repr(bad_name) in str(caught.value)
    assert not (work / "out").exists()
    assert sorted(p.name for p in work.iterdir()) == ["data.tar.gz"]  # no temp dir left either
    assert not (tmp_path / "evil.txt").exists()


def test_zip_slip_is_refused(tmp_path):
    archive = make_zip(tmp_path / "data.zip", [("ok.txt", b"x"), ("../evil.txt", b"x")])

    with pytest.raises(UserError, match="'../evil.txt' would be written outside the target directory"):
        extract_archive(archive, tmp_path / "out")

    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil.txt").exists()


def test_zip_symlink_is_refused(tmp_path):
    archive = make_zip(tmp_path / "data.zip", [("ok.txt", b"x")], symlink="passwd")

    with pytest.raises(UserError, match="'passwd' is a symbolic link"):
        extract_archive(archive, tmp_path / "out")

    assert not (tmp_path / "out").exists()


def test_a_refused_archive_leaves_an_earlier_extraction_untouched(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "kept.txt").write_text("from before")
    archive = make_zip(tmp_path / "data.zip", [("../evil.txt", b"x")])

    with pytest.raises(UserError):
        extract_archive(archive, tmp_path / "out")

    assert (tmp_path / "out" / "kept.txt").read_text() == "from before"


def test_a_corrupt_archive_is_a_user_error(tmp_path):
    archive = tmp_path / "data.tar.gz"
    archive.write_bytes(b"not a tarball")

    with pytest.raises(UserError, match="cannot read the archive"):
        extract_archive(archive, tmp_path / "out")


def test_archive_stem():
    assert archive_stem("corpus.tar.gz") == "corpus"
    assert archive_stem("corpus.TGZ") == "corpus"
    assert archive_stem("x.zip") == "x"
    assert archive_stem("train.jsonl") is None


def test_download_and_extract_through_the_cli(file_server, tmp_path, run_cli):
    archive = make_tar(tmp_path / "src.tar.gz", [("scifact/corpus.jsonl", b"{}\n")])
    url = file_server.add("/scifact.tar.gz", archive.read_bytes())
    dest = tmp_path / "dest"

    result = run_cli("download", url, "--extract", "--to", dest)

    assert result.exit_code == 0, result.stderr
    assert (dest / "scifact" / "scifact" / "corpus.jsonl").read_bytes() == b"{}\n"
    assert (dest / "scifact.tar.gz").is_file()


def test_a_slip_archive_through_the_cli_exits_2_naming_the_member(file_server, tmp_path, run_cli):
    archive = make_zip(tmp_path / "src.zip", [("../../evil.txt", b"x")])
    url = file_server.add("/evil.zip", archive.read_bytes())
    dest = tmp_path / "dest"

    result = run_cli("download", url, "--extract", "--to", dest)

    assert result.exit_code == 2
    assert "'../../evil.txt'" in result.stderr and "Traceback" not in result.stderr
    assert not (dest / "evil").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_extract_of_a_non_archive_fails_before_any_transfer(file_server, tmp_path):
    url = file_server.add("/train.jsonl", b"{}\n")

    with pytest.raises(UserError, match="--extract: train.jsonl is not one of"):
        fetch(url, extract=True, to=tmp_path, policy=FAST)

    assert file_server.requests == []


def test_extract_never_replaces_a_directory_it_did_not_create(file_server, tmp_path, run_cli):
    archive = make_tar(tmp_path / "src.tar.gz", [("corpus.jsonl", b"{}\n")])
    url = file_server.add("/scifact.tar.gz", archive.read_bytes())
    dest = tmp_path / "dest"
    (dest / "scifact").mkdir(parents=True)
    (dest / "scifact" / "notes.txt").write_text("mine")

    result = run_cli("download", url, "--extract", "--to", dest)

    assert result.exit_code == 2
    assert f"{dest / 'scifact'}: is in the way: embedkit did not create it" in result.stderr
    assert (dest / "scifact" / "notes.txt").read_text() == "mine"
    assert file_server.requests == []  # refused before the transfer


def test_a_forced_download_replaces_its_own_earlier_extraction(file_server, tmp_path):
    url = file_server.add("/scifact.tar.gz", make_tar(tmp_path / "v1.tar.gz", [("old.jsonl", b"1")]).read_bytes())
    fetch(url, extract=True, to=tmp_path / "dest", policy=FAST)
    file_server.add("/scifact.tar.gz", make_tar(tmp_path / "v2.tar.gz", [("new.jsonl", b"2")]).read_bytes())

    result = fetch(url, extract=True, to=tmp_path / "dest", force=True, policy=FAST)

    assert sorted(p.name for p in result.extracted_to.iterdir()) == ["new.jsonl"]

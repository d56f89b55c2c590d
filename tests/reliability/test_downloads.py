"""Downloads and output paths under faults: kills mid-file, files changing on the server, servers without
validators or that lie about lengths, full disks, and output paths that are not what they should be.

Each case checks what a user would: the exit code and message, the bytes of the final file (sha256), what
the server was asked (the Range and If-Range it saw), and which files are left.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest

from embedkit.errors import UserError
from embedkit.fsutil import atomic_path, write_json
from embedkit.hub import transfer
from embedkit.hub.download import fetch
from embedkit.hub.manifest import MANIFEST_NAME
from embedkit.hub.transfer import RetryPolicy

FAST = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05, max_retry_after=0.05, timeout=5.0)
ONE_TRY = RetryPolicy(attempts=1, backoff=0.01, timeout=5.0)  # an interrupted transfer ends the run, like a kill

REPO = Path(__file__).resolve().parents[2]
OLD = bytes(range(256)) * 1200  # 300 KiB: several 64 KiB read chunks, so a kill lands mid-file
NEW = bytes(reversed(range(256))) * 1300  # the file after it changed on the server (another size, too)
CHUNK = transfer.CHUNK_SIZE


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()} if directory.exists() else set()


def recorded_sha(directory: Path, name: str) -> str:
    return json.loads((directory / MANIFEST_NAME).read_text())["files"][name]["sha256"]


def kill_mid_file(server, url: str, to: Path) -> int:
    """Run `embedkit download URL --to DIR` in a child process and SIGKILL it once 2 chunks are on disk."""
    server.fault("/data.bin", stall_after=2 * CHUNK + 1000)  # the third read waits for bytes that never come
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-m", "embedkit.cli", "download", url, "--to", str(to)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    part = to / "data.bin.part"
    deadline = time.monotonic() + 30
    while not (part.is_file() and part.stat().st_size >= 2 * CHUNK):
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the child never wrote two chunks"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    child.stderr.close()
    server.release.set()
    return part.stat().st_size


# --- a stale .part: resumed only when the server confirms it is of the same file -------------------------


def test_a_killed_download_whose_server_file_changed_starts_over(server, tmp_path):
    url = server.put("/data.bin", OLD)
    have = kill_mid_file(server, url, tmp_path)
    old_etag = server.files["/data.bin"].etag
    server.put("/data.bin", NEW)

    result = fetch(url, to=tmp_path, policy=FAST)  # no --sha256: nothing but the server's word to go by

    rerun = server.requests_for("/data.bin")[-1]
    assert rerun.headers["Range"] == f"bytes={have}-" and rerun.headers["If-Range"] == old_etag
    assert rerun.status == 200  # the validator did not match: the whole new file
    assert sha256((tmp_path / "data.bin").read_bytes()) == sha256(NEW) == recorded_sha(tmp_path, "data.bin")
    assert result.files[0].size == len(NEW)
    assert files_in(tmp_path) == {"data.bin", MANIFEST_NAME}


def test_a_killed_download_of_an_unchanged_file_asks_only_for_the_rest(server, tmp_path):
    url = server.put("/data.bin", OLD)
    have = kill_mid_file(server, url, tmp_path)
    before = len(server.seen)

    fetch(url, to=tmp_path, policy=FAST)

    (rerun,) = server.seen[before:]
    assert have == 2 * CHUNK
    assert rerun.headers["Range"] == f"bytes={have}-" and rerun.headers["If-Range"] == server.files["/data.bin"].etag
    assert rerun.status == 206
    assert sha256((tmp_path / "data.bin").read_bytes()) == sha256(OLD) == recorded_sha(tmp_path, "data.bin")
    assert files_in(tmp_path) == {"data.bin", MANIFEST_NAME}


def interrupted(server, url: str, to: Path, after: int = 100_000) -> None:
    """A run whose only attempt the server cuts after ``after`` bytes: it leaves the .part behind."""
    server.fault("/data.bin", kill_after=after)
    with pytest.raises(UserError, match="cannot download"):
        fetch(url, to=to, policy=ONE_TRY)


@pytest.mark.parametrize("validators", [("last-modified",), ("weak-etag", "last-modified")])
@pytest.mark.parametrize("changed", [False, True])
def test_last_modified_is_the_validator_when_there_is_no_strong_etag(server, tmp_path, validators, changed):
    url = server.put("/data.bin", OLD, validators=validators)
    interrupted(server, url, tmp_path)
    date = server.files["/data.bin"].last_modified
    if changed:
        server.put("/data.bin", NEW, validators=validators)

    fetch(url, to=tmp_path, policy=FAST)

    rerun = server.requests_for("/data.bin")[-1]
    assert rerun.headers["Range"] == "bytes=100000-" and rerun.headers["If-Range"] == date
    assert rerun.status == (200 if changed else 206)
    assert (tmp_path / "data.bin").read_bytes() == (NEW if changed else OLD)


def test_a_server_without_validators_gets_the_whole_file_every_time(server, tmp_path):
    url = server.put("/data.bin", OLD, validators=())
    interrupted(server, url, tmp_path)
    assert files_in(tmp_path) == {"data.bin.part"}  # no record: nothing says which file these bytes are of
    server.put("/data.bin", NEW, validators=())

    fetch(url, to=tmp_path, policy=FAST)

    assert "Range" not in server.requests_for("/data.bin")[-1].headers
    assert (tmp_path / "data.bin").read_bytes() == NEW


def test_a_cut_from_a_server_without_validators_is_retried_from_the_start(server, tmp_path):
    url = server.put("/data.bin", OLD, validators=())
    server.fault("/data.bin", kill_after=100_000)

    fetch(url, to=tmp_path, policy=FAST)

    first, second = server.requests_for("/data.bin")
    assert "Range" not in second.headers and second.status == 200
    assert (tmp_path / "data.bin").read_bytes() == OLD


def test_a_cut_transfer_resumes_in_the_same_run(server, tmp_path):
    url = server.put("/data.bin", OLD)
    server.fault("/data.bin", kill_after=100_000)

    fetch(url, sha256=sha256(OLD), to=tmp_path, policy=FAST)

    first, second = server.requests_for("/data.bin")
    assert second.headers["Range"] == "bytes=100000-" and second.status == 206
    assert (tmp_path / "data.bin").read_bytes() == OLD


@pytest.mark.parametrize("lie", ["short", "long"])
def test_the_final_size_must_be_the_size_the_server_announced(server, tmp_path, lie):
    url = server.put("/data.bin", OLD)
    interrupted(server, url, tmp_path)
    server.fault("/data.bin", lie=lie)  # the resumed range ends 1000 bytes early, or runs 100 past the end

    fetch(url, to=tmp_path, policy=FAST)  # no --sha256: only the size can catch it

    assert (tmp_path / "data.bin").read_bytes() == OLD
    last = server.requests_for("/data.bin")[-1]
    if lie == "short":  # what is there is good: fetch the missing end
        assert last.headers["Range"] == f"bytes={len(OLD) - 1000}-"
    else:  # longer than the file: not the file, start over
        assert "Range" not in last.headers and last.status == 200


def test_a_partial_file_of_another_url_is_not_resumed(server, tmp_path):
    url = server.put("/data.bin", OLD)
    interrupted(server, url, tmp_path)
    other = server.put("/mirror/data.bin", NEW)

    fetch(other, to=tmp_path, policy=FAST)

    assert "Range" not in server.requests_for("/mirror/data.bin")[-1].headers
    assert (tmp_path / "data.bin").read_bytes() == NEW


# --- a full disk -----------------------------------------------------------------------------------------


def test_a_disk_that_fills_mid_file_exits_2_and_keeps_the_resumable_part(server, tmp_path, run_cli, disk_fills):
    url = server.put("/data.bin", OLD)
    free_again = disk_fills(tmp_path, 150_000)

    result = run_cli("download", url, "--to", tmp_path)

    part = tmp_path / "data.bin.part"
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert f"{part}: no space left on device" in result.stderr
    assert "is kept and resumes" in result.stderr and f"of {len(OLD)} bytes" in result.stderr
    assert files_in(tmp_path) == {"data.bin.part", "data.bin.part.json"}
    have = part.stat().st_size
    assert 0 < have <= 150_000

    free_again()
    assert run_cli("download", url, "--to", tmp_path).exit_code == 0
    assert server.requests_for("/data.bin")[-1].headers["Range"] == f"bytes={have}-"
    assert (tmp_path / "data.bin").read_bytes() == OLD


def test_a_full_disk_deletes_a_part_that_could_not_be_resumed(server, tmp_path, run_cli, disk_fills):
    url = server.put("/data.bin", OLD, validators=())
    disk_fills(tmp_path, 150_000)

    result = run_cli("download", url, "--to", tmp_path)

    assert result.exit_code == 2
    assert f"{tmp_path / 'data.bin.part'}: no space left on device" in result.stderr
    assert "the partial download was deleted" in result.stderr
    assert files_in(tmp_path) == set()


def test_a_file_larger_than_the_free_space_is_refused_before_it_is_written(server, tmp_path, run_cli, monkeypatch):
    url = server.put("/data.bin", OLD)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(transfer.shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 4096, 4096))

    result = run_cli("download", url, "--to", tmp_path)

    assert result.exit_code == 2
    assert f"no space left on device: {len(OLD)} more bytes needed, 4096 free" in result.stderr
    assert files_in(tmp_path) == set()


def test_a_real_full_tmpfs(server, tmpfs, run_cli):
    disk, grow = tmpfs
    url = server.put("/data.bin", OLD, send_length=False)  # size unknown up front: the write itself fails

    result = run_cli("download", url, "--to", disk)

    assert result.exit_code == 2 and f"{disk / 'data.bin.part'}: no space left on device" in result.stderr
    assert files_in(disk) == {"data.bin.part", "data.bin.part.json"}
    have = (disk / "data.bin.part").stat().st_size

    grow()
    assert run_cli("download", url, "--to", disk).exit_code == 0
    assert server.requests_for("/data.bin")[-1].headers["Range"] == f"bytes={have}-"
    assert sha256((disk / "data.bin").read_bytes()) == sha256(OLD)


def test_a_full_disk_under_an_atomic_write_names_the_target_and_leaves_nothing(tmp_path, disk_fills):
    disk_fills(tmp_path, 10)

    with pytest.raises(UserError) as caught:
        write_json(tmp_path / "results.json", {"ndcg_at_10": 0.5, "padding": "x" * 100})

    assert str(caught.value) == f"{tmp_path / 'results.json'}: no space left on device"
    assert files_in(tmp_path) == set()


# --- output paths that are not what they should be -------------------------------------------------------


def test_download_to_an_existing_file_exits_2_before_any_request(server, tmp_path, run_cli):
    url = server.put("/data.bin", OLD)
    not_a_dir = tmp_path / "notes.txt"
    not_a_dir.write_text("mine")

    result = run_cli("download", url, "--to", not_a_dir)

    assert result.exit_code == 2
    assert f"{not_a_dir}: is a file, expected a directory" in result.stderr
    assert server.seen == [] and not_a_dir.read_text() == "mine"


def test_download_to_a_path_under_a_file_exits_2(server, tmp_path, run_cli):
    (tmp_path / "notes.txt").write_text("mine")

    result = run_cli("download", server.put("/data.bin", OLD), "--to", tmp_path / "notes.txt" / "sub")

    assert result.exit_code == 2 and f"{tmp_path / 'notes.txt'}: is not a directory" in result.stderr
    assert server.seen == []


LISTING = b'<!DOCTYPE HTML>\n<html><head><title>Directory listing for /pub/</title></head><body><ul>' \
          b'<li><a href="data.bin">data.bin</a></li></ul></body></html>\n'


@pytest.mark.parametrize("path", ["/pub", "/pub/data.bin", "/pub/index.html"])
def test_a_web_page_or_directory_listing_is_not_saved_as_the_file(server, tmp_path, run_cli, path):
    url = server.put(path, LISTING, content_type="text/html; charset=utf-8")

    result = run_cli("download", url, "--to", tmp_path)

    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert f"error: {url}: " in result.stderr
    assert ("directory listing" in result.stderr) and ("web page" in result.stderr or path.endswith(".html"))
    assert files_in(tmp_path) == set()


def test_a_real_html_file_still_downloads(server, tmp_path):
    page = b"<html><head><title>Release notes</title></head><body>v2</body></html>"
    url = server.put("/notes.html", page, content_type="text/html")

    fetch(url, to=tmp_path, policy=FAST)

    assert (tmp_path / "notes.html").read_bytes() == page


def test_bench_output_that_is_a_directory_exits_2_before_the_run_and_keeps_it(tmp_path, run_cli):
    results = tmp_path / "results"
    results.mkdir()
    (results / "mine.json").write_text("{}")

    started = time.monotonic()
    result = run_cli("bench", tmp_path / "no-such-model", "--output", results)

    assert result.exit_code == 2
    assert f"{results}: is a directory, expected a file" in result.stderr  # not the missing model: before any work
    assert (results / "mine.json").read_text() == "{}"
    assert time.monotonic() - started < 5


def test_an_atomic_file_write_never_replaces_a_directory(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("mine")
    ran = []

    with pytest.raises(UserError, match="is a directory, expected a file"), atomic_path(target) as staged:
        ran.append(staged)

    assert ran == [] and (target / "mine.txt").read_text() == "mine"  # refused before the work ran
    assert files_in(tmp_path) == {"out"}


def test_a_directory_embedkit_owns_is_replaced_when_it_says_so(tmp_path):
    target = tmp_path / "entry"
    target.mkdir()
    (target / "old.npy").write_bytes(b"old")

    with atomic_path(target, replace_dir=True) as staged:
        staged.mkdir()
        (staged / "new.npy").write_bytes(b"new")

    assert files_in(target) == {"new.npy"} and files_in(tmp_path) == {"entry"}


def test_published_files_and_directories_follow_the_umask(server, tmp_path):
    previous = os.umask(0o022)
    try:
        fetch(server.put("/data.bin", OLD), to=tmp_path / "dl", policy=FAST)
        write_json(tmp_path / "results.json", {})
        with atomic_path(tmp_path / "export") as staged:
            staged.mkdir()
    finally:
        os.umask(previous)

    assert (tmp_path / "dl" / "data.bin").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "dl" / MANIFEST_NAME).stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "export").stat().st_mode & 0o777 == 0o755

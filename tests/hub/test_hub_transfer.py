"""Plain-URL downloads against a scripted server on 127.0.0.1: resume, retries, checksums, offline."""

from __future__ import annotations

import json
import socket
import time

import pytest
from hub_support import FAST, sha256

from embedkit.errors import UserError
from embedkit.hub import partial
from embedkit.hub.download import fetch
from embedkit.hub.manifest import MANIFEST_NAME
from embedkit.hub.partial import PartRecord

BODY = bytes(range(256)) * 400  # 100 KiB: several read chunks, so a cut lands mid-file


def test_resumes_with_a_range_request_after_the_server_cuts_the_transfer(file_server, tmp_path):
    url = file_server.add("/data.bin", BODY, script=["cut"])

    result = fetch(url, sha256=sha256(BODY), to=tmp_path, policy=FAST)

    first, second = file_server.requests_for("/data.bin")
    assert "Range" not in first.headers
    assert second.headers["Range"] == f"bytes={len(BODY) // 2}-"
    assert second.headers["If-Range"] == '"v1"'
    assert (tmp_path / "data.bin").read_bytes() == BODY
    assert not (tmp_path / "data.bin.part").exists()
    assert result.downloaded and result.files[0].verified and result.files[0].sha256 == sha256(BODY)


def test_a_partial_file_from_an_earlier_run_is_resumed(file_server, tmp_path):
    url = file_server.add("/data.bin", BODY)
    (tmp_path / "data.bin.part").write_bytes(BODY[:1000])
    partial.save(tmp_path / "data.bin.part", PartRecord(url, '"v1"', len(BODY)))

    fetch(url, sha256=sha256(BODY), to=tmp_path, policy=FAST)

    (only,) = file_server.requests_for("/data.bin")
    assert only.headers["Range"] == "bytes=1000-"
    assert only.headers["If-Range"] == '"v1"'
    assert (tmp_path / "data.bin").read_bytes() == BODY
    assert not (tmp_path / "data.bin.part.json").exists()


def test_a_partial_file_without_its_record_is_not_resumed(file_server, tmp_path):
    url = file_server.add("/data.bin", BODY)
    (tmp_path / "data.bin.part").write_bytes(b"bytes of no known file")

    fetch(url, to=tmp_path, policy=FAST)

    (only,) = file_server.requests_for("/data.bin")
    assert "Range" not in only.headers
    assert (tmp_path / "data.bin").read_bytes() == BODY


def test_a_server_that_ignores_range_restarts_the_file_cleanly(file_server, tmp_path):
    url = file_server.add("/data.bin", BODY, script=["full"])
    (tmp_path / "data.bin.part").write_bytes(b"stale bytes from some other file")

    fetch(url, sha256=sha256(BODY), to=tmp_path, policy=FAST)

    assert (tmp_path / "data.bin").read_bytes() == BODY


def test_checksum_mismatch_deletes_the_file_and_exits_2(file_server, tmp_path, run_cli):
    url = file_server.add("/data.bin", BODY)

    result = run_cli("download", url, "--sha256", "0" * 64, "--to", tmp_path)

    assert result.exit_code == 2
    assert "sha256 mismatch" in result.stderr and sha256(BODY) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data.bin").exists() and not (tmp_path / "data.bin.part").exists()


def test_retries_a_503_honouring_retry_after_then_succeeds(file_server, tmp_path):
    url = file_server.add("/data.bin", BODY, script=["503"], retry_after="0")

    fetch(url, to=tmp_path, policy=FAST)

    assert len(file_server.requests_for("/data.bin")) == 2
    assert (tmp_path / "data.bin").read_bytes() == BODY


def test_a_long_retry_after_is_capped(file_server, tmp_path):
    url = file_server.add("/data.bin", BODY, script=["429"], retry_after="3600")

    started = time.monotonic()
    fetch(url, to=tmp_path, policy=FAST)  # FAST caps Retry-After at 0.05 s

    assert time.monotonic() - started < 5
    assert (tmp_path / "data.bin").read_bytes() == BODY


def test_gives_up_after_the_attempt_budget_on_persistent_5xx(file_server, tmp_path):
    url = file_server.add("/data.bin", BODY, script=["500"] * 10)

    with pytest.raises(UserError, match="giving up .* after 4 attempts: HTTP 500"):
        fetch(url, to=tmp_path, policy=FAST)

    assert len(file_server.requests_for("/data.bin")) == FAST.attempts


def test_a_client_error_is_not_retried(file_server, tmp_path):
    with pytest.raises(UserError, match="HTTP 404"):
        fetch(file_server.url("/missing.bin"), to=tmp_path, policy=FAST)

    assert len(file_server.requests_for("/missing.bin")) == 1


def test_no_server_says_what_is_missing_and_where_to_put_it(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/dureader_dual.train.jsonl"

    with pytest.raises(UserError) as caught:
        fetch(url, to=tmp_path, policy=FAST)

    message = str(caught.value)
    assert url in message
    assert str(tmp_path / "dureader_dual.train.jsonl") in message
    assert "No network?" in message


def test_a_verified_file_is_not_fetched_again_unless_forced(file_server, tmp_path):
    url = file_server.add("/data.bin", BODY)
    fetch(url, sha256=sha256(BODY), to=tmp_path, policy=FAST)

    again = fetch(url, sha256=sha256(BODY), to=tmp_path, policy=FAST)
    assert not again.downloaded
    assert len(file_server.requests_for("/data.bin")) == 1

    forced = fetch(url, sha256=sha256(BODY), to=tmp_path, force=True, policy=FAST)
    assert forced.downloaded
    assert len(file_server.requests_for("/data.bin")) == 2


def test_a_file_put_in_place_by_hand_is_verified_and_recorded_without_network(tmp_path):
    (tmp_path / "data.bin").write_bytes(BODY)

    result = fetch("http://127.0.0.1:9/data.bin", sha256=sha256(BODY), to=tmp_path, policy=FAST)

    assert not result.downloaded and result.files[0].verified
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["files"]["data.bin"]["sha256"] == sha256(BODY)
    assert manifest["files"]["data.bin"]["size"] == len(BODY)
    assert manifest["files"]["data.bin"]["source"] == "http://127.0.0.1:9/data.bin"


def test_a_changed_file_is_fetched_again(file_server, tmp_path):
    url = file_server.add("/data.bin", BODY)
    fetch(url, to=tmp_path, policy=FAST)  # no published digest: the manifest records the one found
    (tmp_path / "data.bin").write_bytes(b"corrupted")

    result = fetch(url, to=tmp_path, policy=FAST)

    assert result.downloaded
    assert (tmp_path / "data.bin").read_bytes() == BODY


def test_bad_sha256_flag_is_a_usage_error(tmp_path, run_cli):
    result = run_cli("download", "http://127.0.0.1:9/x.bin", "--sha256", "not-hex", "--to", tmp_path)

    assert result.exit_code == 2
    assert "--sha256 must be 64 hex digits" in result.stderr


def test_a_url_naming_a_hidden_file_is_refused(tmp_path):
    with pytest.raises(UserError, match="hidden file"):
        fetch("http://127.0.0.1:9/.embedkit-download.json", to=tmp_path, policy=FAST)

"""Fixtures for the hub tests: a loopback file server (stopped after each test), a private EMBEDKIT_HOME."""

from __future__ import annotations

import pytest
from hub_support import FileServer


@pytest.fixture
def file_server():
    server = FileServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def embedkit_home(tmp_path, monkeypatch):
    """Downloads without --to land here, never in the real ~/.cache."""
    home = tmp_path / "embedkit-home"
    monkeypatch.setenv("EMBEDKIT_HOME", str(home))
    return home

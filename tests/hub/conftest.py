"""Fixtures for the hub tests: a loopback file server, stopped after each test."""

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


"""The integration tests' server: one `make dev` for the session, clients each with their own IP.

tests/integration holds every test that speaks real HTTP: to `make dev` (this fixture, or a
module's own server where its settings must differ), or from in-process handlers and clients to
the Messages-API stand-in (tests/conftest.py's `standin`) and local sign-in issuers.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.dev_server import DevServer, start_dev_server


@pytest.fixture(scope="session")
def dev_server() -> Iterator[DevServer]:
    server = start_dev_server(DEV_WORKERS="4")  # concurrency tests run here: turns really overlap
    yield server
    server.stop()


@pytest.fixture
def client(dev_server: DevServer) -> httpx.Client:
    return dev_server.client()

"""tests/unit is in-process: no sockets and no subprocesses, so a unit test is fast and its failure
points at code, not at a server, a port or a tool.

Every unit test runs with socket connect/bind and subprocess creation refused. A test that needs
the stand-in, a local issuer or any server belongs in tests/integration; one that runs a tool
(sam, cfn-lint, checkov, node) on the repository's files, in tests/static. DynamoDB here is moto's
in-process mock (the `aws` fixture), which opens no socket.
"""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any

import pytest


def _refuse(what: str) -> Any:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError(
            f"a unit test tried to {what}: move it to tests/integration (servers, the stand-in) "
            "or tests/static (tools on the repository's files)"
        )

    return refuse


@pytest.fixture(autouse=True)
def _in_process_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse("open a connection"))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse("open a connection"))
    monkeypatch.setattr(socket.socket, "bind", _refuse("listen on a socket"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("start a subprocess"))
    # The ways around Popen: a shell, a spawn, and fork (multiprocessing's default on Linux).
    for name in ("system", "posix_spawn", "posix_spawnp", "fork", "forkpty"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse("start a subprocess"))

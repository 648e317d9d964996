"""tests/unit/conftest.py's guard refuses every way a unit test could start a process or open a socket."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest


def _spawn() -> None:
    os.posix_spawn(sys.executable, [sys.executable, "-c", "pass"], dict(os.environ))


def _child() -> None:
    """Nothing: the process that would run it is refused."""


ATTEMPTS: dict[str, Callable[[], object]] = {
    "connect": lambda: socket.create_connection(("127.0.0.1", 9), timeout=1),
    "bind": lambda: socket.socket().bind(("127.0.0.1", 0)),
    "subprocess": lambda: subprocess.run(["true"], check=False),
    "shell": lambda: os.system("true"),
    "spawn": _spawn,
    "fork": lambda: os.fork(),  # noqa: PLW0108 - looked up when called, once the guard replaced it
    "multiprocessing fork": lambda: multiprocessing.get_context("fork").Process(target=_child).start(),
}


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_a_unit_test_cannot_leave_its_process(attempt: Callable[[], object]) -> None:
    with pytest.raises(AssertionError, match="a unit test tried to"):
        attempt()

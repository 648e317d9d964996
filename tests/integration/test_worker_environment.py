"""The local workers run with the environment the server has when it creates them.

Workers fork from multiprocessing's fork server, which starts once per process and keeps the
environment it started with; a second pool (or a variable set after the first) must still reach
its workers, as a function's configuration reaches each new execution environment in Lambda.
"""

from __future__ import annotations

import os

import pytest

from local.lambda_runtime import FunctionWorkers


def _worker_sees(name: str) -> str | None:
    workers = FunctionWorkers([], workers=1)
    try:
        return workers._pool.submit(os.getenv, name).result(timeout=60)
    finally:
        workers.close()


def test_each_pool_of_workers_gets_the_servers_environment_of_its_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCAL_WORKER_PROBE", "first")
    assert _worker_sees("LOCAL_WORKER_PROBE") == "first"
    monkeypatch.setenv("LOCAL_WORKER_PROBE", "second")  # after the fork server started
    assert _worker_sees("LOCAL_WORKER_PROBE") == "second"
    monkeypatch.delenv("LOCAL_WORKER_PROBE")
    assert _worker_sees("LOCAL_WORKER_PROBE") is None

"""The local workers: the environment they run with, and which of them takes a call.

They run with the environment the server has when it creates them.
Workers fork from multiprocessing's fork server, which starts once per process and keeps the
environment it started with; a second pool (or a variable set after the first) must still reach
its workers, as a function's configuration reaches each new execution environment in Lambda.

A caller's sequential requests meet the environment that served them last, as in Lambda, where
one caller chatting turn after turn meets one warm environment; concurrent ones spread out.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local import lambda_runtime
from local.lambda_runtime import FunctionWorkers


def _worker_sees(name: str) -> str | None:
    workers = FunctionWorkers([], workers=1)
    try:
        return workers._pools[0].submit(os.getenv, name).result(timeout=60)
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


def _pid(event: dict[str, Any], context: Any) -> int:
    time.sleep(event.get("sleep", 0))
    return os.getpid()


def _install_probe(_: int) -> None:
    lambda_runtime._handlers["Probe"] = _pid


def test_sequential_calls_meet_the_worker_that_served_last_and_concurrent_ones_spread() -> None:
    workers = FunctionWorkers([], workers=3)
    try:
        workers._timeouts["Probe"] = 30.0
        for pool in workers._pools:
            pool.submit(_install_probe, 0).result(timeout=60)

        async def calls() -> tuple[list[int], list[int], list[int]]:
            sequential = [await workers.invoke("Probe", {}) for _ in range(8)]
            together = await asyncio.gather(*(workers.invoke("Probe", {"sleep": 0.5}) for _ in range(3)))
            after = [await workers.invoke("Probe", {}) for _ in range(8)]
            return sequential, list(together), after

        # On a thread of its own: another test's event loop may still be running on this one.
        with ThreadPoolExecutor(1) as thread:
            sequential, together, after = thread.submit(asyncio.run, calls()).result(timeout=120)
        assert len(set(sequential)) == 1, sequential
        assert len(set(together)) == 3, together
        assert len(set(after)) == 1, after  # whichever finished last
    finally:
        workers.close()

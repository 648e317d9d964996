"""Lambda-like execution for `make dev`: each function runs in worker processes.

In AWS each execution environment handles one invocation at a time, and
concurrency comes from more environments, not threads. The workers here keep
that model (Powertools' resolver keeps per-request state that threads would
share), while still letting requests overlap, so concurrency tests are real.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from local.template import ROOT, FunctionSpec

LAYER_PATH = ROOT / "layers" / "shared"


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_seconds: float = 30.0
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


def load_handler_module(spec: FunctionSpec) -> ModuleType:
    """Imports a function's handler module from its CodeUri, with the layer on the path, as Lambda does."""
    if str(LAYER_PATH) not in sys.path:
        sys.path.insert(0, str(LAYER_PATH))
    module_name = spec.module_name
    unique_name = f"_lambda_{spec.logical_id}_{module_name}"
    if unique_name in sys.modules:
        return sys.modules[unique_name]
    location = spec.code_dir / f"{module_name.replace('.', '/')}.py"
    module_spec = importlib.util.spec_from_file_location(unique_name, location)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {location}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[unique_name] = module
    module_spec.loader.exec_module(module)
    return module


_handlers: dict[str, Any] = {}
_memory_mb: dict[str, int] = {}  # each function's MemorySize, which its context reports

# Imported once, by the fork server that every worker is forked from, so that a worker pays only
# for its handler's own import and init (a spawned worker paid ~1.5 s of CPU importing these
# again, at every server start; a test run starts about twenty). Libraries only: the layer and
# the handlers are imported in each worker, so their module-level init runs there, per
# "execution environment", as in Lambda. The fork server forks before any thread or client
# exists, which `fork` from this threaded server could not promise.
PRELOADED_LIBRARIES = (
    "anthropic",
    "boto3",
    "pydantic",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
)


def function_timeout(spec: FunctionSpec) -> float:
    """The template's Timeout, unless DEV_FUNCTION_TIMEOUT_SECONDS shortens every function's (tests)."""
    override = os.environ.get("DEV_FUNCTION_TIMEOUT_SECONDS")
    return float(override) if override else spec.timeout_seconds


def _start_worker(specs: list[FunctionSpec], server: int, environment: dict[str, str]) -> None:
    threading.Thread(target=_exit_with_server, args=(server,), name="server-watch", daemon=True).start()
    # Ctrl-C reaches the whole process group: the server ends (local/server.py's _stop) and its
    # workers leave with it, so a worker need not die mid-invocation printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The function's environment as the server configured it: a forked worker would otherwise have
    # the fork server's, as it was when that started (once per server process, for every pool).
    os.environ.clear()
    os.environ.update(environment)
    # Before the handlers' loggers exist: they keep the stream they were given.
    sys.stdout = whole_lines(io.FileIO(1, "w", closefd=False))
    sys.stderr = whole_lines(io.FileIO(2, "w", closefd=False))
    for spec in specs:
        module = load_handler_module(spec)
        _handlers[spec.logical_id] = getattr(module, spec.handler.rsplit(".", 1)[1])
        _memory_mb[spec.logical_id] = spec.memory_mb


def whole_lines(raw: io.RawIOBase) -> TextIO:
    """A stream that writes each line with one write(), as one process's stdout in Lambda reads.

    A worker's stdout is otherwise unbuffered: print() writes the text and its newline apart, and
    the workers share one log, so two EMF metric lines ran together on one line (5 times in 300
    turns from 16 clients, before this).
    """
    buffered = io.BufferedWriter(raw, buffer_size=1 << 20)
    return io.TextIOWrapper(buffered, encoding="utf-8", errors="backslashreplace", line_buffering=True)


def _exit_with_server(server: int) -> None:
    """A worker outlives a killed server otherwise (as an orphan holding ~100 MB): leave with it.

    The server, not the parent: a worker's parent is the fork server, which lives as long as any
    worker holds its pipe, so each would wait for the other.
    """
    while _alive(server):
        time.sleep(0.5)
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a dead server its parent has not reaped yet is a zombie, which kill() still finds
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True  # no /proc (macOS): kill() is all there is
    return state not in ("Z", "X")


def _invoke(logical_id: str, event: dict[str, Any], timeout_seconds: float) -> tuple[Any, float]:
    """The handler's result and how long it ran: the clock starts when a worker takes the call."""
    context = LocalLambdaContext(
        function_name=logical_id,
        memory_limit_in_mb=_memory_mb.get(logical_id, 1024),
        timeout_seconds=timeout_seconds,
    )
    result = _handlers[logical_id](event, context)
    return result, time.monotonic() - context.started


# What a function URL answers when its function ran out of time: not the function's JSON.
TIMED_OUT_RESULT = {
    "statusCode": 502,
    "headers": {"Content-Type": "text/plain"},
    "body": "Internal Server Error",
}


def _warm(_: int) -> bool:
    return bool(_handlers)


class FunctionWorkers:
    """A pool of 'execution environments', each holding every buffered function's handler.

    Each worker is a process of its own, and a call goes to the idle worker that finished last,
    as Lambda reuses a warm environment rather than spreading a client's sequential requests over
    new ones: in AWS, one caller chatting turn after turn meets one environment, which knows their
    conversation (claude_chat.sessions keeps what it saw). Concurrent calls still spread out.
    """

    def __init__(self, specs: list[FunctionSpec], workers: int) -> None:
        self._timeouts = {spec.logical_id: function_timeout(spec) for spec in specs}
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(PRELOADED_LIBRARIES))
        self._pools = [
            ProcessPoolExecutor(
                max_workers=1,
                mp_context=context,
                initializer=_start_worker,
                initargs=(specs, os.getpid(), dict(os.environ)),
            )
            for _ in range(workers)
        ]
        self._idle: asyncio.LifoQueue[ProcessPoolExecutor] | None = None

    def warm_up(self) -> None:
        """Starts every worker now, so the first requests do not pay the cold starts."""
        for started in [pool.submit(_warm, 0) for pool in self._pools]:
            started.result()

    async def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """The function's result, or, if it ran past its timeout, what Lambda makes of it.

        In AWS every request gets an environment at once; here a call may wait for a free
        worker, so the timeout counts from when a worker starts it, not from arrival.
        Lambda would stop the function at its timeout; here it runs on, and its answer is
        replaced by Lambda's, so an overrun is as visible to the client as in AWS.
        """
        if self._idle is None:  # made on the server's event loop, at its first call
            self._idle = asyncio.LifoQueue()
            for pool in reversed(self._pools):
                self._idle.put_nowait(pool)
        timeout = self._timeouts[logical_id]
        loop = asyncio.get_running_loop()
        idle = self._idle
        pool = await idle.get()
        try:
            running = pool.submit(_invoke, logical_id, event, timeout)
        except BaseException:
            idle.put_nowait(pool)
            raise

        def free(_: object) -> None:
            # When the worker is done, not when the caller stops waiting (a client that left).
            with contextlib.suppress(RuntimeError):  # the server's loop is closed: it is shutting down
                loop.call_soon_threadsafe(idle.put_nowait, pool)

        running.add_done_callback(free)
        result, ran = await asyncio.wrap_future(running)
        if ran > timeout:
            print(f"{logical_id}: Task timed out after {timeout:.2f} seconds", file=sys.stderr, flush=True)
            return TIMED_OUT_RESULT
        return result

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=True)

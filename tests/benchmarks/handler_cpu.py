"""The chat function's own CPU per warm turn, apart from the time it waits on DynamoDB and Claude.

The added latency of BENCHMARKS.md mixes the handler's work with everything
around it (the dev server's process hop, moto answering DynamoDB in Python,
the client). This measure isolates the handler: ChatFunction's `lambda_handler`
runs in a process of its own (as in a Lambda execution environment), fed the
function-URL events of events/*.json, while DynamoDB (moto) and the
Messages-API stand-in run in other processes. `time.process_time()` around
each invocation then counts the CPU of the handler's process only (all its
threads: the turn's DynamoDB calls run on a thread pool); waiting on a socket
costs none.

Run as a module it is that handler process (the parent, `measure()`, starts
the other two and reads its JSON from stdout). With `--profile`, the same
turns run under cProfile with a CPU clock (`time.process_time`), the pool's
calls run inline so that one profiler sees them all, and the self time is
summed by the package it was spent in.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from tests.dev_server import ROOT, free_port

EVENTS = ROOT / "events"
TABLE = "bench-handler-cpu"
DYNAMODB_CHILD = """
import sys, time, boto3
from local.dynamodb import LocalDynamoDB, create_table
db = LocalDynamoDB(port={port}).start()
create_table(boto3.client("dynamodb", endpoint_url=db.url), {table!r})
print("ready", flush=True)
sys.stdin.read()  # until the parent closes it
"""

# Where self time goes, by the file a function is in (first match wins); the rest is "other".
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("our layer and handler (claude_chat, functions/)", ("claude_chat/", "functions/")),
    ("Powertools (logger, resolver, tracer)", ("aws_lambda_powertools/",)),
    ("pydantic validation and serialisation", ("pydantic/", "pydantic_core/", "annotated_types/")),
    ("anthropic SDK (request building, response parsing)", ("anthropic/",)),
    ("httpx/httpcore (Claude's HTTP)", ("httpx/", "httpx2/", "httpcore/", "h11/", "anyio/")),
    ("botocore/boto3 (DynamoDB: serialise, sign, parse)", ("botocore/", "boto3/", "s3transfer/")),
    ("urllib3 (DynamoDB's HTTP)", ("urllib3/",)),
    ("json", ("json/", "{built-in method _json", "{method 'encode' of '_json")),
    ("hmac/hashlib (signing)", ("hmac.py", "hashlib", "{built-in method _hashlib", "_sha")),
    ("logging", ("logging/",)),
    ("threads and futures (waiting: lock acquire)", ("concurrent/", "threading.py", "queue.py")),
    ("sockets and ssl", ("socket.py", "ssl.py", "selectors.py", "{method 'recv", "{method 'send")),
)


def _event(template: str, message: str, session: str | None) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / template).read_text()))
    event["body"] = json.dumps({"message": message})
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if session is not None:
        event["headers"]["x-session-id"] = session
    return event


def _handler(logical_id: str = "ChatFunction") -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A function's handler (for the stream function: its ASGI app), loaded as its runtime would."""
    from local.lambda_runtime import load_handler_module
    from local.template import url_functions

    spec = next(spec for spec in url_functions() if spec.logical_id == logical_id)
    for name, value in spec.environment.items():
        if isinstance(value, str | int | float):
            os.environ.setdefault(name, str(value))
    module = load_handler_module(spec)
    if logical_id == "StreamFunction":
        app: Callable[[dict[str, Any], Any], dict[str, Any]] = module.app
        return app
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = getattr(module, spec.handler.rsplit(".", 1)[1])
    return handler


class _Turns:
    """Warm turns of one kind against the handler, one at a time, each timed in CPU and wall clock."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], dict[str, Any]], stateful: bool) -> None:
        self._handler = handler
        self._stateful = stateful
        self.session: str | None = None
        self._count = 0

    def one(self, profiler: cProfile.Profile | None = None) -> tuple[float, float, float]:
        from local.lambda_runtime import LocalLambdaContext

        self._count += 1
        template = "chat-history.json" if self._stateful else "chat.json"
        event = _event(template, f"Turn {self._count}: what is AWS Lambda?", self.session)
        context = LocalLambdaContext(function_name="ChatFunction")
        cpu, thread, wall = time.process_time(), time.thread_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        try:
            result = self._handler(event, context)
        finally:
            if profiler is not None:
                profiler.disable()
        cpu, thread, wall = (
            time.process_time() - cpu,
            time.thread_time() - thread,
            time.perf_counter() - wall,
        )
        if result.get("statusCode") != 200:
            raise RuntimeError(f"turn failed: {result.get('statusCode')} {result.get('body')}")
        if self._stateful:
            self.session = json.loads(result["body"])["session"]
        return cpu * 1000, thread * 1000, wall * 1000


def _run_inline(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
    """The pool's `submit`, run in the calling thread: one profiler then sees a turn's every call."""
    future: Future[Any] = Future()
    try:
        future.set_result(fn(*args, **kwargs))
    except Exception as error:  # handed to whoever reads the future, as the pool does
        future.set_exception(error)
    return future


def _category(where: str) -> str | None:
    return next((label for label, marks in CATEGORIES if any(mark in where for mark in marks)), None)


def _where(function: tuple[str, int, str]) -> str:
    filename, line, name = function
    return f"{filename}:{line}({name})" if filename != "~" else name


def _categorise(stats: pstats.Stats, turns: int) -> dict[str, Any]:
    """Self time by category; a built-in or stdlib function's goes to its callers' categories.

    (`isinstance` or `dict.get` say nothing about who asked; their callers do. The split
    follows the time each caller spent in them, up to a few levels.)
    """
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    memo: dict[Any, dict[str, float]] = {}

    def shares(function: Any, depth: int = 0) -> dict[str, float]:
        if function in memo:
            return memo[function]
        own = _category(_where(function))
        callers = raw.get(function, (0, 0, 0, 0, {}))[4]
        if own is not None or not callers or depth > 6:
            result = {own or "other (stdlib, unattributed)": 1.0}
        else:
            total = sum(edge[2] for edge in callers.values()) or 1.0
            result = defaultdict(float)
            for caller, edge in callers.items():
                for label, share in shares(caller, depth + 1).items():
                    result[label] += share * edge[2] / total
        memo[function] = dict(result)
        return memo[function]

    per_category: dict[str, float] = defaultdict(float)
    per_function: list[tuple[float, str]] = []
    for function, (_, _, self_time, _, _) in raw.items():
        for label, share in shares(function).items():
            per_category[label] += self_time * share
        per_function.append((self_time, _where(function)))
    total = sum(per_category.values())
    per_function.sort(reverse=True)
    return {
        "total_ms_per_turn": total * 1000 / turns,
        "categories": {
            label: {"ms_per_turn": seconds * 1000 / turns, "share": seconds / total if total else 0}
            for label, seconds in sorted(per_category.items(), key=lambda item: -item[1])
        },
        "top_functions": [
            {"where": _short(where), "ms_per_turn": seconds * 1000 / turns}
            for seconds, where in per_function[:25]
        ],
        "top_cumulative": _cumulative(raw, turns),
    }


def _cumulative(raw: dict[Any, Any], turns: int) -> list[dict[str, Any]]:
    """Our layer's and Powertools' functions by time including callees: which steps cost most."""
    ours = [
        (entry[3], _where(function))
        for function, entry in raw.items()
        if any(mark in function[0] for mark in ("claude_chat/", "functions/", "aws_lambda_powertools/"))
    ]
    ours.sort(reverse=True)
    return [{"where": _short(where), "ms_per_turn": seconds * 1000 / turns} for seconds, where in ours[:30]]


def _short(where: str) -> str:
    for marker in ("site-packages/", "layers/shared/", str(ROOT) + "/", "lib/python3"):
        if marker in where:
            return where.split(marker, 1)[1]
    return where


def child(warm_up: int, turns: int, profile: bool, dump: Path | None = None) -> dict[str, Any]:
    """In the handler's process: warm turns of each kind, alternating, and their CPU."""
    handler = _handler()
    kinds = {"stateless": _Turns(handler, stateful=False), "stateful": _Turns(handler, stateful=True)}
    for _ in range(warm_up):
        for kind in kinds.values():
            kind.one()
    results: dict[str, Any] = {name: {"cpu_ms": [], "main_thread_ms": [], "wall_ms": []} for name in kinds}
    profiles = {name: cProfile.Profile(time.process_time) for name in kinds}
    if profile:
        # One profiler per kind, in this thread: before Python 3.12 cProfile follows one thread, from
        # 3.12 it sees every thread's calls on one stack and allows one profiler at a time. So the
        # pool's calls run inline while profiling (the same work, one call after another; the CPU
        # figures come from the run without the profiler), and the process's CPU clock is exact.
        from claude_chat import services

        services.pool().submit = _run_inline  # type: ignore[method-assign]
    for _ in range(turns):
        for name, kind in kinds.items():
            if profile:
                kind.one(profiles[name])
                continue
            cpu, thread, wall = kind.one()
            results[name]["cpu_ms"].append(cpu)
            results[name]["main_thread_ms"].append(thread)
            results[name]["wall_ms"].append(wall)
    if profile:
        if dump is not None:  # for a closer look: python -m pstats <dump>.<kind>
            for name in kinds:
                profiles[name].dump_stats(f"{dump}.{name}")
        return {name: _categorise(pstats.Stats(profiles[name]), turns) for name in kinds}
    return results


def _after_restore_hooks() -> float:
    """What Lambda's Python runtime runs in a restored copy of the chat or history function: the hooks
    registered with snapshot_restore_py (ours, claude_chat.snapstart; Powertools registers none)."""
    from claude_chat import snapstart

    started = time.perf_counter()
    for hook in snapstart.RESTORE_HOOKS:
        hook()
    return (time.perf_counter() - started) * 1000


def _stream_after_restore(app: Any) -> float:
    """What the Web Adapter asks of a restored stream function: an empty POST to its after-restore path."""
    import asyncio

    path = os.environ["AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH"]
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"content-length", b"0")], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.perf_counter()
    asyncio.run(app(scope, receive, send))
    took = (time.perf_counter() - started) * 1000
    if statuses != [204]:
        raise RuntimeError(f"the stream function's after-restore hook answered {statuses}")
    return took


def restore_child(rounds: int) -> dict[str, Any]:
    """Each function's after-restore path, timed in a warm process (nothing here can be snapshotted),
    and the first request after it (which reconnects to DynamoDB and Claude) against a warm one."""
    chat = _handler("ChatFunction")
    history = _handler("HistoryFunction")
    stream = _handler("StreamFunction")
    from local.lambda_runtime import LocalLambdaContext

    turns = _Turns(chat, stateful=True)

    def read_history() -> float:
        event = json.loads((EVENTS / "history-get.json").read_text())
        event["headers"]["x-session-id"] = turns.session
        started = time.perf_counter()
        result = history(event, LocalLambdaContext(function_name="HistoryFunction"))
        if result.get("statusCode") != 200:
            raise RuntimeError(f"history read failed: {result.get('statusCode')}")
        return (time.perf_counter() - started) * 1000

    figures: dict[str, list[float]] = defaultdict(list)
    for _ in range(3):  # warm up every path
        turns.one()
        read_history()
    for _ in range(rounds):
        turns.one()
        cpu, _, wall = turns.one()
        figures["chat_warm_ms"].append(wall)
        figures["chat_warm_cpu_ms"].append(cpu)
        figures["chat_hook_ms"].append(_after_restore_hooks())
        cpu, _, wall = turns.one()
        figures["chat_first_ms"].append(wall)
        figures["chat_first_cpu_ms"].append(cpu)
        read_history()
        figures["history_warm_ms"].append(read_history())
        figures["history_hook_ms"].append(_after_restore_hooks())
        figures["history_first_ms"].append(read_history())
        figures["stream_hook_ms"].append(_stream_after_restore(stream))
    return dict(figures)


@contextlib.contextmanager
def _dynamodb_process() -> Any:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'layers' / 'shared'}{os.pathsep}{ROOT}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", DYNAMODB_CHILD.format(port=port, table=TABLE)],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the DynamoDB process did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(
    warm_up: int,
    turns: int,
    profile: bool = True,
    restore_rounds: int = 0,
    python: str = sys.executable,
    one_process: bool = False,
) -> dict[str, Any]:
    """CPU per warm turn of the chat handler, stateless and stateful, and (if asked) where it goes.

    Each part runs in a process of its own, so that profiling and restores never touch the timed
    turns; `one_process` runs them one after another in one process instead (the smoke test).
    """
    from tests.benchmarks.harness import Standin
    from tests.benchmarks.measure import summary

    standin = Standin.start(0, 0)  # the model's pace costs the handler no CPU: no need to wait for it
    try:
        with _dynamodb_process() as dynamodb_url:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONPATH": f"{ROOT / 'layers' / 'shared'}{os.pathsep}{ROOT}",
                "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "x",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
                "TABLE_NAME": TABLE,
                "ANTHROPIC_API_KEY": "bench",
                "ANTHROPIC_BASE_URL": standin.url,
                "SESSION_SECRET": "bench-handler-cpu",
                "RATE_LIMIT_MAX": "1000000",
                "DAILY_TOKEN_BUDGET": "1000000000",
                "CLAUDE_MAX_RETRIES": "0",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }

            if os.environ.get("HANDLER_CPU_DUMP"):  # profiling by hand: keep the pstats files
                env["HANDLER_CPU_DUMP"] = os.environ["HANDLER_CPU_DUMP"]

            def run_child(*flags: str) -> dict[str, Any]:
                command = [python, "-m", "tests.benchmarks.handler_cpu", "--warm-up", str(warm_up),
                           "--turns", str(turns), *flags]  # fmt: skip
                output = subprocess.run(
                    command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
                )
                if output.returncode != 0:
                    raise RuntimeError(f"handler process failed:\n{output.stderr[-3000:]}")
                parsed: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
                return parsed

            together: dict[str, Any] = {}
            if one_process:  # the smoke run: every part once, in one process (imports cost ~1.5 s)
                together = run_child("--all", str(restore_rounds))
            timed = together.get("timed") or run_child()
            results: dict[str, Any] = {
                "python": subprocess.run(
                    [python, "-c", "import platform; print(platform.python_version())"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip(),
                "warm_up": warm_up,
                "turns": turns,
            }
            for name, figures in timed.items():
                results[name] = {key: summary(values) for key, values in figures.items()}
            if profile:
                dump = os.environ.get("HANDLER_CPU_DUMP")
                results["profile"] = together.get("profile") or run_child(
                    "--profile", *(["--dump", dump] if dump else [])
                )
            if restore_rounds:
                restore = together.get("restore") or run_child("--restore", str(restore_rounds))
                results["restore"] = {key: summary(values) for key, values in restore.items()}
    finally:
        standin.stop()
    return results


# (warm-up turns, measured turns of each kind, restore rounds): the full benchmark's and the smoke test's.
FULL = (3, 30, 15)
SMOKE = (1, 2, 2)


def measure_sized(smoke: bool) -> dict[str, Any]:
    """The section `handler_cpu` of `make bench` (or of its smoke test)."""
    warm_up, turns, restore_rounds = SMOKE if smoke else FULL
    return measure(warm_up, turns, profile=True, restore_rounds=restore_rounds, one_process=smoke)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The chat handler's process (see the module's docstring).")
    parser.add_argument("--warm-up", type=int, default=3)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--dump", type=Path, help="with --profile: also write pstats files <DUMP>.<kind>")
    parser.add_argument("--restore", type=int, metavar="ROUNDS", help="time the after-restore paths instead")
    parser.add_argument("--all", type=int, metavar="ROUNDS", help="timed, profiled, then restore rounds")
    arguments = parser.parse_args(argv)
    if arguments.all:
        timed = child(arguments.warm_up, arguments.turns, False)
        profiled = child(0, arguments.turns, True)
        restore = restore_child(arguments.all)
        print(json.dumps({"timed": timed, "profile": profiled, "restore": restore}))
        return 0
    if arguments.restore:
        print(json.dumps(restore_child(arguments.restore)))
        return 0
    result = child(arguments.warm_up, arguments.turns, arguments.profile, arguments.dump)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

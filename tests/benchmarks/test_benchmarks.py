"""`make bench`: what a cold start costs each function, and what a turn costs through `make dev`.

Cold starts are measured as Lambda pays them: a fresh interpreter importing
the handler module and building its clients (the anthropic SDK import is the
bulk of the chat function's). Numbers here are this machine's, not arm64
Lambda's; compare them run to run, not with AWS.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.dev_server import DevServer, start_dev_server

COLD_START = """
import sys
sys.path.insert(0, "layers/shared")
from local.lambda_runtime import load_handler_module
from local.template import url_functions
spec = next(s for s in url_functions() if s.logical_id == "{function}")
load_handler_module(spec)
from claude_chat import services
services.sessions()
{extra}
"""

ENV = {
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "AWS_DEFAULT_REGION": "us-east-1",
    "SESSION_SECRET": "bench",
    "ANTHROPIC_API_KEY": "bench",
    "PATH": "/usr/bin:/bin",
}


def cold_start(function: str, extra: str = "") -> None:
    code = COLD_START.format(function=function, extra=extra)
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV)


def test_cold_start_chat_function(benchmark) -> None:
    benchmark.pedantic(cold_start, args=("ChatFunction", "services.chat_pipeline()"), rounds=5, iterations=1)


def test_cold_start_history_function(benchmark) -> None:
    benchmark.pedantic(cold_start, args=("HistoryFunction",), rounds=5, iterations=1)


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    dev = start_dev_server(RATE_LIMIT_MAX="1000000", POWERTOOLS_LOG_LEVEL="WARNING")
    yield dev
    dev.stop()


def test_session_turn_through_make_dev(benchmark, server: DevServer) -> None:
    client = server.client()
    token = client.post("/api/chat/history", json={"message": "warm up"}).json()["session"]

    def turn() -> None:
        response = client.post("/api/chat/history", json={"message": "hi"}, headers={"X-Session-Id": token})
        assert response.status_code == 200

    benchmark.pedantic(turn, rounds=50, iterations=1, warmup_rounds=3)


def test_history_read_through_make_dev(benchmark, server: DevServer) -> None:
    client = server.client()
    token = client.post("/api/chat/history", json={"message": "warm up"}).json()["session"]
    benchmark.pedantic(
        lambda: client.get("/api/chat/history", headers={"X-Session-Id": token}), rounds=50, iterations=1
    )


def test_stream_time_to_first_event_through_make_dev(benchmark, server: DevServer) -> None:
    client = server.client()

    def first_event() -> None:
        with client.stream("POST", "/api/chat/stream", json={"message": "x [standin:words=20]"}) as response:
            assert response.status_code == 200
            next(response.iter_text())

    benchmark.pedantic(first_event, rounds=30, iterations=1, warmup_rounds=2)

"""The daily token budget over HTTP: reserved on admission, settled exactly, then the 429 contract."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.dev_server import DevServer, next_loopback_address, start_dev_server

pytestmark = pytest.mark.integration

BUDGET = 1500
MAX_TOKENS = 100
# The most one of this file's turns can cost: its message's bytes, framing, and MAX_TOKENS.
WORST_TURN = 30 + 32 + MAX_TOKENS


@pytest.fixture(scope="module")
def budget_server() -> Iterator[DevServer]:
    server = start_dev_server(
        RATE_LIMIT_MAX="1000", DAILY_TOKEN_BUDGET=str(BUDGET), MAX_TOKENS=str(MAX_TOKENS), DEV_WORKERS="4"
    )
    yield server
    server.stop()


def billed(usage: dict[str, int]) -> int:
    return sum(
        usage[field]
        for field in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        )
    )


def one_turn(client: httpx.Client, n: int) -> tuple[int, dict[str, Any]]:
    """A plain or a streamed turn (alternately); returns its status and the usage it reported."""
    message = f"turn {n} [standin:words=40]"
    if n % 2:
        response = client.post("/api/chat", json={"message": message})
        return response.status_code, response.json()
    with client.stream("POST", "/api/chat/stream", json={"message": message}) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, response.json()
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    final = json.loads(events[-2])
    return 200, final


def test_concurrent_turns_are_charged_exactly_and_then_refused(budget_server: DevServer) -> None:
    ip = next_loopback_address()
    client = budget_server.client(ip)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: one_turn(client, n), range(40)))
    served = [body for status, body in results if status == 200]
    refused = [body for status, body in results if status == 429]
    assert len(served) + len(refused) == 40, [status for status, _ in results]
    assert served and refused, "the budget should run out part-way through"
    # Exact: the stored total is the sum of what every served turn reported, nothing lost or doubled.
    charged = sum(billed(body["usage"]) for body in served)
    assert budget_server.tokens_used_today(ip) == charged
    # Each turn reserved its worst case before Claude was called, so parallel turns never overspent.
    assert charged <= BUDGET
    # One at a time, turns go on until less than one turn's worst case is left.
    for n in range(40, 60):
        status, body = one_turn(client, n)
        if status != 200:
            break
        charged += billed(body["usage"])
    assert (status, body["limit"]) == (429, "tokens")
    assert budget_server.tokens_used_today(ip) == charged <= BUDGET
    assert BUDGET - charged < WORST_TURN
    for body in refused:
        assert (body["code"], body["limit"]) == ("rate_limited", "tokens")

    # Once spent, every route that costs tokens refuses until the UTC day ends; reads stay free.
    after = client.post("/api/chat/history", json={"message": "more? " + "x" * WORST_TURN})
    assert after.status_code == 429
    until_midnight = 86_400 - int(time.time()) % 86_400
    assert abs(int(after.headers["retry-after"]) - until_midnight) <= 2
    assert after.json()["retryAfter"] == int(after.headers["retry-after"])
    assert client.get("/api/chat/history").status_code == 200
    assert budget_server.tokens_used_today(ip) == charged  # refusals cost nothing

    # Another caller's budget is untouched.
    other = budget_server.client()
    assert other.post("/api/chat", json={"message": "hello"}).status_code == 200

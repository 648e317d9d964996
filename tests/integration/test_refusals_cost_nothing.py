"""A request refused for any reason holds no part of any budget at any moment, and writes nothing.

The issue's attack, over real HTTP against `make dev`: a client whose request window is spent floods
`POST /api/chat/stream` with 64 KB messages. Before, each refused request reserved its worst case
(~65k tokens) on the global counter for a moment, so other callers got `503 budget_exhausted` with
the day's budget barely spent, and every refusal left a session and a conversation record behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dev_server import DevServer, next_loopback_address, start_dev_server

pytestmark = pytest.mark.integration

FLOODERS = 6
# Room for ordinary turns many times over, but not for two flood requests' worst cases at once.
GLOBAL_TOKENS = 100_000


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    server = start_dev_server(
        GLOBAL_DAILY_TOKEN_BUDGET=str(GLOBAL_TOKENS),
        GLOBAL_DAILY_BUDGET_USD="0",
        DAILY_TOKEN_BUDGET="0",
        DAILY_BUDGET_USD="0",
        RATE_LIMIT_MAX="2",
        DEV_WORKERS="4",
    )
    yield server
    server.stop()


def records(server: DevServer) -> list[str]:
    """Every session, conversation and counter item the server has written."""
    client, table = server.dynamodb()
    items = client.scan(TableName=table, ProjectionExpression="pk, sk")["Items"]
    return sorted(f"{item['pk']['S']}|{item['sk']['S']}" for item in items)


def test_a_flood_of_refused_requests_changes_nobody_elses_answer_and_writes_nothing(
    server: DevServer,
) -> None:
    address = next_loopback_address()
    flooder = server.client(address)
    for _ in range(2):  # the flooder spends its request window
        assert flooder.post("/api/chat", json={"message": "hi"}).status_code == 200
    before = records(server)

    stop = threading.Event()
    refused: list[int] = []
    big = "水" * 16_000  # 16,000 characters, 48 KB of UTF-8: the worst case of one message

    def flood(stateful: bool) -> None:
        client = server.client(address)
        while not stop.is_set():
            if stateful:  # a new conversation each time, as an attacker would
                body = {"message": big, "conversation": f"c{len(refused)}"}
                response = client.post("/api/chat/history/stream", json=body)
            else:
                response = client.post("/api/chat/stream", json={"message": big})
            refused.append(response.status_code)

    threads = [threading.Thread(target=flood, args=(n % 2 == 0,)) for n in range(FLOODERS)]
    for thread in threads:
        thread.start()
    try:
        others: list[Any] = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            other = server.client()
            others.append(other.post("/api/chat", json={"message": "an ordinary turn"}))
            others.append(other.post("/api/chat/history", json={"message": "another"}))
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert len(refused) > 50 and set(refused) == {429}, set(refused)
    assert [response.status_code for response in others] == [200] * len(others), [
        response.json() for response in others if response.status_code != 200
    ]
    # The flood wrote nothing: every record written since is one of the ordinary turns'.
    written = [record for record in records(server) if record not in before]
    assert not [r for r in written if r.startswith((f"RL#{address}|", f"TB#{address}|"))]
    history_turns = len(others) // 2  # each opened a session of its own: its META and its turn
    assert len([r for r in written if r.startswith("S#")]) == 2 * history_turns
    assert server.tokens_used_today("GB#all") < GLOBAL_TOKENS // 2

"""A warm conversation's turn is admitted on what its container last knew (chat_turn._admit_known):
what Claude billed for the last turn plus the new message. That bounds more than a turn may send (a
regenerate leaves the last turn out; a history window that moves on drops half of it), so a turn that
bound refuses is priced again on what it really sends before it is refused, over HTTP on `make dev`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.dev_server import DevServer, start_dev_server

pytestmark = pytest.mark.integration

BUDGET = 9_000


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    # The streamed routes run in the server's own process: every turn finds the conversation warm.
    server = start_dev_server(
        DAILY_TOKEN_BUDGET=str(BUDGET), DAILY_BUDGET_USD="0", RATE_LIMIT_MAX="30", DEV_WORKERS="1"
    )
    yield server
    server.stop()


def streamed(client: httpx.Client, token: str | None, **body: Any) -> tuple[int, dict[str, Any]]:
    headers = {"X-Session-Id": token} if token else {}
    response = client.post("/api/chat/history/stream", json=body, headers=headers)
    if response.status_code != 200:
        return response.status_code, response.json()
    events = [raw.removeprefix("data: ") for raw in response.text.split("\n\n") if raw.startswith("data: {")]
    return 200, json.loads(events[-1])


def remaining(client: httpx.Client) -> int:
    return int(client.get("/api/usage").json()["tokens"]["remaining"])


def test_a_regenerate_that_fits_once_priced_on_what_it_sends_is_admitted(server: DevServer) -> None:
    client = server.client()
    # A long first turn: what Claude billed for it (about 2,000 tokens) is what the next turn is
    # priced on before its history is read.
    status, done = streamed(client, None, message="x" * 7_000)
    assert status == 200, done
    token = done["session"]
    # Spend the day down until a turn with no history fits (MAX_TOKENS and a short message: about
    # 1,100 tokens), but one priced on the long turn's bill does not.
    while (left := remaining(client)) > 1_400:
        words = min(1_000, left - 1_300)
        assert client.post("/api/chat", json={"message": f"[standin:words={words}]"}).status_code == 200
    assert remaining(client) >= 1_200

    # Regenerating the long turn sends no history at all: it fits.
    status, done = streamed(client, token, message="short again", replace_last=True)
    assert status == 200, done
    assert done["turns"] == 1

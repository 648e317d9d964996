"""`CLAUDE_PROVIDER=bedrock make dev` over real HTTP: every route through the real AnthropicBedrock path.

One dev server for the module, with no API key and no AWS account: the functions sign each
call (SigV4) for the stand-in's Bedrock runtime, which checks the signature and answers in
Bedrock's framing (local/messages_standin/bedrock.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.dev_server import DevServer, next_loopback_address, start_dev_server

pytestmark = pytest.mark.integration
PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    started = start_dev_server(CLAUDE_PROVIDER="bedrock", RATE_LIMIT_MAX="50")
    yield started
    started.stop()


def _events(response: httpx.Response) -> Iterator[str]:
    buffer = ""
    for chunk in response.iter_text():
        buffer += chunk
        while "\n\n" in buffer:
            raw, buffer = buffer.split("\n\n", 1)
            yield raw.removeprefix("data: ")


def _bedrock_requests(server: DevServer) -> list[dict[str, object]]:
    return [r for r in server.standin_requests() if r.get("provider") == "bedrock"]


def test_every_turn_route_answers_through_bedrock_signed_and_cached(server: DevServer) -> None:
    client = server.client()
    assert (
        "Amazon Bedrock" in server.log() and "ANTHROPIC_API_KEY" not in server.log().split("Claude:")[1][:80]
    )
    plain = client.post("/api/chat", json={"message": "hello bedrock"})
    assert plain.status_code == 200, plain.text
    assert plain.json()["reply"] == "Stand-in reply to: hello bedrock"
    # Prompt caching works on Bedrock too: once the conversation passes Claude Haiku 4.5's minimum
    # (4,096 tokens; ~2,250 a message here), a turn reads the conversation so far from the cache.
    long = "a long message with context " * 320
    first = client.post("/api/chat/history", json={"message": f"one {long}"}).json()
    token = first["session"]
    headers = {"X-Session-Id": token}
    second = client.post("/api/chat/history", json={"message": f"two {long}"}, headers=headers).json()
    assert second["reply"].startswith("Stand-in reply to: two a long message")
    assert second["usage"]["cache_creation_input_tokens"] > 0
    third = client.post("/api/chat/history", json={"message": "three"}, headers=headers).json()
    assert third["reply"] == "Stand-in reply to: three (turn 3)"
    assert third["usage"]["cache_read_input_tokens"] > 0
    with client.stream("POST", "/api/chat/stream", json={"message": "stream me"}) as response:
        data = list(_events(response))
    assert data[-1] == "[DONE]"
    assert "".join(json.loads(d)["text"] for d in data[:-1]) == "Stand-in reply to: stream me"
    with client.stream(
        "POST", "/api/chat/history/stream", json={"message": "four"}, headers={"X-Session-Id": token}
    ) as response:
        data = list(_events(response))
    assert json.loads(data[-2])["done"] is True and json.loads(data[-2])["turns"] == 4
    history = client.get("/api/chat/history", headers={"X-Session-Id": token}).json()
    assert [m["content"] for m in history["messages"]][-2:] == ["four", "Stand-in reply to: four (turn 4)"]
    recorded = _bedrock_requests(server)
    assert len(recorded) >= 5
    assert {r["signature"] for r in recorded} == {"valid"}  # every call signed for bedrock, in its region
    assert {r["model"] for r in recorded} == {PROFILE}
    assert {r["streaming"] for r in recorded} == {True}
    assert all("model" not in r["body"] and "anthropic_version" in r["body"] for r in recorded)  # type: ignore[operator]


def test_stop_ends_a_bedrock_stream(server: DevServer) -> None:
    client = server.client()
    message = "slow [standin:words=5][standin:delta_delay=8]"
    with client.stream("POST", "/api/chat/history/stream", json={"message": message}) as response:
        turn_id = response.headers["x-turn-id"]
        sent = _events(response)
        next(sent)
        asked = time.monotonic()
        assert server.client().post("/api/chat/stop", json={"turn": turn_id}).json() == {"ok": True}
        rest = list(sent)
    assert time.monotonic() - asked < 2.0
    assert json.loads(rest[-2])["stop_reason"] == "stopped"


@pytest.mark.parametrize(
    ("directive", "status", "code"),
    [
        ("[standin:status=429]", 503, "upstream_unavailable"),  # ThrottlingException
        ("[standin:status=403]", 503, "not_configured"),  # AccessDeniedException
        ("[standin:status=400]", 502, "upstream_error"),  # ValidationException
    ],
)
def test_bedrock_errors_answer_the_contract(
    server: DevServer, directive: str, status: int, code: str
) -> None:
    response = server.client().post("/api/chat", json={"message": f"x {directive}"})
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert ("retry-after" in response.headers) is (code == "upstream_unavailable")


def test_a_bedrock_stream_exception_mid_reply_is_an_error_event(server: DevServer) -> None:
    with server.client().stream(
        "POST", "/api/chat/stream", json={"message": "a b c d [standin:fail_after=2]"}
    ) as response:
        data = list(_events(response))
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["code"] == "upstream_error"  # modelStreamErrorException


def test_bedrock_turns_count_against_the_budgets(server: DevServer) -> None:
    # A caller of its own: the global counters may still be settling an earlier test's stream.
    address = next_loopback_address()
    assert server.client(address).post("/api/chat", json={"message": "count me"}).status_code == 200
    spent = server.tokens_used_today(address)
    assert spent > 0
    assert server.tokens_used_today("GB#all") >= spent

"""Models by choice and budgets in money, against `make dev` over HTTP (issue 19, points 1 and 2)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dev_server import DevServer, start_dev_server

pytestmark = pytest.mark.integration

MODELS = ["claude-haiku-4-5", "claude-sonnet-4-5"]


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    server = start_dev_server(CLAUDE_MODELS=",".join(MODELS), GROUP_MODELS="pro=claude-opus-4-5")
    yield server
    server.stop()


def sent_for(server: DevServer, text: str) -> list[dict[str, Any]]:
    return [r["body"] for r in server.standin_requests() if text in json.dumps(r["body"]["messages"])]


def test_the_model_list_is_the_callers_with_prices_and_free(server: DevServer) -> None:
    client = server.client()
    response = client.get("/api/models")
    assert response.status_code == 200 and "ratelimit" not in response.headers
    body = response.json()
    assert [m["id"] for m in body["models"]] == MODELS  # not the group's: this caller is anonymous
    assert [m["default"] for m in body["models"]] == [True, False]
    assert body["models"][1]["prices"] == {
        "input": 3.0,
        "output": 15.0,
        "cache_write": 3.75,
        "cache_write_1h": 6.0,
        "cache_read": 0.3,
        "web_search": 0.01,
    }
    assert body["currency"] == "USD" and body["prices_as_of"]
    assert client.post("/api/chat", json={"message": "hi"}).headers["ratelimit-remaining"] == "4"


@pytest.mark.parametrize(
    "route", ["/api/chat", "/api/chat/history", "/api/chat/stream", "/api/chat/history/stream"]
)
def test_every_turn_route_runs_on_the_model_asked_for(server: DevServer, route: str) -> None:
    text = f"which model {uuid.uuid4().hex}"
    response = server.client().post(route, json={"message": text, "model": "claude-sonnet-4-5"})
    assert response.status_code == 200
    (sent,) = sent_for(server, text)
    assert sent["model"] == "claude-sonnet-4-5"
    text = f"no model named {uuid.uuid4().hex}"
    assert server.client().post(route, json={"message": text}).status_code == 200
    assert [body["model"] for body in sent_for(server, text)] == ["claude-haiku-4-5"]


@pytest.mark.parametrize("route", ["/api/chat", "/api/chat/history", "/api/chat/stream", "/api/chat/ui"])
@pytest.mark.parametrize("model", ["claude-opus-4-5", "gpt-4o", "CLAUDE-HAIKU-4-5"])
def test_a_model_the_caller_may_not_use_is_refused_and_costs_nothing(
    server: DevServer, route: str, model: str
) -> None:
    client = server.client()
    text = f"refused {uuid.uuid4().hex}"
    body: dict[str, Any] = {"message": text, "model": model}
    if route == "/api/chat/ui":
        message = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}
        body = {"id": "c1", "messages": [message], "trigger": "submit-message", "model": model}
    response = client.post(route, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "model_not_allowed"
    assert response.headers["ratelimit-remaining"] == "5"  # not drawn
    assert sent_for(server, text) == []
    assert client.get("/api/conversations").json()["conversations"] == []


def test_the_ai_sdk_body_chooses_the_model_too(server: DevServer) -> None:
    text = f"ui model {uuid.uuid4().hex}"
    message = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}
    body = {"id": "chat-1", "messages": [message], "trigger": "submit-message", "model": "claude-sonnet-4-5"}
    with server.client().stream("POST", "/api/chat/ui", json=body) as response:
        assert response.status_code == 200
        response.read()
    (sent,) = sent_for(server, text)
    assert sent["model"] == "claude-sonnet-4-5"


def test_a_conversation_remembers_the_model_of_its_last_turn(server: DevServer) -> None:
    client = server.client()
    first = client.post(
        "/api/chat/history", json={"message": "one", "conversation": "m", "model": "claude-sonnet-4-5"}
    )
    headers = {"X-Session-Id": first.json()["session"]}
    (listed,) = client.get("/api/conversations", headers=headers).json()["conversations"]
    assert listed["model"] == "claude-sonnet-4-5"
    assert client.get("/api/conversations/m", headers=headers).json()["model"] == "claude-sonnet-4-5"
    client.post("/api/chat/history", json={"message": "two", "conversation": "m"}, headers=headers)
    assert client.get("/api/conversations/m", headers=headers).json()["model"] == "claude-haiku-4-5"


def test_usage_counts_money_at_the_models_prices(server: DevServer) -> None:
    client = server.client()
    before = client.get("/api/usage").json()["money"]
    assert before == {
        "limit": 1.0,
        "spent": 0.0,
        "remaining": 1.0,
        "reset": before["reset"],
        "currency": "USD",
    }
    usage = client.post("/api/chat", json={"message": "price me", "model": "claude-sonnet-4-5"}).json()[
        "usage"
    ]
    nanos = (
        usage["input_tokens"] * 3000
        + usage["output_tokens"] * 15000
        + usage["cache_creation_input_tokens"] * 3750
        + usage["cache_read_input_tokens"] * 300
    )
    after = client.get("/api/usage").json()
    assert after["money"]["spent"] == round(nanos / 1e9, 6)
    assert after["money"]["remaining"] == round(1 - nanos / 1e9, 6)
    assert after["tokens"]["used"] == sum(usage.values())


def test_a_spent_money_budget_is_429_money(tmp_path: Any) -> None:
    server = start_dev_server(DAILY_BUDGET_USD="0.00002", DAILY_TOKEN_BUDGET="0")
    try:
        client = server.client()
        refused = client.post(
            "/api/chat", json={"message": "this turn's worst case costs more than $0.00002"}
        )
        assert refused.status_code == 429, refused.text
        assert refused.json()["limit"] == "money" and int(refused.headers["retry-after"]) > 0
        assert server.standin_requests() == []
    finally:
        server.stop()

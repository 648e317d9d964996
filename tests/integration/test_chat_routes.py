"""Every chat and history route of the contract, through real HTTP against `make dev`."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_stateless_chat_replies_with_the_seed_fields(client) -> None:
    response = client.post("/api/chat", json={"message": "Hello there"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"reply", "usage"}
    assert body["reply"] == "Stand-in reply to: Hello there"
    assert body["usage"]["output_tokens"] > 0
    assert response.headers["content-type"].startswith("application/json")


def test_a_session_conversation_end_to_end(client) -> None:
    first = client.post("/api/chat/history", json={"message": "My name is Ada."})
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"reply", "turns", "session", "usage", "conversation", "title"}
    assert body["turns"] == 1
    token = body["session"]
    assert first.headers["x-session-id"] == token

    second = client.post(
        "/api/chat/history", json={"message": "And my name?"}, headers={"X-Session-Id": token}
    )
    assert (second.json()["turns"], second.json()["session"]) == (2, token)
    assert second.json()["reply"] == "Stand-in reply to: And my name? (turn 2)"

    history = client.get("/api/chat/history", headers={"X-Session-Id": token})
    assert history.status_code == 200
    assert history.json() == {
        "messages": [
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Stand-in reply to: My name is Ada."},
            {"role": "user", "content": "And my name?"},
            {"role": "assistant", "content": "Stand-in reply to: And my name? (turn 2)"},
        ],
        "turns": 2,
        "session": token,
        "before": None,
    }

    reset = client.delete("/api/chat/history", headers={"X-Session-Id": token})
    assert (reset.status_code, reset.json()) == (200, {"ok": True})
    after = client.get("/api/chat/history", headers={"X-Session-Id": token}).json()
    assert (after["messages"], after["turns"], after["session"]) == ([], 0, token)
    again = client.post("/api/chat/history", json={"message": "Fresh start"}, headers={"X-Session-Id": token})
    assert again.json()["turns"] == 1


def test_the_sid_cookie_carries_the_session_like_express_session(dev_server) -> None:
    browser = dev_server.client()
    first = browser.post("/api/chat/history", json={"message": "cookie one"})
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"sid={first.json()['session']};")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=3600"):
        assert attribute in cookie
    token = first.json()["session"]
    second = browser.post(
        "/api/chat/history", json={"message": "cookie two"}, headers={"Cookie": f"sid={token}"}
    )
    assert (second.json()["session"], second.json()["turns"]) == (token, 2)


def test_the_header_wins_over_the_cookie(client) -> None:
    a = client.post("/api/chat/history", json={"message": "session a"}).json()["session"]
    b = client.post("/api/chat/history", json={"message": "session b"}).json()["session"]
    read = client.get("/api/chat/history", headers={"X-Session-Id": a, "Cookie": f"sid={b}"}).json()
    assert read["session"] == a
    assert read["messages"][0]["content"] == "session a"


def test_history_sent_to_claude_is_cut_at_a_turn_boundary(dev_server) -> None:
    token, usages = None, []
    for number in range(12):
        headers = {"X-Session-Id": token} if token else {}
        client = dev_server.client()  # each turn from its own IP: this test is not about the budget
        body = client.post("/api/chat/history", json={"message": f"turn-{number}"}, headers=headers).json()
        token = body["session"]
        usages.append(body["usage"])
    requests = dev_server.standin_requests()
    sent = [r for r in requests if "turn-11" in str(r["body"]["messages"][-1])][-1]["body"]
    messages = sent["messages"]
    # HISTORY_MAX_MESSAGES=20: at most 9 whole past turns plus the new message, starting with a user turn.
    assert len(messages) <= 19
    assert len(messages) % 2 == 1
    assert messages[0]["role"] == "user"
    assert messages[0]["content"] == "turn-5"  # the window moved in a step of half a window, not by one
    # Far under Claude Haiku 4.5's 4,096-token minimum: nothing to cache (see test_prompt_caching.py).
    assert "cache_control" not in messages[-1]["content"][0]


def test_the_stateless_route_sends_no_history(client, dev_server) -> None:
    client.post("/api/chat", json={"message": "stateless one"})
    client.post("/api/chat", json={"message": "stateless two"})
    sent = [r for r in dev_server.standin_requests() if "stateless two" in str(r["body"]["messages"])][-1]
    assert len(sent["body"]["messages"]) == 1
    assert sent["body"]["model"] == "claude-haiku-4-5"
    assert sent["body"]["max_tokens"] == 1024


def test_base64_bodies_are_decoded(client) -> None:
    # A function URL base64-encodes bodies it does not know as text; the handler decodes them.
    response = client.post(
        "/api/chat",
        content=b'{"message": "sent as octet-stream"}',
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200
    assert response.json()["reply"] == "Stand-in reply to: sent as octet-stream"


def test_openapi_describes_every_chat_and_history_route(client) -> None:
    spec = client.get("/api/openapi.json").json()
    assert set(spec["paths"]) >= {"/api/chat", "/api/chat/history"}
    assert set(spec["paths"]["/api/chat/history"]) == {"post", "get", "delete"}
    assert "post" in spec["paths"]["/api/chat"]
    assert {"ChatRequest", "ChatReply", "ConversationChatReply", "HistoryReply", "ErrorReply"} <= set(
        spec["components"]["schemas"]
    )

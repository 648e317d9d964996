"""GET /api/chat/history a page at a time over HTTP, and what every history response says about caching."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dev_server import DevServer, start_dev_server

pytestmark = pytest.mark.integration

ONE_MB = 1_000_000


@pytest.fixture(scope="module")
def dev_server() -> Iterator[DevServer]:
    """A server of its own with no token budget: 20 turns of 16,000 emoji reserve millions of tokens."""
    server = start_dev_server(DAILY_TOKEN_BUDGET="0")
    yield server
    server.stop()


def turn(dev_server, message: str, token: str | None = None) -> str:
    """One turn of the session, from its own IP (its own budget); returns the session token."""
    headers = {"X-Session-Id": token} if token else {}
    response = dev_server.client().post("/api/chat/history", json={"message": message}, headers=headers)
    assert response.status_code == 200, response.text[:300]
    return str(response.json()["session"])


def conversation(dev_server, count: int, text: str = "message {n}") -> tuple[str, list[str]]:
    token, sent = None, []
    for n in range(1, count + 1):
        sent.append(text.format(n=n))
        token = turn(dev_server, sent[-1], token)
    assert token is not None
    return token, sent


def read_all(client, token: str, **query: str) -> list[dict]:
    """Every page, newest first, each checked as it comes."""
    pages, before = [], None
    while True:
        params = {**query, **({"before": before} if before else {})}
        response = client.get("/api/chat/history", params=params, headers={"X-Session-Id": token})
        assert response.status_code == 200, response.text[:300]
        assert response.headers["cache-control"] == "no-store"
        page = response.json()
        page["_bytes"] = len(response.content)
        pages.append(page)
        before = page["before"]
        if before is None:
            return pages
        assert len(pages) < 100


def test_a_conversation_too_big_for_one_reply_comes_in_pages_under_1_mb(dev_server) -> None:
    """20 turns of 16,000 emoji made a 7.3 MB reply, over Lambda's 6 MB: now each page stays under 1 MB."""
    token, sent = conversation(dev_server, 20, text="{n} " + "😀" * 15_990)
    pages = read_all(dev_server.client(), token)
    assert len(pages) > 1
    assert all(page["_bytes"] < ONE_MB for page in pages), [page["_bytes"] for page in pages]
    assert sum(page["_bytes"] for page in pages) > 6_000_000  # the whole would not have fit
    assert all(page["turns"] == 20 and page["session"] == token for page in pages)
    messages = [message for page in reversed(pages) for message in page["messages"]]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 20
    assert [m["content"] for m in messages[::2]] == sent
    assert all(m["content"].startswith("Stand-in reply to: ") for m in messages[1::2])


def test_limit_and_before_walk_the_conversation_back(dev_server) -> None:
    token, sent = conversation(dev_server, 5)
    client = dev_server.client()
    pages = read_all(client, token, limit="2")
    users = [[m["content"] for m in page["messages"] if m["role"] == "user"] for page in pages]
    assert users == [sent[3:5], sent[1:3], sent[0:1]]
    assert [page["turns"] for page in pages] == [5, 5, 5]
    whole = client.get("/api/chat/history", headers={"X-Session-Id": token}).json()
    assert (len(whole["messages"]), whole["before"]) == (10, None)
    exact = client.get("/api/chat/history", params={"limit": "5"}, headers={"X-Session-Id": token}).json()
    assert (len(exact["messages"]), exact["before"]) == (10, None)  # nothing older: no cursor


def test_a_cursor_from_before_a_reset_reads_nothing_of_the_new_chat(dev_server) -> None:
    token, _ = conversation(dev_server, 3)
    client = dev_server.client()
    cursor = client.get("/api/chat/history", params={"limit": "1"}, headers={"X-Session-Id": token}).json()
    assert cursor["before"]
    assert client.delete("/api/chat/history", headers={"X-Session-Id": token}).status_code == 200
    turn(dev_server, "new chat one", token)
    turn(dev_server, "new chat two", token)
    old = client.get(
        "/api/chat/history", params={"before": cursor["before"]}, headers={"X-Session-Id": token}
    )
    assert old.status_code == 200
    assert (old.json()["messages"], old.json()["before"], old.json()["turns"]) == ([], None, 2)


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": ""},
        {"limit": "1.5"},
        {"before": ""},
        {"before": "!!!"},
        {"before": "0-0"},  # turn 0, which no cursor names
        {"before": "0-01"},
        {"before": "0-1 "},
        {"before": "1" * 31},
        {"before": "not-a-cursor"},
        {"before": "0-1", "limit": "1000"},
    ],
)
def test_a_bad_limit_or_cursor_is_422_invalid_request(client, query) -> None:
    response = client.get("/api/chat/history", params=query)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_request"
    assert ("`limit`" in body["error"]) or ("`before`" in body["error"])


def test_history_responses_are_never_cached_and_the_cookie_is_same_site_lax(dev_server) -> None:
    client = dev_server.client()
    token = turn(dev_server, "cache me not")
    read = client.get("/api/chat/history", headers={"X-Session-Id": token})
    reset = client.delete("/api/chat/history", headers={"X-Session-Id": token})
    posted = dev_server.client().post("/api/chat/history", json={"message": "hi"})
    streamed = dev_server.client().post("/api/chat/history/stream", json={"message": "hi"})
    for response in (read, reset):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
    for response in (read, reset, posted, streamed):
        cookie = response.headers["set-cookie"]
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes, cookie
        assert "samesite=none" not in attributes

"""Many conversations per caller, over real HTTP against `make dev`.

Listing, opening, renaming, deleting and exporting conversations; the seed
routes addressing the caller's default conversation; another caller's ids
answering exactly like ids that never existed; deletion racing a turn in
flight; pagination; and regenerate / edit (`replace_last`).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from tests.dev_server import DevServer

pytestmark = pytest.mark.integration


def person(server: DevServer) -> httpx.Client:
    """One person's client: their session token on every request, and each turn (see `post`) from an
    address of its own, so the request budget (5 a minute in tests) is not what these tests meet."""
    client = server.client()
    client.server = server  # type: ignore[attr-defined]
    return client


@pytest.fixture
def client(dev_server: DevServer) -> httpx.Client:
    return person(dev_server)


def turn(client: httpx.Client, message: str, conversation: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, **extra}
    if conversation is not None:
        body["conversation"] = conversation
    response = post(client, "/api/chat/history", json=body)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    client.headers["X-Session-Id"] = reply["session"]  # the caller keeps their session
    return reply


def post(client: httpx.Client, path: str, **kwargs: Any) -> httpx.Response:
    """A POST with the person's session, from a fresh address."""
    sender = client.server.client(headers=dict(client.headers))  # type: ignore[attr-defined]
    return sender.post(path, **kwargs)


def listed(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/api/conversations", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def messages(client: httpx.Client, conversation: str) -> list[tuple[str, str]]:
    response = client.get(f"/api/conversations/{conversation}")
    assert response.status_code == 200, response.text
    return [(m["role"], m["content"]) for m in response.json()["messages"]]


def test_a_caller_keeps_many_conversations_newest_first(client: httpx.Client) -> None:
    first = turn(client, "Plan a trip to Lisbon\nwith details", "trip")
    assert (first["conversation"], first["title"], first["turns"]) == ("trip", "Plan a trip to Lisbon", 1)
    turn(client, "Explain **DynamoDB** indexes", "db")
    turn(client, "Hello", "hello")
    turn(client, "And the weather there?", "trip")  # continuing moves it to the top

    body = listed(client)
    assert [c["id"] for c in body["conversations"]] == ["trip", "hello", "db"]
    assert body["next"] is None
    by_id = {c["id"]: c for c in body["conversations"]}
    assert by_id["trip"]["turns"] == 2 and by_id["db"]["turns"] == 1
    assert by_id["db"]["title"] == "Explain DynamoDB indexes"  # Markdown marks left out
    stamps = [c["updated_at"] for c in body["conversations"]]
    assert stamps == sorted(stamps, reverse=True) and all(s.endswith("Z") for s in stamps)

    # Each keeps its own history, and Claude saw only that conversation's turns.
    trip = messages(client, "trip")
    assert [text for role, text in trip if role == "user"] == [
        "Plan a trip to Lisbon\nwith details",
        "And the weather there?",
    ]
    assert trip[-1][1].endswith("(turn 2)")
    assert "(turn" not in messages(client, "hello")[-1][1]  # the stand-in numbers turns from the second
    opened = client.get("/api/conversations/trip").json()
    assert {k: opened[k] for k in ("id", "title", "turns")} == {
        "id": "trip",
        "title": "Plan a trip to Lisbon",
        "turns": 2,
    }
    assert opened["before"] is None


def test_the_seed_routes_address_the_default_conversation(client: httpx.Client) -> None:
    seed = turn(client, "seed route message")
    assert seed["conversation"] == "default"
    turn(client, "another conversation", "other")
    history = client.get("/api/chat/history").json()
    assert [m["content"] for m in history["messages"] if m["role"] == "user"] == ["seed route message"]
    assert messages(client, "default") == [(m["role"], m["content"]) for m in history["messages"]]
    assert {c["id"] for c in listed(client)["conversations"]} == {"default", "other"}

    assert client.delete("/api/chat/history").json() == {"ok": True}  # the seed's reset
    assert [c["id"] for c in listed(client)["conversations"]] == ["other"]
    assert client.get("/api/conversations/default").status_code == 404
    assert messages(client, "other")[0] == ("user", "another conversation")


def test_another_callers_conversation_answers_exactly_like_one_that_never_existed(
    dev_server: DevServer,
) -> None:
    owner, stranger = person(dev_server), person(dev_server)
    turn(owner, "my private plans", "secret")
    turn(stranger, "hi")  # the stranger has a session of their own

    def answers(client: httpx.Client, conversation: str) -> list[tuple[int, str]]:
        path = f"/api/conversations/{conversation}"
        calls = [
            client.get(path),
            client.get(f"{path}/export"),
            client.patch(path, json={"title": "mine now"}),
            client.delete(path),
        ]
        return [(r.status_code, r.text) for r in calls]

    never = answers(stranger, "never-existed")
    assert never == answers(stranger, "secret")
    assert all(status == 404 and json.loads(text)["code"] == "not_found" for status, text in never)
    assert [c["id"] for c in listed(stranger)["conversations"]] == ["default"]
    # A turn naming that id starts the stranger's own conversation; the owner's is untouched.
    theirs = turn(stranger, "what were the plans?", "secret")
    assert theirs["turns"] == 1 and "(turn" not in theirs["reply"]
    assert messages(owner, "secret")[0] == ("user", "my private plans")
    assert listed(owner)["conversations"][0]["title"] == "my private plans"


def test_rename_is_kept_over_the_automatic_title(client: httpx.Client) -> None:
    turn(client, "first message", "named")
    payload = '<img src=x onerror="alert(1)">'
    renamed = client.patch("/api/conversations/named", json={"title": f"  {payload}  "})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == payload  # trimmed, stored as text
    after = turn(client, "second message", "named")
    assert after["title"] == payload
    assert listed(client)["conversations"][0]["title"] == payload

    for bad in (
        {"title": ""},
        {"title": "   "},
        {"title": "a\nb"},
        {"title": "bell\u0007"},
        {"title": 7},
        {"title": "x" * 121},
        {"name": "x"},
        {},
    ):
        response = client.patch("/api/conversations/named", json=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["code"] == "invalid_request"
    assert client.patch("/api/conversations/named", content=b"{").json()["code"] == "invalid_json"
    assert listed(client)["conversations"][0]["title"] == payload  # nothing changed


def test_delete_is_final_for_a_turn_in_flight(client: httpx.Client) -> None:
    turn(client, "kept", "keep")
    for conversation, before in (("brand-new", 0), ("talked", 2)):
        for n in range(before):
            turn(client, f"earlier {n}", conversation)
        with client.stream(
            "POST",
            "/api/chat/history/stream",
            json={
                "message": "slow [standin:words=30][standin:delta_delay=0.05]",
                "conversation": conversation,
            },
        ) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))
            deleted = client.delete(f"/api/conversations/{conversation}")
            if before:
                assert deleted.status_code == 200 and deleted.json() == {"ok": True}
            else:  # nothing saved yet, so nothing listed to delete; the turn in flight is doomed all the same
                assert deleted.status_code == 404
            rest = list(lines)
        assert any('"done": true' in line for line in rest)  # the reply itself went on to its end
        assert client.get(f"/api/conversations/{conversation}").status_code == 404
        assert client.delete(f"/api/conversations/{conversation}").status_code == 404  # gone already
        assert client.get(f"/api/conversations/{conversation}").status_code == 404
    assert [c["id"] for c in listed(client)["conversations"]] == ["keep"]


def test_the_list_pages_with_a_cursor(client: httpx.Client) -> None:
    ids = [f"page-{n}" for n in range(5)]
    for conversation in ids:
        turn(client, f"message {conversation}", conversation)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        body = listed(client, limit=2, **({"before": cursor} if cursor else {}))
        seen += [c["id"] for c in body["conversations"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == list(reversed(ids)) and pages == 3
    for bad in ("x", "1.", ".abc", "1.a/b", "01.a"):
        response = client.get("/api/conversations", params={"before": bad})
        assert response.status_code == 422 and response.json()["code"] == "invalid_request", bad
    for bad in ("0", "101", "x"):
        assert client.get("/api/conversations", params={"limit": bad}).status_code == 422


def test_a_cursor_never_reaches_another_callers_list(dev_server: DevServer) -> None:
    owner, stranger = person(dev_server), person(dev_server)
    turn(owner, "a", "o-1")
    turn(owner, "b", "o-2")
    cursor = listed(owner, limit=1)["next"]
    turn(stranger, "c", "s-1")
    body = listed(stranger, before=cursor)
    assert all(c["id"].startswith("s-") for c in body["conversations"])


def test_export_as_markdown_and_json(client: httpx.Client) -> None:
    turn(client, "Export me: *stars* and <b>tags</b>", "exported")
    turn(client, "second", "exported")
    client.patch("/api/conversations/exported", json={"title": "Café # notes"})

    markdown = client.get("/api/conversations/exported/export")
    assert markdown.status_code == 200
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.headers["content-disposition"] == 'attachment; filename="cafe-notes.md"'
    assert markdown.headers["cache-control"] == "no-store"
    text = markdown.text
    assert text.startswith("# Café \\# notes\n")
    assert "## You\n\nExport me: *stars* and <b>tags</b>\n" in text
    assert text.count("## Claude") == 2

    exported = client.get("/api/conversations/exported/export", params={"format": "json"})
    assert exported.headers["content-type"] == "application/json"
    assert exported.headers["content-disposition"] == 'attachment; filename="cafe-notes.json"'
    data = exported.json()
    assert (data["id"], data["title"]) == ("exported", "Café # notes")
    assert [(m["role"], m["content"]) for m in data["messages"]] == messages(client, "exported")
    assert client.get("/api/conversations/exported/export", params={"format": "pdf"}).status_code == 422


def test_regenerate_and_edit_replace_the_last_turn(dev_server: DevServer, client: httpx.Client) -> None:
    turn(client, "one", "redo")
    turn(client, "two", "redo")
    regenerated = turn(client, "two", "redo", replace_last=True)
    assert regenerated["turns"] == 2
    assert regenerated["reply"].endswith("(turn 2)")  # Claude did not see the replaced turn
    edited = turn(client, "two, edited", "redo", replace_last=True)
    assert edited["turns"] == 2
    assert messages(client, "redo") == [
        ("user", "one"),
        ("assistant", "Stand-in reply to: one"),
        ("user", "two, edited"),
        ("assistant", "Stand-in reply to: two, edited (turn 2)"),
    ]
    sent = dev_server.standin_requests()[-1]["body"]["messages"]
    assert [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in sent] == [
        "one",
        "Stand-in reply to: one",
        "two, edited",
    ]
    # A replacement that fails changes nothing.
    failed = post(
        client,
        "/api/chat/history",
        json={"message": "three [standin:status=400]", "conversation": "redo", "replace_last": True},
    )
    assert failed.status_code >= 400
    assert [text for role, text in messages(client, "redo") if role == "user"] == ["one", "two, edited"]
    # Replacing the first exchange renames an automatic title.
    turn(client, "old title", "retitled")
    assert turn(client, "new title", "retitled", replace_last=True)["title"] == "new title"


def test_concurrent_turns_across_conversations_keep_counts_and_order(dev_server: DevServer) -> None:
    client = person(dev_server)
    turn(client, "start", "busy")
    token = client.headers["X-Session-Id"]
    results: list[int] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        # Each from its own address: the request budget is not the point.
        sender = dev_server.client(headers={"X-Session-Id": token})
        reply = sender.post("/api/chat/history", json={"message": f"m{n}", "conversation": "busy"})
        with lock:
            results.append(reply.json()["turns"])

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(2, 10))
    summary = listed(client)["conversations"][0]
    assert (summary["id"], summary["turns"], summary["title"]) == ("busy", 9, "start")


def test_a_bad_conversation_id_in_a_turn_is_refused(client: httpx.Client) -> None:
    for bad in ("", "a/b", "a b", "x" * 65, 7, None, "é"):
        response = post(client, "/api/chat/history", json={"message": "hi", "conversation": bad})
        assert response.status_code == 422, (bad, response.text)
        assert "conversation" in response.json()["error"]
    response = post(client, "/api/chat/history", json={"message": "hi", "replace_last": "yes"})
    assert response.status_code == 422 and "replace_last" in response.json()["error"]
    # The stateless route takes no conversation.
    assert post(client, "/api/chat", json={"message": "hi", "conversation": "x"}).status_code == 422
    assert listed(client)["conversations"] == []

"""Each events/*.json through the handler template.yaml names, as `sam local invoke -e` would run it."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

ROUTES = {
    "chat": ("ChatFunction", "POST", "/api/chat"),
    "chat-history": ("ChatFunction", "POST", "/api/chat/history"),
    "chat-history-base64": ("ChatFunction", "POST", "/api/chat/history"),
    "history-get": ("HistoryFunction", "GET", "/api/chat/history"),
    "history-delete": ("HistoryFunction", "DELETE", "/api/chat/history"),
    "chat-conversation": ("ChatFunction", "POST", "/api/chat/history"),
    "conversations-list": ("HistoryFunction", "GET", "/api/conversations"),
    "conversation-rename": ("HistoryFunction", "PATCH", "/api/conversations/lisbon-trip"),
    "conversation-export": ("HistoryFunction", "GET", "/api/conversations/lisbon-trip/export"),
    "conversation-delete": ("HistoryFunction", "DELETE", "/api/conversations/lisbon-trip"),
    "stream-chat": ("StreamFunction", "POST", "/api/chat/stream"),
    "stream-chat-history": ("StreamFunction", "POST", "/api/chat/history/stream"),
}
BUFFERED = sorted(name for name, (function, _, _) in ROUTES.items() if function != "StreamFunction")


def test_every_event_is_a_function_url_event_of_a_known_route(events) -> None:
    assert set(events) == set(ROUTES)
    for name, event in events.items():
        _, method, path = ROUTES[name]
        assert event["version"] == "2.0"
        assert event["requestContext"]["http"]["method"] == method
        assert event["rawPath"] == event["requestContext"]["http"]["path"] == path
        assert event["requestContext"]["http"]["sourceIp"]
        assert event["headers"]["host"].endswith(".lambda-url.us-east-1.on.aws")


@pytest.mark.parametrize("name", BUFFERED)
def test_event_through_its_handler(name, events, aws, standin, lambda_handler, lambda_context) -> None:
    function, _, _ = ROUTES[name]
    result = lambda_handler(function)(events[name], lambda_context)
    body = json.loads(result["body"])
    if name.startswith("conversation-"):  # alone, the event names a conversation its caller lacks
        assert (result["statusCode"], body["code"]) == (404, "not_found"), result
        return
    assert result["statusCode"] == 200, result
    if name == "chat":
        assert body["reply"].startswith("Stand-in reply to: What is AWS Lambda")
        assert set(body) == {"reply", "usage"}
        assert result["headers"]["RateLimit-Limit"] == "5"
    elif name.startswith("chat-"):
        assert set(body) == {"reply", "turns", "session", "usage", "conversation", "title"}
        assert body["conversation"] == ("lisbon-trip" if name == "chat-conversation" else "default")
        assert body["turns"] == 1
        assert result["headers"]["X-Session-Id"] == body["session"]
        assert any(c.startswith(f"sid={body['session']};") for c in result["cookies"])
        if name == "chat-history-base64":
            assert "Is this body base64-encoded?" in body["reply"]
    elif name == "conversations-list":
        assert body == {"conversations": [], "next": None}
    elif name == "history-get":
        assert body["messages"] == [] and body["turns"] == 0
        assert "RateLimit" not in result["headers"]
    else:
        assert body == {"ok": True}


def test_a_conversation_through_the_events(events, aws, standin, lambda_handler, lambda_context) -> None:
    chat, history = lambda_handler("ChatFunction"), lambda_handler("HistoryFunction")
    first = json.loads(chat(events["chat-history"], lambda_context)["body"])
    follow_up = json.loads(json.dumps(events["chat-history"]))
    follow_up["headers"]["x-session-id"] = first["session"]
    follow_up["body"] = json.dumps({"message": "What is my name?"})
    second = json.loads(chat(follow_up, lambda_context)["body"])
    assert (second["turns"], second["session"]) == (2, first["session"])

    read = json.loads(json.dumps(events["history-get"]))
    read["cookies"] = [f"sid={first['session']}"]
    body = json.loads(history(read, lambda_context)["body"])
    assert [m["content"] for m in body["messages"]][::2] == ["Hi! My name is Ada.", "What is my name?"]
    assert body["turns"] == 2

    forget = json.loads(json.dumps(events["history-delete"]))
    forget["headers"]["x-session-id"] = first["session"]
    assert json.loads(history(forget, lambda_context)["body"]) == {"ok": True}
    assert json.loads(history(read, lambda_context)["body"])["messages"] == []


def test_conversations_through_the_events(events, aws, standin, lambda_handler, lambda_context) -> None:
    chat, history = lambda_handler("ChatFunction"), lambda_handler("HistoryFunction")
    first = json.loads(chat(events["chat-conversation"], lambda_context)["body"])
    assert (first["conversation"], first["title"]) == ("lisbon-trip", "Plan three days in Lisbon.")

    def as_caller(name: str) -> dict:
        event = json.loads(json.dumps(events[name]))
        event["headers"]["x-session-id"] = first["session"]
        return event

    listed = json.loads(history(as_caller("conversations-list"), lambda_context)["body"])
    assert [(c["id"], c["turns"]) for c in listed["conversations"]] == [("lisbon-trip", 1)]
    renamed = json.loads(history(as_caller("conversation-rename"), lambda_context)["body"])
    assert renamed["title"] == "Trip to Lisbon"
    exported = history(as_caller("conversation-export"), lambda_context)
    assert exported["headers"]["Content-Disposition"] == 'attachment; filename="trip-to-lisbon.md"'
    assert exported["body"].startswith("# Trip to Lisbon\n")
    assert json.loads(history(as_caller("conversation-delete"), lambda_context)["body"]) == {"ok": True}
    listed = json.loads(history(as_caller("conversations-list"), lambda_context)["body"])
    assert listed["conversations"] == []


@pytest.mark.parametrize("name", ["stream-chat", "stream-chat-history"])
def test_stream_event_through_the_web_adapter_to_the_app(name, events, aws, standin) -> None:
    """StreamFunction runs behind the Web Adapter, whose handling of the event is emulated."""
    import asyncio

    from local.lambda_runtime import load_handler_module
    from local.template import url_functions
    from local.web_adapter import call_app

    spec = next(spec for spec in url_functions() if spec.logical_id == "StreamFunction")
    app = load_handler_module(spec).app
    sent: list[dict] = []

    async def receive() -> dict:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    # On a thread of its own: Playwright's sync API (the browser tests) leaves an event loop running
    # on the main thread of a process that ran them, and asyncio.run() refuses to start beside it.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, call_app(app, events[name], "StreamFunction", receive, send, 60)).result()
    start = sent[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert start["status"] == 200
    assert headers["content-type"].startswith("text/event-stream")
    body = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    chunks = [c for c in body.split("\n\n") if c]
    assert chunks[-1] == "data: [DONE]"
    final = json.loads(chunks[-2].removeprefix("data: "))
    assert final["done"] is True
    if name == "stream-chat-history":
        assert final["turns"] == 1
        assert final["session"] == headers["x-session-id"]

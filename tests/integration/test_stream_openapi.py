"""The stream routes in /api/openapi.json, and every event a real stream sends matching its schema there."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

pytestmark = pytest.mark.integration


FAILS = "fails [standin:fail_after=2]"
UI_BODY = {
    "id": "described-ui",
    "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hello"}]}],
    "trigger": "submit-message",
}


def described(client: httpx.Client) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/api/openapi.json").json()
    return document


def event_validator(document: dict[str, Any], path: str) -> jsonschema.Draft202012Validator:
    """A validator of one `data:` event of the route, with the document's schemas to resolve its refs."""
    media = document["paths"][path]["post"]["responses"]["200"]["content"]["text/event-stream"]
    schema = {**media["x-events"], "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


def data_events(client: httpx.Client, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200, response.read()
        lines = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_the_stream_routes_are_described_with_their_bodies_and_errors(client: httpx.Client) -> None:
    paths = described(client)["paths"]
    assert {"/api/chat/stream", "/api/chat/history/stream", "/api/chat/ui", "/api/chat/stop"} <= set(paths)
    history = paths["/api/chat/history/stream"]["post"]
    body = history["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body == "#/components/schemas/ConversationTurnRequest"
    assert {"200", "400", "413", "422", "429", "502", "503", "504"} <= set(history["responses"])
    assert {"X-Turn-Id", "X-Session-Id", "RateLimit"} <= set(history["responses"]["200"]["headers"])
    stop = paths["/api/chat/stop"]["post"]
    assert stop["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/StopRequest")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat/stream", {"message": "hello"}),
        ("/api/chat/history/stream", {"message": "hello", "conversation": "described"}),
        ("/api/chat/history/stream", {"message": "fails [standin:fail_after=2]"}),
        ("/api/chat/ui", UI_BODY),
        (
            "/api/chat/ui",
            {**UI_BODY, "messages": [{"role": "user", "parts": [{"type": "text", "text": FAILS}]}]},
        ),
    ],
    ids=["stateless", "history", "error", "ai-sdk", "ai-sdk-error"],
)
def test_every_event_matches_the_description(dev_server, path: str, body: dict[str, Any]) -> None:
    client = dev_server.client()
    validator = event_validator(described(client), path)
    events = data_events(client, path, body)
    assert len(events) >= 2
    for event in events:
        validator.validate(event)
    last = events[-1]
    assert ("error" in last or last.get("type") == "error") is ("fail_after" in json.dumps(body))
    # A schema that says nothing would let anything through: it must refuse what no stream sends.
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"text": "", "done": True, "usage": {}, "unexpected": 1, "type": "finish"})

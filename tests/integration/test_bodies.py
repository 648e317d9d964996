"""Bad bodies over HTTP: all four POST routes, buffered and streamed, answer each one identically."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

POST_ROUTES = ["/api/chat", "/api/chat/history", "/api/chat/stream", "/api/chat/history/stream"]
JSON = {"Content-Type": "application/json"}
BINARY = {"Content-Type": "application/octet-stream"}
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}

BAD_BODIES = {
    "not json": (b"{oops", 400, "invalid_json", "not valid JSON"),
    "empty": (b"", 400, "invalid_json", "not valid JSON"),
    "NaN": (b'{"message": NaN}', 400, "invalid_json", "not valid JSON"),
    "array": (b'["hi"]', 422, "invalid_request", "JSON object"),
    "array of the object": (b'[{"message": "hi"}]', 422, "invalid_request", "JSON object"),
    "string": (b'"hi"', 422, "invalid_request", "JSON object"),
    "no message": (b"{}", 422, "invalid_request", "`message` is required."),
    "empty message": (b'{"message": ""}', 422, "invalid_request", "`message` must not be empty."),
    "blank message": (b'{"message": " \\n "}', 422, "invalid_request", "`message` must not be empty."),
    "number": (b'{"message": 7}', 422, "invalid_request", "`message` must be a string."),
    "unknown field": (
        b'{"message": "hi", "temperature": 1}',
        422,
        "invalid_request",
        "Unknown field `temperature`",
    ),
    "model not allowed": (
        b'{"message": "hi", "model": "x"}',
        422,
        "model_not_allowed",
        "The model 'x' is not available",
    ),
    "field twice": (b'{"message": "hi", "message": "hi"}', 422, "invalid_request", "more than once"),
    "lone surrogate": (b'{"message": "\\ud800"}', 422, "invalid_request", "lone surrogate"),
    "too long": (json.dumps({"message": "x" * 16_001}).encode(), 413, "message_too_long", "16000"),
}
NOT_UTF8 = b'{"message": "caf\xe9 au lait"}'  # Latin-1


def answers(dev_server, body: bytes, headers: dict[str, str]) -> list[tuple[int, dict]]:
    """Each route's (status, body), every request from its own IP so no budget runs out."""
    replies = []
    for path in POST_ROUTES:
        response = dev_server.client().post(path, content=body, headers=headers)
        assert response.headers["content-type"].startswith("application/json"), (path, response.text[:200])
        assert "ratelimit" in response.headers  # refused, but counted, on every route alike
        replies.append((response.status_code, response.json()))
    return replies


@pytest.mark.parametrize("case", list(BAD_BODIES), ids=list(BAD_BODIES))
def test_every_post_route_refuses_a_bad_body_identically(dev_server, case) -> None:
    body, status, code, wording = BAD_BODIES[case]
    replies = answers(dev_server, body, JSON)
    assert all(reply == replies[0] for reply in replies), replies
    got_status, payload = replies[0]
    assert (got_status, payload["code"]) == (status, code)
    assert wording in payload["error"]


@pytest.mark.parametrize("headers", [JSON, BINARY], ids=["json", "octet-stream"])
def test_a_byte_order_mark_is_ignored_on_every_route(dev_server, headers) -> None:
    body = '\ufeff{"message": "after-a-BOM"}'.encode()
    for path in POST_ROUTES:
        response = dev_server.client().post(path, content=body, headers=headers)
        assert response.status_code == 200, (path, response.text)
        assert "after-a-BOM" in response.text


def test_a_body_that_is_not_utf8_is_invalid_json_on_every_route(dev_server) -> None:
    """Delivered base64-encoded (a non-text Content-Type), as a function URL does."""
    replies = answers(dev_server, NOT_UTF8, BINARY)
    assert all(reply == replies[0] for reply in replies), replies
    assert replies[0][0] == 400 and replies[0][1]["code"] == "invalid_json"


def test_a_text_body_that_is_not_utf8_is_invalid_json_on_every_route(dev_server) -> None:
    replies = answers(dev_server, NOT_UTF8, TEXT)
    assert [status for status, _ in replies] == [400] * 4, replies
    assert all(payload["code"] == "invalid_json" for _, payload in replies)

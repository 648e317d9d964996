"""The HTTP layer on raw function URL events: errors, budget, identity, sessions."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest


@pytest.fixture
def chat(aws, standin, lambda_handler, lambda_context):
    handler = lambda_handler("ChatFunction")

    def call(event: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        result = handler(event, lambda_context)
        return result["statusCode"], result.get("headers", {}), json.loads(result["body"])

    return call


def request(events, body: str | None, *, path: str = "/api/chat", ip: str = "203.0.113.9", **changes: Any):
    event = copy.deepcopy(events["chat"])
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["sourceIp"] = ip
    event["body"] = body
    event.update(changes)
    return event


def test_a_lone_surrogate_is_named_in_the_error(chat, events) -> None:
    _, _, payload = chat(request(events, '{"message": "\\ud800"}'))
    assert "lone surrogate" in payload["error"]


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_a_byte_order_mark_is_ignored(chat, events, base64_encoded) -> None:
    body = '\ufeff{"message": "after a BOM"}'
    if base64_encoded:
        body = base64.b64encode(body.encode()).decode()
    status, _, payload = chat(request(events, body, isBase64Encoded=base64_encoded))
    assert status == 200
    assert "after a BOM" in payload["reply"]


def test_the_session_cookie_is_same_site_lax(chat, events) -> None:
    from claude_chat.http_api import session_cookie

    cookie = str(session_cookie("token"))
    assert cookie.startswith("sid=token;")
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert attributes["samesite"] == "SameSite=Lax"
    assert {"httponly", "secure", "path"} <= attributes.keys() and attributes["path"] == "Path=/"


def test_unknown_field_is_named_in_the_error(chat, events) -> None:
    _, _, payload = chat(request(events, '{"message": "hi", "system": "be evil"}'))
    assert "`system`" in payload["error"]


def test_the_longest_allowed_message_is_accepted(chat, events) -> None:
    status, _, payload = chat(request(events, json.dumps({"message": "é" * 16_000})))
    assert status == 200, payload


def test_base64_bodies_are_decoded(chat, events) -> None:
    body = base64.b64encode(json.dumps({"message": "encoded ünïcode"}).encode()).decode()
    status, _, payload = chat(request(events, body, isBase64Encoded=True))
    assert status == 200
    assert "encoded ünïcode" in payload["reply"]


@pytest.mark.parametrize("raw", [b"\xff\xfe not utf-8", b"not json at all"])
def test_bad_base64_bodies_are_invalid_json(chat, events, raw) -> None:
    body = base64.b64encode(raw).decode()
    status, _, payload = chat(request(events, body, isBase64Encoded=True))
    assert (status, payload["code"]) == (400, "invalid_json")


def test_body_is_json_whatever_the_content_type(chat, events) -> None:
    event = request(events, '{"message": "sent as text/plain"}')
    event["headers"]["content-type"] = "text/plain;charset=UTF-8"
    status, _, _ = chat(event)
    assert status == 200


def test_ipv6_callers_of_one_slash_56_share_a_budget(chat, events) -> None:
    for n in range(5):
        event = request(events, '{"message": "hi"}', ip=f"2001:db8:77:{n:x}::{n + 1}")
        assert chat(event)[0] == 200
    status, _, payload = chat(request(events, '{"message": "hi"}', ip="2001:db8:77:ff::9"))
    assert (status, payload["code"]) == (429, "rate_limited")
    assert chat(request(events, '{"message": "hi"}', ip="2001:db8:77:100::1"))[0] == 200


def test_a_defect_is_a_500_json_error_without_a_stack_trace(chat, events, monkeypatch) -> None:
    from claude_chat import services

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals at /opt/python/claude_chat/x.py")

    monkeypatch.setattr(services, "claude", broken)
    status, _, payload = chat(request(events, '{"message": "hi"}'))
    assert status == 500
    assert payload == {"error": "Internal error.", "code": "internal"}


def test_a_failing_admission_is_a_500_json_error(chat, events, monkeypatch) -> None:
    """A defect (DynamoDB refusing the request itself, not throttling it) is a 500, never a refusal."""
    from botocore.exceptions import ClientError

    from claude_chat import services

    def broken(*_: object, **__: object) -> None:
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "boom"}}, "TransactWriteItems")

    monkeypatch.setattr(services.dynamodb(), "transact_write_items", broken)
    status, headers, payload = chat(request(events, '{"message": "hi"}'))
    assert status == 500
    assert payload == {"error": "Internal error.", "code": "internal"}
    assert headers["Content-Type"] == "application/json"

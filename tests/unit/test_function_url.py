"""The local function URL's request bodies and its 6 MB response limit, as AWS's function URLs behave."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from local.function_url import (
    MAX_RESPONSE_PAYLOAD_BYTES,
    PAYLOAD_TOO_LARGE_BODY,
    http_result,
    lambda_event,
    response_payload_bytes,
)


def event_for(body: bytes, content_type: str | None) -> dict[str, Any]:
    headers = [("content-type", content_type)] if content_type is not None else []
    return lambda_event(
        method="POST", path="/api/chat", query_string="", headers=headers, body=body, peer_ip="203.0.113.9"
    )


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain;charset=UTF-8", "application/ld+json"]
)
@pytest.mark.parametrize("body", ['{"message": "hi"}', '{"message": "café ✓ 𝄞"}'])
def test_utf8_text_arrives_as_text(body: str, content_type: str) -> None:
    event = event_for(body.encode(), content_type)
    assert (event["body"], event["isBase64Encoded"]) == (body, False)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "text/plain;charset=latin-1"])
@pytest.mark.parametrize(
    "body",
    [
        b'{"message": "caf\xe9"}',  # Latin-1
        b'{"message": "\xff\xfe"}',
        b'{"message": "\xed\xa0\x80"}',  # a UTF-16 surrogate, which UTF-8 forbids
        b'{"message": "\xe2\x82"}',  # a truncated sequence
        b"\xef\xbb\xbf\xc3",
    ],
)
def test_a_body_that_is_not_utf8_arrives_base64_encoded_byte_for_byte(body: bytes, content_type: str) -> None:
    event = event_for(body, content_type)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"], validate=True) == body
    assert "\ufffd" not in event["body"]


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "image/png"])
def test_a_body_without_a_text_content_type_arrives_base64_encoded(content_type: str | None) -> None:
    event = event_for(b'{"message": "hi"}', content_type)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b'{"message": "hi"}'


def test_no_body_means_no_body_field() -> None:
    event = event_for(b"", "application/json")
    assert "body" not in event and event["isBase64Encoded"] is False


def result_of_size(size: int, char: str = "x") -> dict[str, Any]:
    """A handler result whose serialized payload is exactly `size` bytes."""
    result: dict[str, Any] = {"statusCode": 200, "headers": {}, "body": "", "isBase64Encoded": False}
    room = size - response_payload_bytes(result)
    per_char = len(char.encode())
    result["body"] = char * (room // per_char) + "x" * (room % per_char)
    assert response_payload_bytes(result) == size
    return result


def test_the_limit_is_lambdas_6_mb() -> None:
    assert MAX_RESPONSE_PAYLOAD_BYTES == 6_291_556


def test_a_response_of_exactly_6_mb_is_delivered() -> None:
    result = result_of_size(MAX_RESPONSE_PAYLOAD_BYTES)
    http = http_result(result)
    assert http.status == 200
    assert http.body == result["body"].encode()


@pytest.mark.parametrize("char", ["x", "é", "✓"])
def test_one_byte_more_is_refused_with_502_as_a_function_url_does(char: str, capsys) -> None:
    http = http_result(result_of_size(MAX_RESPONSE_PAYLOAD_BYTES + 1, char))
    assert http.status == 502
    assert http.body == PAYLOAD_TOO_LARGE_BODY
    assert dict(http.headers) == {"content-type": "application/json"}
    assert str(MAX_RESPONSE_PAYLOAD_BYTES + 1) in capsys.readouterr().err


def test_the_envelope_counts_not_just_the_body() -> None:
    # A body under 6 MB whose headers push the payload over it is refused all the same.
    result = result_of_size(MAX_RESPONSE_PAYLOAD_BYTES - 100)
    assert http_result(result).status == 200
    result["headers"]["x-padding"] = "p" * 200
    assert len(result["body"]) < MAX_RESPONSE_PAYLOAD_BYTES
    assert http_result(result).status == 502


def test_multibyte_text_is_measured_in_utf8_bytes_not_characters() -> None:
    body = "é" * (MAX_RESPONSE_PAYLOAD_BYTES // 2)  # fewer characters than the limit, more bytes
    result = {"statusCode": 200, "headers": {}, "body": body, "isBase64Encoded": False}
    assert http_result(result).status == 502


def test_a_base64_body_is_measured_as_sent_not_decoded() -> None:
    raw = b"\0" * (MAX_RESPONSE_PAYLOAD_BYTES * 3 // 4 + 10)  # under 6 MB raw, over it in base64
    body = base64.b64encode(raw).decode()
    result = {"statusCode": 200, "headers": {}, "body": body, "isBase64Encoded": True}
    assert http_result(result).status == 502


def test_a_bare_return_value_is_limited_too() -> None:
    assert http_result({"reply": "x" * MAX_RESPONSE_PAYLOAD_BYTES}).status == 502
    small = http_result({"reply": "hi"})
    assert (small.status, json.loads(small.body)) == (200, {"reply": "hi"})


def test_multibyte_text_is_measured_unescaped_as_the_python_313_runtime_sends_it() -> None:
    # Escaped (\u00e9, 6 bytes a character) this would be three times the limit; raw UTF-8 it fits.
    body = "é" * (MAX_RESPONSE_PAYLOAD_BYTES // 2 - 100)
    result = {"statusCode": 200, "headers": {}, "body": body, "isBase64Encoded": False}
    assert http_result(result).status == 200

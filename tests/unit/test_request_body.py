"""The one body parser of every route: each rule, on text, bytes and base64, with the contract's error."""

from __future__ import annotations

import base64
import json

import pytest

from claude_chat.errors import ApiError, InvalidJson, InvalidRequest, MessageTooLong
from claude_chat.request_body import parse_chat_request, read_json_body

BOM = "\ufeff"


def as_every_transport(body: str | bytes) -> list[tuple[str | bytes, bool]]:
    """The same body as an event's text, as the stream's raw bytes, and base64-encoded."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    forms: list[tuple[str | bytes, bool]] = [(raw, False), (base64.b64encode(raw).decode(), True)]
    if isinstance(body, str):
        forms.append((body, False))
    return forms


def refusal(body: str | bytes | None, *, is_base64: bool = False) -> ApiError:
    with pytest.raises(ApiError) as raised:
        parse_chat_request(body, is_base64=is_base64)
    return raised.value


@pytest.mark.parametrize(
    ("body", "kind", "wording"),
    [
        (b'{"message": "caf\xe9"}', InvalidJson, "not valid JSON"),  # Latin-1, not UTF-8
        (b'{"message": "\xed\xa0\x80"}', InvalidJson, "not valid JSON"),  # an encoded surrogate (CESU-8)
        (b'{"message": "\xc0\xaf"}', InvalidJson, "not valid JSON"),  # an overlong form
        ('{"message": "hi"', InvalidJson, "not valid JSON"),
        ("", InvalidJson, "not valid JSON"),
        ('{"message": NaN}', InvalidJson, "not valid JSON"),
        ("Infinity", InvalidJson, "not valid JSON"),
        ("[" * 100_000, InvalidJson, "not valid JSON"),
        ('["hi"]', InvalidRequest, "must be a JSON object"),
        ('[{"message": "hi"}]', InvalidRequest, "must be a JSON object"),
        ('"hi"', InvalidRequest, "must be a JSON object"),
        ("null", InvalidRequest, "must be a JSON object"),
        ("42", InvalidRequest, "must be a JSON object"),
        ("{}", InvalidRequest, "`message` is required."),
        ('{"message": ""}', InvalidRequest, "`message` must not be empty."),
        ('{"message": " \\n\\t"}', InvalidRequest, "`message` must not be empty."),
        ('{"message": 7}', InvalidRequest, "`message` must be a string."),
        ('{"message": null}', InvalidRequest, "`message` must be a string."),
        (
            '{"message": "hi", "temperature": 1}',
            InvalidRequest,
            "Unknown field `temperature`: see the route's body in /api/openapi.json.",
        ),
        ('{"message": "a", "message": "b"}', InvalidRequest, "The field `message` is given more than once."),
        ('{"message": "\\ud800"}', InvalidRequest, "lone surrogate"),
        ('{"message": "ok \\udfff then"}', InvalidRequest, "lone surrogate"),
        ('{"message": "\\ude00\\ud83d"}', InvalidRequest, "lone surrogate"),  # a pair, backwards
        (json.dumps({"message": "x" * 16_001}), MessageTooLong, "longer than 16000 characters"),
    ],
)
def test_each_bad_body_gets_its_contract_error_whatever_the_transport(body, kind, wording) -> None:
    for form, is_base64 in as_every_transport(body):
        error = refusal(form, is_base64=is_base64)
        assert type(error) is kind, (form[:40], is_base64)
        assert wording in error.message
    assert (kind.status, kind.code) in {
        (400, "invalid_json"),
        (422, "invalid_request"),
        (413, "message_too_long"),
    }


def test_the_lone_surrogate_error_says_so_instead_of_empty() -> None:
    error = refusal('{"message": "\\ud800"}')
    assert (error.status, error.code) == (422, "invalid_request")
    assert "empty" not in error.message and "surrogate" in error.message


@pytest.mark.parametrize("body", [None, b"", ""])
def test_no_body_is_invalid_json(body) -> None:
    assert isinstance(refusal(body), InvalidJson)


@pytest.mark.parametrize("body", ["not base64!", "e30"])  # bad alphabet; bad padding
def test_bad_base64_is_invalid_json(body) -> None:
    assert isinstance(refusal(body, is_base64=True), InvalidJson)


def test_text_holding_a_raw_surrogate_did_not_come_from_utf8() -> None:
    assert isinstance(refusal('{"message": "\ud800"}'), InvalidJson)


@pytest.mark.parametrize("body", [BOM + '{"message": "hi"}', (BOM + '{"message": "hi"}').encode()])
def test_one_leading_byte_order_mark_is_ignored_everywhere(body) -> None:
    for form, is_base64 in as_every_transport(body):
        assert parse_chat_request(form, is_base64=is_base64).message == "hi"


def test_a_second_byte_order_mark_is_not_json() -> None:
    assert isinstance(refusal(BOM + BOM + '{"message": "hi"}'), InvalidJson)


@pytest.mark.parametrize(
    "message", ["héllo", "😀" * 16_000, "a\u2028b", '"quoted" and \\ backslash', "\U0001f600 surrogate pair"]
)
def test_good_messages_arrive_exactly(message) -> None:
    body = json.dumps({"message": message})  # ASCII with \\ud83d\\ude00 pairs: a pair is fine
    for form, is_base64 in as_every_transport(body):
        assert parse_chat_request(form, is_base64=is_base64).message == message
    assert (
        parse_chat_request(json.dumps({"message": message}, ensure_ascii=False).encode()).message == message
    )


def test_read_json_body_gives_the_text_without_bom_and_the_object() -> None:
    body = read_json_body(base64.b64encode((BOM + '{"title": "x"}').encode()).decode(), is_base64=True)
    assert (body.text, body.data) == ('{"title": "x"}', {"title": "x"})

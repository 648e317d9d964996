"""The one body parser of every route: each rule, on text, bytes and base64, with the contract's error."""

from __future__ import annotations

import base64
import json

import pytest

from claude_chat.errors import ApiError, InvalidJson, InvalidRequest, MessageTooLong
from claude_chat.request_body import parse_chat_request, read_json_body, request_error

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


# ------------------------------------------------------------ read_json_body, as the stop route calls it


def test_read_json_body_reads_text_and_bytes_as_they_are_by_default() -> None:
    """The stop route passes the stream's raw bytes and no `is_base64`: the default must be False."""
    for body in ('{"turn": "abc"}', b'{"turn": "abc"}'):
        assert read_json_body(body).data == {"turn": "abc"}
    # The same text base64-encoded is not JSON unless the caller says it is base64.
    encoded = base64.b64encode(b'{"turn": "abc"}').decode()
    assert isinstance(_refused_body(encoded), InvalidJson)
    assert read_json_body(encoded, is_base64=True).data == {"turn": "abc"}


@pytest.mark.parametrize("body", ["[1]", "[]", "1", "null", '"turn"', "true", b"[1]"])
def test_read_json_body_refuses_any_json_that_is_not_an_object_with_the_contracts_422(body) -> None:
    error = _refused_body(body)
    assert type(error) is InvalidRequest
    assert (error.status, error.body()) == (
        422,
        {"error": 'The body must be a JSON object: {"message": "..."}.', "code": "invalid_request"},
    )


def test_read_json_body_refuses_a_repeated_field_even_inside_a_nested_object() -> None:
    error = _refused_body('{"turn": {"a": 1, "a": 2}}')
    assert type(error) is InvalidRequest
    assert error.message == "The field `a` is given more than once."


@pytest.mark.parametrize("body", [None, b"", ""])
def test_no_body_is_read_as_empty_text_whatever_the_transport(body) -> None:
    for is_base64 in (False, True):
        error = _refused_body(body, is_base64=is_base64)
        assert type(error) is InvalidJson
        assert isinstance(error.__cause__, json.JSONDecodeError)
        assert error.__cause__.doc == ""  # what was parsed: nothing, not a stand-in text


@pytest.mark.parametrize("body", ["e30=\n", "e3 0=", "e3!0=", "e30=e30="])
def test_base64_is_decoded_strictly(body) -> None:
    """Only the base64 alphabet: a lenient decoder would drop the stray characters and read `{}`."""
    assert isinstance(_refused_body(body, is_base64=True), InvalidJson)
    assert read_json_body("e30=", is_base64=True).data == {}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_the_error_behind_a_json_extension_names_it(constant: str) -> None:
    error = _refused_body(f'{{"turn": {constant}}}')
    assert type(error) is InvalidJson
    assert str(error.__cause__) == f"{constant} is not JSON"


def _refused_body(body: str | bytes | None, *, is_base64: bool = False) -> ApiError:
    with pytest.raises(ApiError) as raised:
        read_json_body(body, is_base64=is_base64)
    return raised.value


# ------------------------------------------------------------ request_error, for every route's model

ONE_LINE = "`title` must be one line of text, not only spaces, without control characters."


@pytest.mark.parametrize(
    ("body", "model", "kind", "wording"),
    [
        ("{}", "RenameRequest", InvalidRequest, "`title` is required."),
        ('{"title": 7}', "RenameRequest", InvalidRequest, "`title` must be a string."),
        ('{"title": ""}', "RenameRequest", InvalidRequest, ONE_LINE),
        ('{"title": "a\\nb"}', "RenameRequest", InvalidRequest, ONE_LINE),
        ('{"title": "   "}', "RenameRequest", InvalidRequest, ONE_LINE),
        (
            json.dumps({"title": "x" * 121}),
            "RenameRequest",
            InvalidRequest,
            "`title` must be at most 120 characters.",
        ),
        (
            '{"title": "\\ud800"}',
            "RenameRequest",
            InvalidRequest,
            "`title` holds a lone surrogate (a \\ud800-\\udfff escape without its pair): not valid text.",
        ),
        (
            '{"title": "x", "colour": "red"}',
            "RenameRequest",
            InvalidRequest,
            ("Unknown field `colour`: see the route's body in /api/openapi.json."),
        ),
        (
            '{"message": "hi", "conversation": "a b"}',
            "ConversationTurnRequest",
            InvalidRequest,
            "`conversation` must be 1 to 64 of the characters A-Z a-z 0-9 _ -.",
        ),
        (
            '{"message": "hi", "replace_last": 1}',
            "ConversationTurnRequest",
            InvalidRequest,
            "`replace_last` must be true or false.",
        ),
        ('{"message": "hi"}', "StopRequest", InvalidRequest, "`turn`: Field required."),
    ],
)
def test_each_fields_complaint_gets_its_own_wording(body, model, kind, wording) -> None:
    from claude_chat import models

    with pytest.raises(ApiError) as raised:
        parse_chat_request(body, model=getattr(models, model))
    assert type(raised.value) is kind
    assert raised.value.message == wording


@pytest.mark.parametrize(
    ("errors", "kind", "wording"),
    [
        ([], InvalidRequest, 'The body must be a JSON object: {"message": "..."}.'),
        ([{"type": "model_type"}], InvalidRequest, 'The body must be a JSON object: {"message": "..."}.'),
        (
            [{"type": "model_type", "loc": ("body",)}],
            InvalidRequest,
            'The body must be a JSON object: {"message": "..."}.',
        ),
        ([{"type": "json_invalid", "loc": ("body", 0)}], InvalidJson, "The request body is not valid JSON."),
        (
            [{"type": "string_too_long", "loc": ("body", "message")}],
            MessageTooLong,
            ("`message` is longer than 16000 characters."),
        ),
        ([{"type": "missing", "loc": ("body", "message")}], InvalidRequest, "`message` is required."),
        (
            [{"type": "string_type", "loc": ("body", "message")}],
            InvalidRequest,
            "`message` must be a string.",
        ),
        (
            [{"type": "string_too_short", "loc": ("body", "message")}],
            InvalidRequest,
            "`message` must not be empty.",
        ),
        (
            [{"type": "string_type", "loc": ("body", "turn"), "msg": "Input should be a valid string"}],
            InvalidRequest,
            ("`turn`: Input should be a valid string."),
        ),
        ([{"type": "value_error", "loc": ("body", "turn")}], InvalidRequest, "`turn`: not valid."),
        (
            [{"type": "model_type", "loc": ("body",)}, {"type": "missing", "loc": ("body", "message")}],
            InvalidRequest,
            "`message` is required.",
        ),
        (
            [{"type": "missing", "loc": ("body", "title")}, {"type": "missing", "loc": ("body", "message")}],
            InvalidRequest,
            "`title` is required.",
        ),
    ],
)
def test_request_error_words_pydantics_first_complaint_about_a_field(errors, kind, wording) -> None:
    """Errors as pydantic and Powertools give them (locations start with "body"); a fieldless one passes."""
    error = request_error(errors)
    assert type(error) is kind
    assert error.message == wording

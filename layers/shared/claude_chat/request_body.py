"""Reading a request body: one set of rules for every route and every transport.

The buffered routes (function URL events, maybe base64-encoded) and the
streamed routes (raw bytes from the Web Adapter) must refuse the same bodies
with the same errors, so both call this module:

- bytes that are not UTF-8 (after base64 decoding) are `400 invalid_json`:
  never replaced with U+FFFD and sent to Claude as if the user had typed it;
- one leading UTF-8 byte-order mark is ignored, as RFC 8259 section 8.1 allows
  (Windows tools add one), whether it arrives as bytes or as text;
- only RFC 8259 JSON: Python's NaN/Infinity extensions are `400 invalid_json`;
- a JSON text that is not an object is `422 invalid_request`, and so is an
  object naming a field twice (parsers disagree on which copy wins);
- the object is then checked against the route's pydantic model (ChatRequest
  for a turn), and pydantic's complaint becomes the contract's error with the
  wording a web developer needs (`request_error`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from claude_chat.errors import ApiError, InvalidJson, InvalidRequest, MessageTooLong
from claude_chat.models import LONE_SURROGATE, TITLE_MAX_CHARS, ChatRequest
from claude_chat.settings import get_settings

_BOM = "\ufeff"
RequestT = TypeVar("RequestT", bound=BaseModel)
NOT_AN_OBJECT = 'The body must be a JSON object: {"message": "..."}.'


@dataclass(frozen=True, slots=True)
class JsonBody:
    """A body that passed the shared rules: its text (BOM removed) and the object it holds."""

    text: str
    data: dict[str, Any]


def parse_chat_request(
    body: str | bytes | None,
    *,
    is_base64: bool = False,
    model: type[RequestT] = ChatRequest,  # type: ignore[assignment]
) -> RequestT:
    """The body of a chat turn, or the contract's ApiError (InvalidJson, InvalidRequest, MessageTooLong).

    `model` is ChatRequest for a stateless turn, ConversationTurnRequest for one with history.
    """
    data = read_json_body(body, is_base64=is_base64).data
    try:
        return model.model_validate(data)
    except ValidationError as error:
        located = [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        raise request_error(located) from error


def read_json_body(body: str | bytes | None, *, is_base64: bool = False) -> JsonBody:
    """A body that is one JSON object, or InvalidJson / InvalidRequest; any route's model checks the rest."""
    text = _text(body, is_base64)
    try:  # a field given twice is InvalidRequest, raised by _unique_fields from inside the parser
        data = json.loads(text, parse_constant=_not_json, object_pairs_hook=_unique_fields)
    except (ValueError, RecursionError) as error:
        raise InvalidJson() from error
    if not isinstance(data, dict):
        raise InvalidRequest(NOT_AN_OBJECT)
    return JsonBody(text, data)


def request_error(errors: Sequence[Mapping[str, Any]]) -> ApiError:  # noqa: PLR0911 - one return per case
    """The contract's error for pydantic's first complaint about a body (locations start with "body")."""
    for error in errors:
        kind, location = error.get("type"), tuple(error.get("loc", ()))
        field = location[1] if len(location) > 1 else None
        if kind == "json_invalid":
            return InvalidJson()
        if kind == "string_too_long" and field == "message":
            return MessageTooLong(get_settings().max_message_chars)
        if kind == "extra_forbidden":
            return InvalidRequest(f"Unknown field `{field}`: see the route's body in /api/openapi.json.")
        if field == "message":
            if kind == "missing":
                return InvalidRequest("`message` is required.")
            if kind == "string_type":
                return InvalidRequest("`message` must be a string.")
            if kind == LONE_SURROGATE:
                return InvalidRequest(str(error.get("msg")))
            return InvalidRequest("`message` must not be empty.")
        if field == "title":
            return _title_error(str(kind), str(error.get("msg")))
        if field == "conversation":
            return InvalidRequest("`conversation` must be 1 to 64 of the characters A-Z a-z 0-9 _ -.")
        if field == "replace_last":
            return InvalidRequest("`replace_last` must be true or false.")
        if field is not None:
            return InvalidRequest(f"`{field}`: {error.get('msg', 'not valid')}.")
    return InvalidRequest(NOT_AN_OBJECT)


def _title_error(kind: str, message: str) -> ApiError:
    if kind == LONE_SURROGATE:
        return InvalidRequest(message)
    if kind == "missing":
        return InvalidRequest("`title` is required.")
    if kind == "string_type":
        return InvalidRequest("`title` must be a string.")
    if kind == "string_too_long":
        return InvalidRequest(f"`title` must be at most {TITLE_MAX_CHARS} characters.")
    return InvalidRequest("`title` must be one line of text, not only spaces, without control characters.")


def _text(body: str | bytes | None, is_base64: bool) -> str:
    """The body as text: base64-decoded if so delivered, strictly UTF-8, one leading BOM dropped."""
    raw: str | bytes = body or b""
    try:
        if is_base64:
            raw = base64.b64decode(raw, validate=True)
        if isinstance(raw, bytes):
            text = raw.decode("utf-8")
        else:
            text = raw
            text.encode("utf-8")  # text holding a raw lone surrogate did not come from UTF-8 bytes
    except (binascii.Error, ValueError) as error:  # UnicodeDecodeError is a ValueError
        raise InvalidJson() from error
    return text.removeprefix(_BOM)


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's fields; InvalidRequest (not a ValueError: the parser lets it through) for a repeat."""
    data: dict[str, Any] = {}
    for name, value in pairs:
        if name in data:
            raise InvalidRequest(f"The field `{name}` is given more than once.")
        data[name] = value
    return data


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")

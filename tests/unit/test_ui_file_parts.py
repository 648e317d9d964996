"""The AI SDK's `file` parts (claude_chat.ui_stream): a data URL of an allowed type and size becomes a
file of the turn; anything else is the contract's error before any call, and a link is never fetched."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from claude_chat.attachments import MAX_BYTES, AttachmentTooLarge, UnsupportedAttachment
from claude_chat.errors import ApiError, InvalidRequest
from claude_chat.ui_stream import read_ui_request

DOT = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def body(*parts: dict[str, Any], text: str | None = "Look") -> str:
    content = [{"type": "text", "text": text}] if text is not None else []
    message = {"id": "m1", "role": "user", "parts": [*content, *parts]}
    return json.dumps({"id": "chat1", "messages": [message], "trigger": "submit-message"})


def part(data: bytes = DOT, media_type: str = "image/png", **fields: Any) -> dict[str, Any]:
    url = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
    return {"type": "file", "mediaType": media_type, "url": url, **fields}


def test_a_data_url_becomes_a_file_of_the_turn_with_its_name() -> None:
    asked = read_ui_request(body(part(filename="holiday/../dot.png")))
    [file] = asked._inline_files
    assert (file.name, file.type, file.data) == ("dot.png", "image/png", DOT)
    assert asked.message == "Look"


def test_a_file_without_a_name_gets_one_from_its_type_and_one_without_text_gets_a_message() -> None:
    asked = read_ui_request(body(part(), part(), text=None))
    assert [file.name for file in asked._inline_files] == ["attachment.png", "attachment.png"]
    assert asked.message.strip()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://example.com/cat.png", InvalidRequest),  # never fetched
        ("http://169.254.169.254/latest/meta-data", InvalidRequest),
        ("file:///etc/passwd", InvalidRequest),
        ("data:image/png,plain-not-base64", InvalidRequest),
        ("data:image/png;base64,not base64!", InvalidRequest),
        ("data:image/png;base64", InvalidRequest),  # no comma, no data
    ],
)
def test_a_file_part_that_is_not_a_base64_data_url_is_refused(url: str, error: type[ApiError]) -> None:
    with pytest.raises(error) as refused:
        read_ui_request(body({"type": "file", "mediaType": "image/png", "url": url}))
    assert refused.value.status == 422


def test_a_type_no_upload_may_have_is_415_and_a_file_past_its_limit_413() -> None:
    with pytest.raises(UnsupportedAttachment):
        read_ui_request(body(part(b"<svg/>", "image/svg+xml")))
    with pytest.raises(AttachmentTooLarge):
        read_ui_request(body(part(b"\0" * (MAX_BYTES["image/png"] + 1))))
    read_ui_request(body(part(b"\0" * MAX_BYTES["image/gif"], "image/gif")))  # the limit itself passes here


def test_a_part_without_its_url_or_type_and_too_many_files_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        read_ui_request(body({"type": "file", "url": "data:image/png;base64,AAAA"}))
    with pytest.raises(InvalidRequest):
        read_ui_request(body({"type": "file", "mediaType": "image/png"}))
    with pytest.raises(InvalidRequest):
        read_ui_request(body(*[part() for _ in range(6)]))  # MAX_ATTACHMENTS is 5


def test_only_the_last_message_is_read() -> None:
    earlier = {
        "id": "m0",
        "role": "user",
        "parts": [{"type": "file", "mediaType": "x/y", "url": "https://e"}],
    }
    data = json.loads(body(text="hi"))
    data["messages"].insert(0, earlier)
    assert read_ui_request(json.dumps(data))._inline_files == ()

"""The AI SDK body (claude_chat.ui_stream.read_ui_request): what is read of it, and what is not."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from claude_chat.errors import ApiError
from claude_chat.models import Usage
from claude_chat.ui_stream import FinishChunk, FinishMetadata, model_chunk, read_ui_request


def body(messages: list[Any], **fields: Any) -> str:
    return json.dumps({"id": "chat-1", "messages": messages, "trigger": "submit-message", **fields})


LAST = {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "Now this"}]}


@pytest.mark.parametrize(
    "earlier",
    [
        {"role": "tool", "parts": "not a list"},  # a shape of some other SDK, or none at all
        "a string",
        {"role": "user", "parts": [{"type": "text", "text": 3}]},
    ],
)
def test_only_the_last_message_is_checked(earlier: Any) -> None:
    """The transport sends the whole chat on every turn; the server reads only the last message, so it
    neither walks megabytes of history through the model (about 1.4 s of CPU for a 6 MB body) nor refuses
    a turn for a message it would not read."""
    turn = read_ui_request(body([earlier] * 3 + [LAST]))
    assert (turn.message, turn.conversation, turn.replace_last) == ("Now this", "chat-1", False)


@pytest.mark.parametrize(
    ("last", "wording"),
    [
        ({"role": "user"}, "`messages.1.parts` is required."),
        ({"role": "user", "parts": [{"type": "text", "text": 3}]}, "`messages.1.parts.0.text`: Input"),
        ({"role": "robot", "parts": []}, "`messages.1.role`: Input should be"),
        ("text", "`messages.1`: Input should be"),
    ],
)
def test_the_last_message_is_checked_and_named(last: Any, wording: str) -> None:
    with pytest.raises(ApiError) as raised:
        read_ui_request(body([LAST, last]))
    assert (raised.value.status, raised.value.code) == (422, "invalid_request")
    assert str(json.loads(raised.value.json())["error"]).startswith(wording)


@pytest.mark.parametrize("stop_reason", ["end_turn", "stopped", None])
def test_a_finish_chunk_matches_the_schema_the_description_states(stop_reason: str | None) -> None:
    """Chunks leave without their None fields (model_chunk); the description must not require them."""
    finish = FinishChunk(messageMetadata=FinishMetadata(usage=Usage(), stop_reason=stop_reason))
    sent = json.loads(model_chunk(finish).decode().removeprefix("data: "))
    jsonschema.validate(sent, FinishChunk.model_json_schema())

"""One DynamoDB round trip before Claude is called, and one after.

A session turn needs the request budget, the token budget and the session with
its newest turns. The three calls are started together and overlap, so the
turn waits for one round trip, not three. After Claude, the turn's save and
the token charge overlap too. Every DynamoDB call here is slowed to a fixed
latency, so overlap (each call starting before any of them ended) is a
property of the code, not of the machine's speed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest

LATENCY = 0.15


@dataclass
class Call:
    operation: str
    started: float
    ended: float = 0.0


@pytest.fixture
def timeline(aws: Any) -> Iterator[list[Any]]:
    """DynamoDB calls with their start and end, and the moment the turn calls Claude."""
    from botocore.client import BaseClient

    from claude_chat.claude_client import ClaudeClient

    events: list[Any] = []
    lock = threading.Lock()
    original_call = BaseClient._make_api_call
    original_open = ClaudeClient.open_stream

    def slow_call(self: Any, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name != "dynamodb":
            return original_call(self, operation, params)
        call = Call(operation, time.monotonic())
        with lock:
            events.append(call)
        time.sleep(LATENCY)
        try:
            return original_call(self, operation, params)
        finally:
            call.ended = time.monotonic()

    def claude(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            events.append("claude")
        return original_open(self, *args, **kwargs)

    with (
        mock.patch.object(BaseClient, "_make_api_call", slow_call),
        mock.patch.object(ClaudeClient, "open_stream", claude),
    ):
        yield events


def _overlapping(calls: list[Call]) -> bool:
    return max(call.started for call in calls) < min(call.ended for call in calls)


def test_a_session_turn_waits_for_one_round_trip_before_claude_and_one_after(
    timeline, standin, lambda_handler, lambda_context, events
) -> None:
    import json

    handler = lambda_handler("ChatFunction")
    first = handler(events["chat-history"], lambda_context)
    token = json.loads(first["body"])["session"]
    timeline.clear()

    event = {
        **events["chat-history"],
        "headers": {**events["chat-history"]["headers"], "x-session-id": token},
    }
    result = handler(event, lambda_context)
    assert result["statusCode"] == 200, result
    assert json.loads(result["body"])["turns"] == 2

    claude_at = timeline.index("claude")
    before, after = timeline[:claude_at], timeline[claude_at + 1 :]
    # The request budget, the token budget, and META with the newest turns (one Query).
    assert sorted(call.operation for call in before) == ["GetItem", "Query", "UpdateItem"]
    assert _overlapping(before), "the calls before Claude ran one after another"
    # The turn's save and the token charge.
    assert sorted(call.operation for call in after) == ["TransactWriteItems", "UpdateItem"]
    assert _overlapping(after), "the save and the token charge ran one after another"


def test_a_stateless_turn_reads_no_session(timeline, standin, lambda_handler, lambda_context, events) -> None:
    result = lambda_handler("ChatFunction")(events["chat"], lambda_context)
    assert result["statusCode"] == 200, result
    claude_at = timeline.index("claude")
    assert sorted(call.operation for call in timeline[:claude_at]) == ["GetItem", "UpdateItem"]
    assert _overlapping(timeline[:claude_at])
    assert [call.operation for call in timeline[claude_at + 1 :]] == ["UpdateItem"]


def test_a_streamed_session_turn_has_the_same_critical_path(timeline, standin, aws) -> None:
    import json

    from claude_chat.streaming import StreamRequest, start_chat_stream

    def turn(token: str | None) -> dict[str, Any]:
        request = StreamRequest(b'{"message": "hi"}', "198.51.100.7", token, with_history=True)
        events = [chunk.decode() for chunk in start_chat_stream(request).events()]
        return dict(json.loads(events[-2].removeprefix("data: ")))

    token = turn(None)["session"]
    timeline.clear()
    assert turn(token)["turns"] == 2
    claude_at = timeline.index("claude")
    before, after = timeline[:claude_at], timeline[claude_at + 1 :]
    assert sorted(call.operation for call in before) == ["GetItem", "Query", "UpdateItem"]
    assert _overlapping(before)
    assert sorted(call.operation for call in after) == ["TransactWriteItems", "UpdateItem"]
    assert _overlapping(after)

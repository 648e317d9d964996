"""Two DynamoDB round trips before Claude is called, and one after.

A session turn needs the request budget, its slot in the session and the
newest turns: three calls started together, one round trip. What the turn may
cost is known only then, so the reservation on the caller's and the global
token budget is the second round trip (two calls side by side). After Claude,
the turn's two save writes and the two settlements all overlap. Every DynamoDB
call here is slowed to a fixed latency, so overlap is a property of the code,
not of the machine's speed.
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


def round_trips(calls: list[Any]) -> int:
    """The longest chain of calls each starting after the one before it ended: what the turn waited for."""
    ordered = sorted(calls, key=lambda call: call.started)
    depth: list[int] = []
    for i, call in enumerate(ordered):
        before = [depth[j] for j in range(i) if ordered[j].ended <= call.started]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


def operations(calls: list[Any]) -> list[str]:
    return sorted(call.operation for call in calls)


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
    # The request budget, the slot and the newest turns; then the reservation on both token budgets.
    assert operations(before) == ["Query", "UpdateItem", "UpdateItem", "UpdateItem", "UpdateItem"]
    assert round_trips(before) == 2
    # The turn item and META's count; both settlements.
    assert operations(after) == ["PutItem", "UpdateItem", "UpdateItem", "UpdateItem"]
    assert round_trips(after) == 1


def test_a_stateless_turn_reads_no_session(timeline, standin, lambda_handler, lambda_context, events) -> None:
    result = lambda_handler("ChatFunction")(events["chat"], lambda_context)
    assert result["statusCode"] == 200, result
    claude_at = timeline.index("claude")
    # The request budget and the reservation on both token budgets, side by side.
    assert operations(timeline[:claude_at]) == ["UpdateItem", "UpdateItem", "UpdateItem"]
    assert round_trips(timeline[:claude_at]) == 1
    assert operations(timeline[claude_at + 1 :]) == ["UpdateItem", "UpdateItem"]
    assert round_trips(timeline[claude_at + 1 :]) == 1


def test_a_streamed_session_turn_has_the_same_critical_path(timeline, standin, aws) -> None:
    import json

    from claude_chat.caller import Caller
    from claude_chat.chat_turn import TurnRequest, begin_turn
    from claude_chat.deadline import Deadline
    from claude_chat.streaming import events

    def turn(token: str | None) -> dict[str, Any]:
        request = TurnRequest(
            Caller("198.51.100.7", token),
            b'{"message": "hi"}',
            with_history=True,
            deadline=Deadline.after(30),
        )
        sent = [chunk.decode() for chunk in events(begin_turn(request))]
        return dict(json.loads(sent[-2].removeprefix("data: ")))

    token = turn(None)["session"]
    timeline.clear()
    assert turn(token)["turns"] == 2
    claude_at = timeline.index("claude")
    before, after = timeline[:claude_at], timeline[claude_at + 1 :]
    # The request budget, the slot and the newest turns; then the reservation on both token budgets.
    assert operations(before) == ["Query", "UpdateItem", "UpdateItem", "UpdateItem", "UpdateItem"]
    assert round_trips(before) == 2
    # The turn item and META's count; both settlements.
    assert operations(after) == ["PutItem", "UpdateItem", "UpdateItem", "UpdateItem"]
    assert round_trips(after) == 1

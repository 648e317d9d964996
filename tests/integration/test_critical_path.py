"""One DynamoDB round trip before Claude is called, and one after.

A turn is admitted by one transaction: the request window, the caller's and the
global budget counters and the conversation's record (claude_chat.admission).
When the container knows the conversation's record and newest turns (it read or
wrote them last), a session turn reads nothing: the admission checks the record
is unchanged. When it knows the record only, it reads the history beside the
admission, priced on what it knew; when it knows nothing, it reads first. The rate-limit
headers' read runs beside Claude's call. After Claude, one transaction saves
the turn, counts it on the conversation's record and settles both budgets. Every DynamoDB call here is slowed
to a fixed latency, so overlap is a property of the code, not of the machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
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

    from claude_chat.claude_client import ClaudeClient, ClaudeStream

    events: list[Any] = []
    lock = threading.Lock()
    original_call = BaseClient._make_api_call
    original_open = ClaudeClient.open_stream
    original_close = ClaudeStream.close

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
        call = Call("claude", time.monotonic())
        with lock:
            events.append(call)
        try:
            return original_open(self, *args, **kwargs)
        finally:
            call.ended = time.monotonic()  # Claude accepted the request

    def closed(self: Any) -> None:
        original_close(self)
        now = time.monotonic()
        with lock:
            events.append(Call("reply-closed", now, now))  # the reply is over: what follows is after it

    with (
        mock.patch.object(BaseClient, "_make_api_call", slow_call),
        mock.patch.object(ClaudeClient, "open_stream", claude),
        mock.patch.object(ClaudeStream, "close", closed),
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


def phases(timeline: list[Any]) -> tuple[list[Call], list[Call], list[Call]]:
    """The calls the turn waited for before calling Claude, those running beside Claude's reply
    (a call sent as Claude is called may start late on a busy machine), and those after it."""
    claude = next(call for call in timeline if call.operation == "claude")
    closed = next(call for call in timeline if call.operation == "reply-closed")
    calls = [call for call in timeline if call.operation not in ("claude", "reply-closed")]
    before = [call for call in calls if call.ended <= claude.started]
    after = [call for call in calls if call.started >= closed.started]
    beside = [call for call in calls if call not in before and call not in after]
    return before, beside, after


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

    before, beside, after = phases(timeline)
    # The admission (window, budgets, the conversation's record): the history is the one it knows.
    assert operations(before) == ["TransactWriteItems"]
    assert operations(beside) == ["GetItem"]  # the request window, for the rate-limit headers
    # The turn item, META's count and both settlements: one call.
    assert operations(after) == ["TransactWriteItems"]
    assert round_trips(after) == 1


def test_a_stateless_turn_reads_no_session(timeline, standin, lambda_handler, lambda_context, events) -> None:
    result = lambda_handler("ChatFunction")(events["chat"], lambda_context)
    assert result["statusCode"] == 200, result
    before, beside, after = phases(timeline)
    # The request window and both budgets in one transaction; no session, no conversation.
    assert operations(before) == ["TransactWriteItems"]
    assert operations(beside) == ["GetItem"]
    assert operations(after) == ["TransactWriteItems"]  # both settlements, in one call


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
    before, beside, after = phases(timeline)
    # The admission (window, budgets, the conversation's record): the history is the one it knows.
    assert operations(before) == ["TransactWriteItems"]
    assert operations(beside) == ["GetItem"]  # the request window, for the rate-limit headers
    # The turn item, META's count and both settlements: one call.
    assert operations(after) == ["TransactWriteItems"]
    assert round_trips(after) == 1


def test_a_conversation_this_container_never_saw_is_read_then_admitted(
    timeline, standin, lambda_handler, lambda_context, events
) -> None:
    """A cold container (or one that served other conversations): two round trips before Claude."""
    import json

    from claude_chat import services

    handler = lambda_handler("ChatFunction")
    token = json.loads(handler(events["chat-history"], lambda_context)["body"])["session"]
    services.sessions()._warm.clear()  # what another container would know of it: nothing
    timeline.clear()
    event = {
        **events["chat-history"],
        "headers": {**events["chat-history"]["headers"], "x-session-id": token},
    }
    assert handler(event, lambda_context)["statusCode"] == 200
    before, _, _ = phases(timeline)
    assert operations(before) == ["Query", "TransactWriteItems"]
    assert round_trips(before) == 2


def test_a_conversation_changed_since_this_container_knew_it_is_admitted_on_the_read_beside(
    timeline, standin, lambda_handler, lambda_context, events
) -> None:
    """Another container saved the last turn: the guess fails its check, and the admission is made
    again on the history read beside it, not read a third time: two round trips."""
    import json

    from claude_chat import services

    handler = lambda_handler("ChatFunction")
    first = handler(events["chat-history"], lambda_context)
    token = json.loads(first["body"])["session"]
    event = {
        **events["chat-history"],
        "headers": {**events["chat-history"]["headers"], "x-session-id": token},
    }
    sessions = services.sessions()
    stale = dict(sessions._warm)  # what this container knew after the first turn
    assert handler(event, lambda_context)["statusCode"] == 200  # "another container" saves turn 2
    sessions._warm.clear()
    sessions._warm.update({partition: replace(known, recent=None) for partition, known in stale.items()})
    timeline.clear()
    assert json.loads(handler(event, lambda_context)["body"])["turns"] == 3
    before, _, _ = phases(timeline)
    assert operations(before) == ["Query", "TransactWriteItems", "TransactWriteItems"]
    assert round_trips(before) == 2


def test_a_conversation_whose_turns_this_container_knows_but_changed_since_is_read_then_admitted(
    timeline, standin, lambda_handler, lambda_context, events
) -> None:
    """Another container saved the last turn: the admission on the turns this one knew fails its
    check (nothing was written), and the turn is admitted on a read, with the turn it saved."""
    import json

    from claude_chat import services

    handler = lambda_handler("ChatFunction")
    token = json.loads(handler(events["chat-history"], lambda_context)["body"])["session"]
    event = {
        **events["chat-history"],
        "headers": {**events["chat-history"]["headers"], "x-session-id": token},
        "body": json.dumps({"message": "and then?"}),
    }
    sessions = services.sessions()
    stale = dict(sessions._warm)
    assert handler(event, lambda_context)["statusCode"] == 200  # "another container" saves turn 2
    sessions._warm.clear()
    sessions._warm.update(stale)
    timeline.clear()
    assert json.loads(handler(event, lambda_context)["body"])["turns"] == 3
    before, _, _ = phases(timeline)
    assert operations(before) == ["Query", "TransactWriteItems", "TransactWriteItems"]
    assert round_trips(before) == 3
    sent = standin.standin.requests[-1]["body"]["messages"]
    said = [_text(message["content"]) for message in sent if message["role"] == "user"]
    assert said == ["Hi! My name is Ada.", "and then?", "and then?"]  # turn 2, saved elsewhere, is in it


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content)

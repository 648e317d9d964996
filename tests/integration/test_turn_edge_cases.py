"""Edge cases an adversarial review found in the turn (moto + stand-in).

- An empty reply from Claude (it does answer `end_turn` with no text at times) is not saved:
  Claude would refuse every later request that carried it, and the session would be stuck.
- A reservation taken on one budget counter is given back when the other counter's update
  fails with anything but a refusal (a throttle, a timeout): nobody pays for a turn that never ran.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from claude_chat import services
from claude_chat.admission import Limits
from claude_chat.caller import Caller
from claude_chat.chat_turn import TurnRequest, begin_turn, run_turn
from claude_chat.claude_client import ClaudeReply, ClaudeStream
from claude_chat.deadline import Deadline

KEY = "203.0.113.77"


@pytest.fixture
def ready(aws: Any, standin: Any) -> Any:
    httpx.delete(f"{standin.url}/_standin/disconnects")
    return standin


def request(message: str, token: str | None = None) -> TurnRequest:
    return TurnRequest(
        caller=Caller(KEY, token),
        body=f'{{"message": "{message}"}}',
        with_history=True,
        deadline=Deadline.after(10),
    )


def test_an_empty_reply_does_not_break_the_session(ready: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real_final = ClaudeStream.final

    def empty_final(self: ClaudeStream) -> ClaudeReply:
        reply = real_final(self)
        return ClaudeReply("", reply.stop_reason, reply.usage)  # what Claude sends when it says nothing

    monkeypatch.setattr(ClaudeStream, "final", empty_final)
    turn, _ = run_turn(request("say nothing at all"))
    assert turn.session is not None
    token = turn.session.token_string
    monkeypatch.setattr(ClaudeStream, "final", real_final)

    # The next turn of the same session must still reach Claude and be answered.
    _, outcome = run_turn(request("hello again", token))
    assert outcome.reply.text.startswith("Stand-in reply to: hello again")


def test_a_throttled_counter_write_is_busy_and_reserves_nothing(
    ready: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_chat.errors import Busy

    def throttled(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}},
            "TransactWriteItems",
        )

    monkeypatch.setattr(services.dynamodb(), "transact_write_items", throttled)
    with pytest.raises(Busy) as busy:
        begin_turn(request("hello"))
    assert busy.value.headers["Retry-After"] == "1" and "RateLimit-Remaining" in busy.value.headers
    monkeypatch.undo()
    assert services.admission().day_use(KEY, Limits()).tokens == 0, "a reservation stayed"


def test_a_save_that_fails_the_careful_way_still_settles_at_the_turns_cost(
    ready: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one-call save (with the settlement) is refused, so nothing of it was written; the careful
    # save then fails too. The turn's cost is known and the settlement certainly not written: the
    # caller must pay what the turn cost, not keep the reservation.
    key = "203.0.113.78"
    turn = begin_turn(
        TurnRequest(
            caller=Caller(key, None),
            body='{"message": "a save that fails"}',
            with_history=True,
            deadline=Deadline.after(10),
        )
    )
    reserved = turn.quote.worst.tokens
    db = services.dynamodb()
    real_transact = db.transact_write_items

    def refused_save(**kwargs: Any) -> Any:
        if any("Put" in action for action in kwargs["TransactItems"]):
            raise ClientError(
                {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}},
                "TransactWriteItems",
            )
        return real_transact(**kwargs)

    def throttled(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}}, "PutItem"
        )

    monkeypatch.setattr(db, "transact_write_items", refused_save)
    monkeypatch.setattr(db, "put_item", throttled)
    with pytest.raises(ClientError):
        list(turn.deltas())
    monkeypatch.undo()
    used = services.admission().day_use(key, Limits()).tokens
    assert 0 < used < reserved, f"charged {used}, the reservation was {reserved}"

"""A warm conversation's turn, admitted on the newest turns its container knows (chat_turn._admit_warm),
attacked where what is known and what a read finds part: a refusal priced on a stale history, a save
that failed halfway, and what the container keeps in memory."""

from __future__ import annotations

import time
from typing import Any

import pytest

from claude_chat.conversation_store import Turn
from tests.unit.test_conversation_store import apply

CLIENT = "198.51.100.7"
WINDOW = 9  # HISTORY_MAX_MESSAGES=20's


class Reached(Exception):
    """Claude was called: the turn was admitted."""


def warm_conversation(turns: int, size: int) -> tuple[str, str]:
    """A conversation whose `turns` long turns this container saved (so it knows them): its token
    and partition."""
    from claude_chat import services

    sessions = services.sessions()
    token = sessions.tokens.issue()
    for number in range(turns):
        planned = sessions.plan_turn(token.token, WINDOW)
        for check in planned.checks:
            assert apply(sessions.store, check)
        saved = sessions.store.save_turn(planned.slot, Turn(f"u{number} " + "x" * size, "y" * size))
        sessions.remember(planned.slot.session_id, saved.state)
    partition = token.session_id
    guess = sessions.guess_turn(token.token, WINDOW)
    assert guess is not None and guess.slot.recent is not None  # warm: its next turn reads nothing
    return token.token, partition


def spend_down_to(aws: Any, left: int) -> None:
    """The caller's token budget for the day, spent but `left`."""
    from claude_chat.admission import day_key
    from claude_chat.settings import get_settings

    budget = get_settings().daily_token_budget
    aws.put_item(
        TableName="claude-chat-test",
        Item={**day_key(f"TB#{CLIENT}", time.time()), "used": {"N": str(budget - left)}, "nusd": {"N": "0"}},
    )


def turn(token: str, message: str = "hi") -> None:
    from claude_chat.caller import Caller
    from claude_chat.chat_turn import TurnRequest, begin_turn
    from claude_chat.deadline import Deadline

    request = TurnRequest(
        Caller(CLIENT, token),
        f'{{"message": "{message}"}}'.encode(),
        with_history=True,
        deadline=Deadline.after(30),
    )
    begin_turn(request)


@pytest.fixture
def claude_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    from claude_chat.claude_client import ClaudeClient

    def reached(*_: Any, **__: Any) -> Any:
        raise Reached()

    monkeypatch.setattr(ClaudeClient, "open_stream", reached)


def test_a_warm_turn_refused_on_a_history_reset_elsewhere_is_priced_on_a_read(
    aws: Any, claude_reached: None
) -> None:
    """The conversation was reset in another container (the history function's DELETE): a read finds
    no history, and the turn fits what is left of the day. Priced on the turns this container still
    knows, it does not; the caller's budget ranks before the conversation's check, so the admission
    says 429 before it says the conversation changed. The turn must be priced on what it sends."""
    from claude_chat import services
    from claude_chat.errors import RateLimited

    token, partition = warm_conversation(turns=4, size=8_000)
    store = services.sessions().store
    store.reset(store.load(partition, 0))  # elsewhere: this container still knows the four turns
    spend_down_to(aws, 5_000)  # a turn with no history: about 1,100 tokens; with these four, 64,000
    try:
        turn(token)
    except RateLimited as refused:
        pytest.fail(f"refused on the history this container knew, not the one it would send: {refused}")
    except Reached:
        pass


def test_a_warm_turn_whose_known_history_holds_is_refused_without_a_second_try(
    aws: Any, claude_reached: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing changed elsewhere: the read finds the same history, and the refusal stands."""
    from claude_chat import services
    from claude_chat.errors import RateLimited

    token, _ = warm_conversation(turns=4, size=8_000)
    spend_down_to(aws, 5_000)
    admitted: list[Any] = []
    admit = services.admission().admit
    monkeypatch.setattr(services.admission(), "admit", lambda *a, **k: admitted.append(a) or admit(*a, **k))
    with pytest.raises(RateLimited) as refused:
        turn(token)
    assert refused.value.limit == "tokens"
    assert len(admitted) == 1  # priced the same on a read: not tried again


class Answer:
    """Claude's stream, answering `text` at once (the transport's side of ClaudeStream)."""

    unanswered = 0

    def __init__(self, text: str) -> None:
        self.reply = text

    def events(self) -> Any:
        from claude_chat.claude_client import Text

        yield Text(self.reply)

    def final(self) -> Any:
        from claude_chat.claude_client import ClaudeReply
        from claude_chat.models import Usage

        return ClaudeReply(self.reply, "end_turn", Usage(input_tokens=10, output_tokens=2))

    def usage_so_far(self, _: int) -> None:
        return None

    def close(self) -> None:
        pass

    def interrupt(self) -> None:
        pass


def test_a_turn_whose_save_failed_leaves_its_conversation_unknown_to_the_container(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A careful save failed after writing its item, and marking the turns changed on META failed too:
    the newest turns this container knew are not what a read finds, so it must not admit on them."""
    from botocore.exceptions import ClientError

    from claude_chat import services
    from claude_chat.caller import Caller
    from claude_chat.chat_turn import TurnRequest, run_turn
    from claude_chat.claude_client import ClaudeClient
    from claude_chat.conversation_store import ConversationStore
    from claude_chat.deadline import Deadline

    token, partition = warm_conversation(turns=2, size=10)
    monkeypatch.setattr(ClaudeClient, "open_stream", lambda *_, **__: Answer("an answer"))

    def throttled(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")

    monkeypatch.setattr(ConversationStore, "_save_at_once", lambda *_, **__: None)  # the careful way
    monkeypatch.setattr(ConversationStore, "_count_turn", throttled)
    monkeypatch.setattr(ConversationStore, "_turns_changed", lambda *_: None)  # failed too
    request = TurnRequest(
        Caller(CLIENT, token), b'{"message": "hi"}', with_history=True, deadline=Deadline.after(30)
    )
    with pytest.raises(ClientError):
        run_turn(request)
    assert partition not in services.sessions()._warm


def test_a_warm_turn_that_saves_nothing_answers_the_title_a_rename_elsewhere_gave(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply with no text saves nothing, and answers the conversation's title as the turn found it:
    renamed in another container (the history function's PATCH), not as this one last knew it."""
    from claude_chat import services
    from claude_chat.caller import Caller
    from claude_chat.chat_turn import TurnRequest, run_turn
    from claude_chat.claude_client import ClaudeClient
    from claude_chat.deadline import Deadline

    token, partition = warm_conversation(turns=2, size=10)
    store = services.sessions().store
    assert store.rename(store.load(partition, 0), "Renamed") is not None
    monkeypatch.setattr(ClaudeClient, "open_stream", lambda *_, **__: Answer(" "))
    request = TurnRequest(
        Caller(CLIENT, token), b'{"message": "hi"}', with_history=True, deadline=Deadline.after(30)
    )
    _, outcome = run_turn(request)
    assert (outcome.turns, outcome.title) == (2, "Renamed")


def test_a_title_claude_wrote_is_known_to_the_container_that_wrote_it(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CLAUDE_TITLES on, the first turn's title is rewritten after its save: the container that
    wrote it knows it, so the conversation's next turn there is still admitted on what it knows."""
    from claude_chat import services
    from claude_chat.caller import Caller
    from claude_chat.chat_turn import TurnRequest, run_turn
    from claude_chat.claude_client import ClaudeClient
    from claude_chat.deadline import Deadline
    from claude_chat.settings import get_settings

    monkeypatch.setenv("CLAUDE_TITLES", "true")
    get_settings.cache_clear()
    try:
        monkeypatch.setattr(ClaudeClient, "open_stream", lambda *_, **__: Answer("Greetings Exchanged"))

        def turn(token: str | None) -> Any:
            request = TurnRequest(
                Caller(CLIENT, token), b'{"message": "hi"}', with_history=True, deadline=Deadline.after(30)
            )
            return run_turn(request)

        first, outcome = turn(None)
        assert outcome.title == "Greetings Exchanged"
        reads: list[Any] = []
        store = services.sessions().store
        plan = store.plan_turn
        monkeypatch.setattr(store, "plan_turn", lambda *a, **k: reads.append(a) or plan(*a, **k))
        _, outcome = turn(first.session.token_string if first.session else None)
        assert (outcome.turns, outcome.title, reads) == (2, "Greetings Exchanged", [])
    finally:
        get_settings.cache_clear()

"""The turn (moto + stand-in): one ending however it ends, stops that cut Claude off at once,
one deadline, slots that keep concurrent turns apart, and resets that win."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from claude_chat import services
from claude_chat.admission import Limits
from claude_chat.caller import Caller
from claude_chat.chat_turn import Turn, TurnRequest, begin_turn, run_turn
from claude_chat.deadline import Deadline
from claude_chat.errors import UpstreamTimeout, UpstreamUnavailable

KEY = "203.0.113.9"


@pytest.fixture
def ready(aws: Any, standin: Any) -> Any:
    httpx.delete(f"{standin.url}/_standin/disconnects")
    return standin


def request(
    message: str,
    token: str | None = None,
    *,
    history: bool = True,
    seconds: float = 10,
    stoppable: bool = False,
    key: str = KEY,
) -> TurnRequest:
    return TurnRequest(
        caller=Caller(key, token),
        body=f'{{"message": "{message}"}}',
        with_history=history,
        deadline=Deadline.after(seconds),
        stoppable=stoppable,
    )


def saved(token: str) -> list[tuple[str, str]]:
    session = services.sessions().open(token)
    return [(t.user, t.assistant) for t in services.sessions().store.all_turns(session.record)]


def token_of(turn: Turn) -> str:
    assert turn.session is not None
    return turn.session.token_string


def used_tokens() -> int:
    return services.admission().day_use(KEY, Limits()).tokens


def test_a_plain_turn_is_a_streamed_turn_read_to_the_end(ready: Any) -> None:
    turn, outcome = run_turn(request("hello"))
    assert outcome.reply.text == "Stand-in reply to: hello"
    assert outcome.turns == 1
    assert saved(token_of(turn)) == [("hello", "Stand-in reply to: hello")]


def test_a_stopped_turn_keeps_the_part_the_user_saw(ready: Any) -> None:
    turn = begin_turn(request("x [standin:words=50][standin:delta_delay=0.01]"))
    seen = ""
    for delta in turn.deltas():
        seen += delta
        if len(seen.split()) == 3:
            turn.stop()
    assert turn.stopped
    assert saved(token_of(turn)) == [("x [standin:words=50][standin:delta_delay=0.01]", seen)]


def test_stop_cuts_claude_off_at_once_not_at_the_next_delta(ready: Any) -> None:
    """8 s between deltas: the stop must end the turn, and the upstream connection, in well under that."""
    turn = begin_turn(request("x [standin:words=5][standin:delta_delay=8]"))
    deltas = turn.deltas()
    first = next(deltas)
    stopped_at = time.monotonic()
    threading.Timer(0.2, turn.stop).start()
    assert list(deltas) == []
    took = time.monotonic() - stopped_at
    assert took < 1.5, f"the turn ended {took:.1f} s after the stop"
    assert saved(token_of(turn)) == [("x [standin:words=5][standin:delta_delay=8]", first)]
    assert httpx.get(f"{ready.url}/_standin/disconnects").json(), "the stand-in saw no disconnect"


def test_a_turn_stopped_before_any_text_saves_nothing(ready: Any) -> None:
    turn = begin_turn(request("hello"))
    turn.stop()
    assert list(turn.deltas()) == []
    assert saved(token_of(turn)) == []


def test_an_abandoned_generator_counts_as_a_stop(ready: Any) -> None:
    turn = begin_turn(request("one two three four"))
    deltas = turn.deltas()
    first = next(deltas)
    deltas.close()
    assert turn.stopped
    assert saved(token_of(turn)) == [("one two three four", first)]


def test_a_stop_while_claude_fails_mid_stream_settles_once_and_saves_nothing_twice(ready: Any) -> None:
    turn = begin_turn(request("x [standin:words=40][standin:fail_after=3][standin:delta_delay=0.05]"))
    reserved = used_tokens()
    deltas = turn.deltas()
    next(deltas)
    turn.stop()
    list(deltas)
    after = used_tokens()
    assert after < reserved, "the reservation was not settled"
    turn._ticket.settle(turn.quote.cost(turn._upstream.usage_so_far(1)))  # a second settle changes nothing
    assert used_tokens() == after
    assert len(saved(token_of(turn))) == 1


def test_a_reply_past_the_deadline_ends_as_a_timeout_before_it(ready: Any) -> None:
    from claude_chat.deadline import ENDING_SECONDS

    seconds = ENDING_SECONDS + 1.0
    started = time.monotonic()
    turn = begin_turn(request("x [standin:words=30][standin:delta_delay=5]", seconds=seconds))
    with pytest.raises(UpstreamTimeout):
        list(turn.deltas())
    assert time.monotonic() - started < seconds - ENDING_SECONDS + 0.8
    assert saved(token_of(turn)) == []
    assert used_tokens() > 0, "the turn's input was not charged"


def test_retries_only_while_they_fit_before_the_deadline(ready: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 with retry-after 30 s cannot be retried in a 10 s invocation: the 503 comes at once;
    a 529 without one is retried, with a short backoff, as often as the settings say."""
    monkeypatch.setenv("CLAUDE_MAX_RETRIES", "2")
    from claude_chat.settings import get_settings

    get_settings.cache_clear()
    services.reset()
    try:
        httpx.delete(f"{ready.url}/_standin/requests")
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable):
            begin_turn(request("x [standin:status=429][standin:retry_after=30]", seconds=10))
        assert time.monotonic() - started < 1.0
        assert len(httpx.get(f"{ready.url}/_standin/requests").json()) == 1
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable):
            begin_turn(request("y [standin:status=529]", seconds=10))
        assert time.monotonic() - started < 3.0
        assert len(httpx.get(f"{ready.url}/_standin/requests").json()) == 1 + 3
    finally:
        get_settings.cache_clear()
        services.reset()


def test_concurrent_turns_of_one_session_are_all_saved_in_the_order_they_were_sent(ready: Any) -> None:
    first, _ = run_turn(request("zero"))
    token = token_of(first)
    # Each from its own address: the request budget (5 in tests) is not what this is about.
    turns = [begin_turn(request(f"message {n}", token, key=f"198.51.100.{n}")) for n in range(20)]

    def finish(turn: Turn) -> None:
        for _ in turn.deltas():
            pass

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(finish, reversed(turns)))  # later turns finish first
    assert [user for user, _ in saved(token)] == ["zero", *(f"message {n}" for n in range(20))]
    assert sorted(t.outcome.turns for t in turns if t.outcome) == list(range(2, 22))


def test_a_reset_wins_over_a_first_turn_in_flight(ready: Any) -> None:
    turn = begin_turn(request("x [standin:words=6][standin:delta_delay=0.05]"))
    deltas = turn.deltas()
    next(deltas)
    session = services.sessions().open(token_of(turn))
    services.sessions().store.reset(session.record)
    list(deltas)
    assert saved(token_of(turn)) == []
    assert turn.outcome is not None
    assert turn.outcome.turns == 0


def test_a_turn_refused_by_the_request_limit_keeps_no_reservation(ready: Any) -> None:
    from claude_chat.errors import RateLimited

    key = "192.0.2.77"
    for _ in range(5):  # RATE_LIMIT_MAX in tests
        run_turn(request("hi", history=False, key=key))
    used = services.admission().day_use(key, Limits()).tokens
    with pytest.raises(RateLimited):
        begin_turn(request("hi", history=False, key=key))
    time.sleep(0.3)  # a reservation left behind would have landed by now
    assert services.admission().day_use(key, Limits()).tokens == used


def test_claude_titles_a_conversation_once_when_the_operator_asks_and_the_caller_pays(
    ready: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_chat.models import Usage
    from claude_chat.pricing import billed_tokens
    from claude_chat.settings import get_settings

    monkeypatch.setenv("CLAUDE_TITLES", "true")
    get_settings.cache_clear()
    try:
        httpx.delete(f"{ready.url}/_standin/requests")
        _, outcome = run_turn(request("Tell me about the Tagus"))
        calls = httpx.get(f"{ready.url}/_standin/requests").json()
        title_call = calls[-1]["body"]
        assert len(calls) == 2 and title_call["max_tokens"] == 24 and "system" not in title_call
        assert "Tell me about the Tagus" in title_call["messages"][0]["content"]
        assert outcome.title is not None and outcome.title.startswith("Stand-in reply to: Write a title")
        billed = sum(billed_tokens(Usage.model_validate(call["usage"])) for call in calls)
        assert used_tokens() == billed  # the title's tokens too, settled to what they cost
    finally:
        get_settings.cache_clear()


def test_a_stop_before_claudes_first_event_is_charged_the_worst_case(ready: Any) -> None:
    """Claude accepted the request, so it may generate the whole reply unseen: the turn is charged the
    input Claude reported and all of MAX_TOKENS, not 0."""
    key = "192.0.2.60"
    turn = begin_turn(request("slow to start [standin:delta_delay=2]", history=False, key=key))
    turn.stop()  # before any delta: the stream is cut before Claude's first text
    list(turn.deltas())
    charged = services.admission().day_use(key, Limits()).tokens
    assert charged > turn.quote.output_tokens  # the reported input, and the reply's worst case
    assert charged <= turn.quote.worst.tokens


def test_a_retried_timeout_charges_each_attempt_claude_may_have_run(ready: Any, monkeypatch: Any) -> None:
    """A timeout is an attempt Claude may have run and billed unheard: retried, each is charged."""
    from claude_chat.settings import get_settings

    monkeypatch.setenv("CLAUDE_MAX_RETRIES", "1")
    monkeypatch.setenv("CLAUDE_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    services.reset()
    try:
        key = "192.0.2.61"
        with pytest.raises(UpstreamTimeout):
            begin_turn(request("never answers [standin:delay=3]", history=False, key=key, seconds=12))
        worst = (
            services.claude().input_bound(
                services.claude().build_request((), "never answers [standin:delay=3]", conversation=False)
            )
            + get_settings().max_tokens
        )
        assert services.admission().day_use(key, Limits()).tokens == 2 * worst  # both attempts
    finally:
        get_settings.cache_clear()
        services.reset()


def test_a_turn_is_bounded_by_what_claude_billed_for_its_history_not_its_bytes(ready: Any) -> None:
    """The second turn's worst case is the first turn's prompt as billed, its reply and the new message by
    their bytes: under the bytes of the whole prompt for plain English, never under what Claude bills."""
    long_message = " ".join(["plain English words cost about a token for four characters"] * 60)
    first, outcome = run_turn(request(long_message, key="192.0.2.62"))
    second = begin_turn(request("and then?", token_of(first), key="192.0.2.62"))
    claude = services.claude()
    by_bytes = claude.input_bound(
        claude.build_request(second.session.slot.history, "and then?", conversation=True)  # type: ignore[union-attr]
    )
    assert second.quote.input_tokens < by_bytes * 0.75  # the first message counted as Claude billed it
    list(second.deltas())
    assert second.outcome is not None
    usage = second.outcome.reply.usage
    billed_input = usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
    assert billed_input <= second.quote.input_tokens
    assert usage.output_tokens <= second.quote.output_tokens
    assert outcome.reply.usage.input_tokens > 100  # the stand-in billed the long message as tokens, not bytes


def _billed(turn: Turn) -> int:
    from claude_chat.pricing import billed_tokens

    assert turn.outcome is not None
    return billed_tokens(turn.outcome.reply.usage)


def test_a_saved_turn_is_settled_once_in_its_saves_transaction(ready: Any) -> None:
    first, _ = run_turn(request("one"))
    second, _ = run_turn(request("two", token_of(first)))
    assert [user for user, _ in saved(token_of(first))] == ["one", "two"]
    assert used_tokens() == _billed(first) + _billed(second)  # the real cost, not the reservation


def test_a_save_that_goes_the_careful_way_is_settled_once_too(ready: Any) -> None:
    """The conversation was renamed while the reply streamed: the one-call save does not hold, the
    turn is saved the careful way and settled beside it, neither left at its reservation nor
    refunded twice."""
    first, _ = run_turn(request("one"))
    turn = begin_turn(request("two [standin:words=4][standin:delta_delay=0.05]", token_of(first)))
    deltas = turn.deltas()
    next(deltas)
    store = services.sessions().store
    store.rename(services.sessions().open(token_of(first)).record, "Renamed")
    list(deltas)
    assert turn.outcome is not None and turn.outcome.title == "Renamed" and turn.outcome.turns == 2
    assert used_tokens() == _billed(first) + _billed(turn)

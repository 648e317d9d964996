"""The turn pipeline (moto + stand-in): streamed turns stop, keep what was seen, and time out cleanly."""

from __future__ import annotations

import pytest

from claude_chat import services
from claude_chat.errors import UpstreamTimeout


@pytest.fixture
def pipeline(aws, standin):
    return services.chat_pipeline()


def session_turns(session) -> list:
    return services.sessions().store.all_turns(services.sessions().open(session.token_string).record)


def test_a_plain_turn_is_a_streamed_turn_read_to_the_end(pipeline) -> None:
    session = services.sessions().open(None)
    outcome = pipeline.run("hello", session)
    assert outcome.reply.text == "Stand-in reply to: hello"
    assert outcome.turns == 1
    assert [t.assistant for t in session_turns(session)] == ["Stand-in reply to: hello"]


def test_a_stopped_turn_keeps_the_part_the_user_saw(pipeline) -> None:
    session = services.sessions().open(None)
    turn = pipeline.start("x [standin:words=50][standin:delta_delay=0.01]", session)
    seen = ""
    for delta in turn.deltas():
        seen += delta
        if len(seen.split()) == 3:
            turn.stop()
    assert turn.stopped
    [saved] = session_turns(session)
    assert saved.assistant == seen
    assert saved.user == "x [standin:words=50][standin:delta_delay=0.01]"


def test_a_turn_stopped_before_any_text_saves_nothing(pipeline) -> None:
    session = services.sessions().open(None)
    turn = pipeline.start("hello", session)
    turn.stop()
    assert list(turn.deltas()) == []
    assert turn.outcome is None
    assert session_turns(session) == []


def test_a_turn_past_its_time_limit_fails_and_saves_nothing(pipeline) -> None:
    session = services.sessions().open(None)
    turn = pipeline.start("x [standin:words=30][standin:delta_delay=0.05]", session, time_limit=0.3)
    with pytest.raises(UpstreamTimeout):
        for _ in turn.deltas():
            pass
    assert session_turns(session) == []


def test_an_abandoned_generator_counts_as_a_stop(pipeline) -> None:
    session = services.sessions().open(None)
    turn = pipeline.start("one two three four", session)
    deltas = turn.deltas()
    first = next(deltas)
    deltas.close()
    assert turn.stopped
    assert [t.assistant for t in session_turns(session)] == [first]

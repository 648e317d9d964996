"""The bound a conversation's next turn is priced on before its history is read (`Context`).

What Claude billed for the last whole turn bounds the next turn's history only while that history
is the billed turn's prompt and reply, and nothing else. A turn saved beside it (a regenerate or an
edit included, which replaces a turn without changing the count) makes it stale.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from claude_chat.chat_turn import _context_holds, fingerprint
from claude_chat.conversation_store import ConversationStore, Turn, partition_id
from claude_chat.model_choice import ModelCatalog
from claude_chat.settings import get_settings
from tests.unit.test_conversation_store import MAX_AGE, NOW, TTL, take_slot


@pytest.fixture
def store(aws: Any, pool: ThreadPoolExecutor) -> ConversationStore:
    return ConversationStore(
        aws, os.environ["TABLE_NAME"], ttl_seconds=TTL, max_age_seconds=MAX_AGE, pool=pool
    )


def test_a_regenerate_saved_beside_another_turn_leaves_no_bound_that_misses_it(
    store: ConversationStore,
) -> None:
    settings = get_settings()
    model = ModelCatalog(settings).default
    billed = fingerprint(model.model_id, settings)
    partition = partition_id("s1", "rg")
    for text in ("one", "two"):
        taken = take_slot(store, partition, NOW, 10, now=NOW)
        assert taken is not None
        store.save_turn(taken, Turn(text, f"re {text}"), now=NOW, billed=(100, billed))
    # Two turns in flight from the same state: a regenerate of "two", and a new turn that sends "two".
    regenerate = take_slot(store, partition, NOW, 10, now=NOW, replace_last=True)
    beside = take_slot(store, partition, NOW, 10, now=NOW)
    assert regenerate is not None and beside is not None
    long_edit = "a long edit " * 1000
    store.save_turn(regenerate, Turn(long_edit, "re edit"), now=NOW, billed=(3_100, billed))
    # Saved last: what it was billed covers "one", "two" and itself, never the edit.
    store.save_turn(beside, Turn("three", "re three"), now=NOW, billed=(150, billed))

    after = take_slot(store, partition, NOW, 10, now=NOW)
    assert after is not None
    assert long_edit in [turn.user for turn in after.history]
    assert not _context_holds(after, model, settings), "150 billed tokens bound a history holding the edit"


def test_a_bill_under_a_shorter_history_window_does_not_bound_a_longer_one(store: ConversationStore) -> None:
    short = get_settings().model_copy(update={"history_max_messages": 3})  # one past turn sent
    long = get_settings().model_copy(update={"history_max_messages": 21})  # ten
    model = ModelCatalog(short).default
    partition = partition_id("s1", "window")
    for text in ("one", "two", "three"):
        taken = take_slot(store, partition, NOW, short.history_max_turns, now=NOW)
        assert taken is not None and len(taken.history) <= 1
        # What the last turn was billed: its one past turn, its message and its reply.
        store.save_turn(
            taken, Turn(text, f"re {text}"), now=NOW, billed=(40, fingerprint(model.model_id, short))
        )

    # The operator lengthens the window: the next turn sends all three turns, the bill covered two.
    after = take_slot(store, partition, NOW, long.history_max_turns, now=NOW)
    assert after is not None and [turn.user for turn in after.history] == ["one", "two", "three"]
    assert not _context_holds(after, model, long), "a bill of two turns bound a history of three"

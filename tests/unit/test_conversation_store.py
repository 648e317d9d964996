"""Session histories in DynamoDB (moto): atomic turns, no lost messages, constant cost, resets."""

from __future__ import annotations

import os

import pytest

from claude_chat.conversation_store import ConversationStore, SessionRecord, Turn

TTL = 3600
MAX_AGE = 7 * 24 * 3600
NOW = 1_800_000_000


@pytest.fixture
def store(aws) -> ConversationStore:
    return ConversationStore(aws, os.environ["TABLE_NAME"], ttl_seconds=TTL, max_age_seconds=MAX_AGE)


def new_record(session_id: str = "s1") -> SessionRecord:
    return SessionRecord(session_id, issued_at=NOW)


def test_turns_round_trip_in_order(store: ConversationStore) -> None:
    record = new_record()
    for number in range(1, 4):
        assert store.append_turn(record, Turn(f"u{number}", f"a{number}"), now=NOW) == number
        record = store.load("s1", NOW)
    assert record.turns == 3
    assert store.all_turns(record) == [Turn("u1", "a1"), Turn("u2", "a2"), Turn("u3", "a3")]


def test_recent_turns_are_the_newest_whole_turns(store: ConversationStore) -> None:
    record = new_record()
    for number in range(1, 8):
        store.append_turn(record, Turn(f"u{number}", f"a{number}"), now=NOW)
        record = store.load("s1", NOW)
    assert store.recent_turns(record, 3) == [Turn("u5", "a5"), Turn("u6", "a6"), Turn("u7", "a7")]
    assert store.recent_turns(record, 0) == []


def test_a_stale_writer_takes_the_next_slot_and_loses_nothing(store: ConversationStore) -> None:
    """Two turns that read the session at the same moment both land, one after the other."""
    stale = new_record()
    assert store.append_turn(stale, Turn("first", "r1"), now=NOW) == 1
    assert store.append_turn(stale, Turn("second", "r2"), now=NOW) == 2
    stale_again = store.load("s1", NOW)
    store.append_turn(stale_again, Turn("third", "r3"), now=NOW)
    assert store.append_turn(stale_again, Turn("fourth", "r4"), now=NOW) == 4
    record = store.load("s1", NOW)
    assert record.turns == 4
    assert [t.user for t in store.all_turns(record)] == ["first", "second", "third", "fourth"]


def test_each_turn_writes_one_small_item_however_long_the_chat(store: ConversationStore, aws) -> None:
    """A 600 KB conversation is fine: no item grows, so the 400 KB item limit is never near."""
    record = new_record()
    reply = "r" * 3000
    for number in range(200):
        store.append_turn(record, Turn(f"message {number} " + "m" * 3000, reply), now=NOW)
        record = store.load("s1", NOW)
    assert record.turns == 200
    pages = aws.get_paginator("scan").paginate(TableName=os.environ["TABLE_NAME"])
    items = [item for page in pages for item in page["Items"]]
    assert len(items) == 201  # 200 turns + META
    assert max(len(str(item)) for item in items) < 7000
    assert len(store.all_turns(record)) == 200


def test_expiry_is_sliding_on_meta_and_absolute_on_turns(store: ConversationStore, aws) -> None:
    record = new_record()
    store.append_turn(record, Turn("u", "a"), now=NOW + 100)
    loaded = store.load("s1", NOW)
    assert loaded.expires_at == NOW + 100 + TTL
    assert store.is_alive(loaded, NOW + 100 + TTL - 1)
    assert not store.is_alive(loaded, NOW + 100 + TTL)
    store.touch(loaded, now=NOW + 2000)
    assert store.load("s1", NOW).expires_at == NOW + 2000 + TTL
    turn_item = aws.get_item(
        TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": "S#s1"}, "sk": {"S": "T#0000000000#0000000001"}}
    )["Item"]
    assert int(turn_item["expires_at"]["N"]) >= NOW + MAX_AGE


def test_a_session_without_turns_lives_ttl_after_issue(store: ConversationStore) -> None:
    record = store.load("never-written", NOW)
    assert not record.stored
    assert store.is_alive(record, NOW + TTL - 1)
    assert not store.is_alive(record, NOW + TTL + 1)


def test_reset_forgets_everything_and_deletes_the_items(store: ConversationStore, aws) -> None:
    record = new_record()
    for number in range(30):
        store.append_turn(record, Turn(f"u{number}", "a"), now=NOW)
        record = store.load("s1", NOW)
    store.reset(record, now=NOW)
    record = store.load("s1", NOW)
    assert (record.turns, record.generation) == (0, 1)
    assert store.all_turns(record) == []
    remaining = aws.scan(TableName=os.environ["TABLE_NAME"])["Items"]
    assert [item["sk"]["S"] for item in remaining] == ["~META"]
    assert store.append_turn(record, Turn("again", "a"), now=NOW) == 1
    assert store.all_turns(store.load("s1", NOW)) == [Turn("again", "a")]


def test_a_turn_that_races_a_reset_is_forgotten_with_its_conversation(store: ConversationStore) -> None:
    record = new_record()
    store.append_turn(record, Turn("old", "a"), now=NOW)
    before_reset = store.load("s1", NOW)
    store.reset(before_reset, now=NOW)
    assert store.append_turn(before_reset, Turn("late", "a"), now=NOW) == 0
    after = store.load("s1", NOW)
    assert store.all_turns(after) == []
    assert store.append_turn(after, Turn("new chat", "a"), now=NOW) == 1
    assert store.all_turns(store.load("s1", NOW)) == [Turn("new chat", "a")]


def test_sessions_do_not_see_each_other(store: ConversationStore) -> None:
    store.append_turn(new_record("alice"), Turn("secret", "a"), now=NOW)
    bob = store.load("bob", NOW)
    assert store.all_turns(bob) == []
    assert store.recent_turns(bob, 10) == []


def test_the_history_window_moves_in_steps_so_the_prompt_cache_keeps_hitting() -> None:
    from claude_chat.chat_turn import turns_to_send

    assert [turns_to_send(n, 9) for n in range(10)] == list(range(10))
    sent = {n: turns_to_send(n, 9) for n in range(10, 40)}
    assert all(5 <= count <= 9 for count in sent.values())
    starts = [n - count for n, count in sent.items()]
    assert len(set(starts)) <= 7  # the start changes once every 5 turns, not every turn
    assert turns_to_send(50, 0) == 0
    assert turns_to_send(3, 1) == 1

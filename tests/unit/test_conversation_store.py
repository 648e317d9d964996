"""Conversations in DynamoDB (moto): slots at start, no lost messages, constant cost, resets, the list.

A turn's slot is planned by a read (`plan_turn`) and taken by its admission, which applies the store's
check in the same transaction as the budgets (claude_chat.admission); `take_slot` below does both,
as a turn does.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from claude_chat.admission import Check
from claude_chat.conversation_store import (
    CarefulSaveFailed,
    Context,
    ConversationStore,
    ConversationSummary,
    Known,
    NumberedTurn,
    Recent,
    Saved,
    SessionRecord,
    Slot,
    Turn,
    conversation_of,
    known,
    owner_of,
    partition_id,
    turns_to_send,
)

TTL = 3600
MAX_AGE = 7 * 24 * 3600
NOW = 1_800_000_000


@pytest.fixture
def store(aws: Any, pool: ThreadPoolExecutor) -> ConversationStore:
    return ConversationStore(
        aws, os.environ["TABLE_NAME"], ttl_seconds=TTL, max_age_seconds=MAX_AGE, pool=pool
    )


_TICKS = itertools.count()  # turns sent one after another start at later times, a microsecond apart


def apply(store: ConversationStore, check: Check) -> bool:
    """Applies an admission check as the admission transaction does; False when its condition fails."""
    kind, body = next(iter(check.item.items()))
    try:
        store._db.transact_write_items(
            TransactItems=[{kind: {**body, "TableName": os.environ["TABLE_NAME"]}}]
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        return False
    return True


def take_slot(
    store: ConversationStore, session_id: str, issued_at: int, history: int, now: float, **options: Any
) -> Slot | None:
    now += next(_TICKS) / 1_000_000
    planned = store.plan_turn(session_id, issued_at, history, now=now, **options)
    if planned is not None:
        assert apply(store, store.check(planned, now))
    return planned


def slot(store: ConversationStore, session_id: str = "s1", history: int = 10, now: int = NOW) -> Slot:
    taken = take_slot(store, session_id, NOW, history, now=now)
    assert taken is not None
    return taken


def say(store: ConversationStore, text: str, session_id: str = "s1", now: int = NOW) -> int:
    taken = slot(store, session_id, now=now)
    return store.save_turn(taken, Turn(text, f"re {text}"), now=now, title=text).turns


def users(store: ConversationStore, session_id: str = "s1") -> list[str]:
    return [turn.user for turn in store.all_turns(store.load(session_id, NOW))]


def test_turns_round_trip_in_order(store: ConversationStore) -> None:
    assert [say(store, f"u{n}") for n in range(1, 4)] == [1, 2, 3]
    record = store.load("s1", NOW)
    assert record.turns == 3
    assert store.all_turns(record) == [Turn("u1", "re u1"), Turn("u2", "re u2"), Turn("u3", "re u3")]


def test_a_slot_carries_the_newest_whole_turns_before_it(store: ConversationStore) -> None:
    for n in range(1, 8):
        say(store, f"u{n}")
    taken = slot(store, history=3)
    assert [turn.user for turn in taken.history] == turns_window(7, 3)
    assert slot(store, history=0).history == ()


def turns_window(completed: int, window: int) -> list[str]:
    count = turns_to_send(completed, window)
    return [f"u{n}" for n in range(completed - count + 1, completed + 1)]


def test_turns_are_kept_in_the_order_they_were_sent_whichever_finishes_first(
    store: ConversationStore,
) -> None:
    first, second, third = (slot(store) for _ in range(3))
    assert third.number > second.number > first.number
    store.save_turn(third, Turn("third", "r"), now=NOW)
    store.save_turn(first, Turn("first", "r"), now=NOW)
    # `second` failed: its slot stays empty, and nothing else moves.
    assert users(store) == ["first", "third"]
    assert store.load("s1", NOW).turns == 2
    later = slot(store)
    assert [turn.user for turn in later.history] == ["first", "third"]


def test_each_turn_writes_one_small_item_however_long_the_chat(store: ConversationStore, aws: Any) -> None:
    """A 480 KB conversation is fine: no item grows, so the 400 KB item limit is never near. (80
    turns: make mutation runs this test for hundreds of mutants, and 200 took a few seconds each.)"""
    reply = "r" * 3000
    for number in range(80):
        store.save_turn(slot(store, history=0), Turn(f"message {number} " + "m" * 3000, reply), now=NOW)
    assert store.load("s1", NOW).turns == 80
    pages = aws.get_paginator("scan").paginate(TableName=os.environ["TABLE_NAME"])
    items = [item for page in pages for item in page["Items"]]
    assert len(items) == 81  # 80 turns + META
    assert sum(len(str(item)) for item in items) > 400 * 1024
    assert max(len(str(item)) for item in items) < 7000
    assert len(users(store)) == 80


def test_expiry_is_sliding_on_meta_and_absolute_on_turns(store: ConversationStore, aws: Any) -> None:
    say(store, "u", now=NOW + 100)
    loaded = store.load("s1", NOW)
    assert loaded.expires_at == NOW + 100 + TTL
    assert store.is_alive(loaded, NOW + 100 + TTL - 1)
    assert not store.is_alive(loaded, NOW + 100 + TTL)
    store.touch(loaded, now=NOW + 2000)
    assert store.load("s1", NOW).expires_at == NOW + 2000 + TTL
    generation = store.load("s1", NOW).generation
    (turn_item,) = aws.query(
        TableName=os.environ["TABLE_NAME"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :turns)",
        ExpressionAttributeValues={":pk": {"S": "S#s1"}, ":turns": {"S": f"T#{generation:010d}#"}},
    )["Items"]
    assert int(turn_item["expires_at"]["N"]) >= NOW + MAX_AGE


def test_an_expired_session_takes_no_slot(store: ConversationStore) -> None:
    say(store, "u", now=NOW)
    assert take_slot(store, "s1", NOW, 10, now=NOW + TTL + 1) is None
    assert take_slot(store, "never-written", NOW, 10, now=NOW + TTL + 1) is None
    assert take_slot(store, "never-written", NOW, 10, now=NOW + TTL - 1) is not None


def test_a_session_without_turns_lives_ttl_after_issue(store: ConversationStore) -> None:
    record = store.load("never-written", NOW)
    assert not record.stored
    assert store.is_alive(record, NOW + TTL - 1)
    assert not store.is_alive(record, NOW + TTL + 1)


def test_reset_forgets_everything_and_deletes_the_items(store: ConversationStore, aws: Any) -> None:
    for number in range(30):
        say(store, f"u{number}")
    first = store.load("s1", NOW).generation
    store.reset(store.load("s1", NOW), now=NOW)
    record = store.load("s1", NOW)
    assert (record.turns, record.generation) == (0, first + 1)
    assert store.all_turns(record) == []
    remaining = aws.scan(TableName=os.environ["TABLE_NAME"])["Items"]
    assert [item["sk"]["S"] for item in remaining] == ["~META"]
    assert say(store, "again") == 1
    assert users(store) == ["again"]


def test_a_turn_in_flight_loses_to_a_reset_even_the_first_turn(store: ConversationStore, aws: Any) -> None:
    in_flight = slot(store)  # the session's very first turn: META exists only from its slot
    store.reset(store.load("s1", NOW), now=NOW)
    assert store.save_turn(in_flight, Turn("late", "a"), now=NOW).turns == 0
    assert users(store) == []
    remaining = aws.scan(TableName=os.environ["TABLE_NAME"])["Items"]
    assert [item["sk"]["S"] for item in remaining] == ["~META"], "the late turn's item was left behind"
    assert say(store, "new chat") == 1
    assert users(store) == ["new chat"]


def test_a_reset_of_a_session_with_no_meta_still_dooms_what_comes_before_it(store: ConversationStore) -> None:
    store.reset(store.load("fresh", NOW), now=NOW)
    assert store.load("fresh", NOW).stored
    assert say(store, "after the reset", session_id="fresh") == 1


def test_sessions_written_before_slots_continue_after_their_turns(store: ConversationStore, aws: Any) -> None:
    table = os.environ["TABLE_NAME"]
    aws.put_item(
        TableName=table,
        Item={"pk": {"S": "S#old"}, "sk": {"S": "~META"}, "gen": {"N": "0"}, "turns": {"N": "2"},
              "expires_at": {"N": str(NOW + TTL)}},
    )  # fmt: skip
    for number in (1, 2):
        aws.put_item(
            TableName=table,
            Item={"pk": {"S": "S#old"}, "sk": {"S": f"T#0000000000#{number:010d}"},
                  "user": {"S": f"u{number}"}, "assistant": {"S": "a"}},
        )  # fmt: skip
    taken = slot(store, "old")
    assert taken.number > 2  # a time: after every number of the old scheme
    assert [turn.user for turn in taken.history] == ["u1", "u2"]
    assert store.save_turn(taken, Turn("u3", "a"), now=NOW).turns == 3
    assert users(store, "old") == ["u1", "u2", "u3"]


def test_sessions_do_not_see_each_other(store: ConversationStore) -> None:
    say(store, "secret", session_id="alice")
    assert store.all_turns(store.load("bob", NOW)) == []
    assert slot(store, "bob").history == ()


def test_the_history_window_moves_in_steps_so_the_prompt_cache_keeps_hitting() -> None:
    assert [turns_to_send(n, 9) for n in range(10)] == list(range(10))
    sent = {n: turns_to_send(n, 9) for n in range(10, 40)}
    assert all(5 <= count <= 9 for count in sent.values())
    starts = [n - count for n, count in sent.items()]
    assert len(set(starts)) <= 7  # the start changes once every 5 turns, not every turn
    assert turns_to_send(50, 0) == 0
    assert turns_to_send(3, 1) == 1


def test_a_conversation_created_again_after_ttl_never_reuses_old_turn_keys(
    store: ConversationStore, aws: Any
) -> None:
    """A signed-in user's conversation keeps its id: if TTL removed META but not yet every turn item,
    the new META's generation (from the clock) keeps the old items out of it."""
    table = os.environ["TABLE_NAME"]
    say(store, "long ago", now=NOW)
    aws.delete_item(TableName=table, Key={"pk": {"S": "S#s1"}, "sk": {"S": "~META"}})  # what TTL does
    assert say(store, "today", now=NOW + 10) == 1
    assert users(store) == ["today"]


# --------------------------------------------------------------------------- many conversations


def test_the_list_is_newest_first_and_only_of_saved_conversations(store: ConversationStore) -> None:
    for offset, conversation in enumerate(["a", "b", "c"]):
        say(store, f"first of {conversation}", partition_id("s1", conversation), now=NOW + offset)
    take_slot(store, partition_id("s1", "in-flight"), NOW, 10, now=NOW + 5)  # a slot, nothing saved
    say(store, "again", partition_id("s1", "a"), now=NOW + 9)
    say(store, "someone else's", partition_id("s2", "z"), now=NOW + 10)
    found, more = store.conversations("s1", limit=10)
    assert [(c.id, c.turns, c.title) for c in found] == [
        ("a", 2, "first of a"),
        ("c", 1, "first of c"),
        ("b", 1, "first of b"),
    ]
    assert more is None
    page, after = store.conversations("s1", limit=2)
    assert [c.id for c in page] == ["a", "c"] and after == (page[-1].updated_at, "c")
    rest, end = store.conversations("s1", limit=2, after=after)
    assert [c.id for c in rest] == ["b"] and end is None


def test_updated_at_never_goes_back_and_a_rename_outlives_turns(store: ConversationStore) -> None:
    partition = partition_id("s1", "x")
    early, late = slot(store, partition), slot(store, partition)
    store.save_turn(late, Turn("late", "r"), now=NOW + 20)
    store.save_turn(early, Turn("early", "r"), now=NOW + 10)  # finishes last, began first
    record = store.load(partition, NOW)
    assert (record.turns, record.updated_at, record.title) == (2, (NOW + 20) * 1000, "New chat")
    renamed = store.rename(record, "Mine")
    assert renamed is not None and renamed.title == "Mine"
    store.save_turn(slot(store, partition), Turn("more", "r"), now=NOW + 30, title="automatic")
    assert store.load(partition, NOW).title == "Mine"


def test_a_delete_is_final_for_a_first_turn_in_flight(store: ConversationStore) -> None:
    partition = partition_id("s1", "gone")
    in_flight = slot(store, partition)
    record = store.load(partition, NOW)
    assert not store.reset(record, must_exist=True)  # not listed yet: nothing to say was deleted
    assert store.save_turn(in_flight, Turn("late", "r"), now=NOW, title="late").turns == 0
    assert store.all_turns(store.load(partition, NOW)) == []
    assert store.conversations("s1", limit=10) == ([], None)
    assert not store.reset(store.load(partition_id("s1", "never"), NOW), must_exist=True)
    assert store.load(partition_id("s1", "never"), NOW).stored is False  # and nothing was written
    say(store, "listed", partition_id("s1", "kept"))
    assert store.reset(store.load(partition_id("s1", "kept"), NOW), must_exist=True)


def test_replace_last_leaves_the_old_turn_out_and_deletes_it_once(store: ConversationStore) -> None:
    partition = partition_id("s1", "r")
    store.save_turn(slot(store, partition), Turn("one", "r1"), now=NOW, title="one")
    store.save_turn(slot(store, partition), Turn("two", "r2"), now=NOW)
    first = take_slot(store, partition, NOW, 10, now=NOW, replace_last=True)
    second = take_slot(store, partition, NOW, 10, now=NOW, replace_last=True)
    assert first is not None and second is not None
    assert [t.user for t in first.history] == ["one"] and first.replaces == second.replaces
    assert store.save_turn(first, Turn("two again", "r"), now=NOW).turns == 2
    # The second replacement found its turn already gone: it counts as a turn of its own.
    assert store.save_turn(second, Turn("two once more", "r"), now=NOW).turns == 3
    assert users(store, partition) == ["one", "two again", "two once more"]


def test_a_turn_elsewhere_slides_the_session_and_fails_once_it_expired(store: ConversationStore) -> None:
    assert apply(store, store.session_check("s1", NOW, now=NOW))
    assert store.load("s1", NOW).expires_at == NOW + TTL
    assert apply(store, store.session_check("s1", NOW, now=NOW + TTL - 1))
    assert not apply(store, store.session_check("s1", NOW, now=NOW + 2 * TTL))


def test_a_title_from_the_first_message_shows_what_it_says() -> None:
    from claude_chat.titles import title_from

    assert title_from("  # Plan a **trip**\nmore") == "Plan a trip"
    assert title_from("\u0007bell \u202eevil\u0000nul") == "bell evil nul"
    assert title_from("", "Claude's first line") == "Claude's first line"
    long = title_from("word " * 40)
    assert len(long) <= 61 and long.endswith("…") and " " not in long[-2:]


# --------------------------------------------------------------------------- what a save and a read tell

TABLE = os.environ["TABLE_NAME"]
ABSOLUTE = NOW + MAX_AGE + 86_400  # a session issued at NOW: its turns' deadline, and its other METAs'


def meta_of(aws: Any, session_id: str) -> dict[str, Any]:
    """META as stored (empty when there is none)."""
    key = {"pk": {"S": f"S#{session_id}"}, "sk": {"S": "~META"}}
    return dict(aws.get_item(TableName=TABLE, Key=key).get("Item", {}))


def items_of(aws: Any, session_id: str) -> list[dict[str, Any]]:
    found = aws.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"S#{session_id}"}},
    )["Items"]
    return list(found)


def test_a_saved_turn_tells_what_its_conversation_holds_and_the_next_turn_reads_it(
    store: ConversationStore, aws: Any
) -> None:
    partition = partition_id("s1", "c")
    first = slot(store, partition)
    saved = store.save_turn(first, Turn("one", "r1"), now=NOW, title="One", model="m1", billed=(120, "fp"))
    billed = Context(120, "fp", 1)
    # Its newest turns are known too: the window (10) and one more, from a conversation known empty.
    one = NumberedTurn(first.number, ABSOLUTE, Turn("one", "r1"))
    assert saved == Saved(
        1, "One", Known(first.generation, 1, billed, 1, "One", Recent(11, (one,), 11)), also_written=True
    )
    second = slot(store, partition)
    assert replace(second, number=0) == Slot(
        partition, NOW, first.generation, 0, 1, (Turn("one", "r1"),), owner="s1", conversation="c",
        title="One", stored=True, context=billed, revision=1, recent=Recent(10, (one,), 11),
    )  # fmt: skip
    assert known(second) == Known(first.generation, 1, billed, 1, "One", Recent(10, (one,), 11))
    # A turn saved with no bill forgets the last one: no stale bound is left on META.
    saved = store.save_turn(second, Turn("two", "r2"), now=NOW + 1, title="Two", model="m2")
    two = NumberedTurn(second.number, ABSOLUTE, Turn("two", "r2"))
    assert saved == Saved(
        2, "One", Known(first.generation, 2, None, 2, "One", Recent(11, (two, one), 11)), also_written=True
    )
    assert store.load(partition, NOW) == SessionRecord(
        partition, NOW, first.generation, 2, ABSOLUTE, stored=True, conversation="c", title="One",
        updated_at=(NOW + 1) * 1000, model="m2",
    )  # fmt: skip
    assert not {"ctx", "ctxfp", "ctxn", "ctxr"} & set(meta_of(aws, partition))
    assert store.conversations("s1", limit=10) == (
        [ConversationSummary("c", "One", 2, (NOW + 1) * 1000, "m2")],
        None,
    )


def test_a_conversation_not_read_yet_is_what_its_id_says_and_nothing_more(store: ConversationStore) -> None:
    assert store.load(partition_id("s1", "c"), NOW) == SessionRecord("s1#c", NOW, conversation="c")
    assert store.load("s1", NOW) == SessionRecord("s1", NOW)
    taken = slot(store, partition_id("s1", "c"))  # META, and no turn saved: not listed, no title
    record = store.load(partition_id("s1", "c"), NOW)
    assert (record.stored, record.turns, record.title, record.updated_at) == (True, 0, None, None)
    assert known(taken) is None
    unread = Recent(1 << 30, (), 11)  # no META: a generation of its own, with no turn in it
    assert known(replace(taken, stored=True)) == Known(taken.generation, 0, None, recent=unread)
    assert not store.is_alive(store.load("never", NOW), NOW + TTL)


def test_metas_written_before_some_attributes_existed_still_read(store: ConversationStore, aws: Any) -> None:
    """A META with no count (or listed with neither count nor `cid`), and a bill with no `ctxr`."""
    aws.put_item(
        TableName=TABLE,
        Item={"pk": {"S": "S#s9#old"}, "sk": {"S": "~META"}, "gen": {"N": "0"}, "owner": {"S": "S#s9"},
              "updated_at": {"N": "5"}, "expires_at": {"N": str(NOW + TTL)}, "rev": {"N": "1"},
              "ctx": {"N": "10"}, "ctxfp": {"S": "fp"}, "ctxn": {"N": "0"}},
    )  # fmt: skip
    assert store.load("s9#old", NOW).turns == 0
    assert store.conversations("s9", limit=10) == ([ConversationSummary("old", "New chat", 0, 5)], None)
    assert take_slot(store, "s9#old", NOW, 10, now=NOW).context is None  # a bill nobody can date is no bound


def test_regenerating_the_first_turn_retitles_the_conversation_and_a_later_one_does_not(
    store: ConversationStore,
) -> None:
    partition = partition_id("s1", "t")
    store.save_turn(slot(store, partition), Turn("hi", "r"), now=NOW, title="First title")
    again = take_slot(store, partition, NOW, 10, now=NOW, replace_last=True)
    assert again is not None and again.replaces is not None and again.history == ()
    assert store.save_turn(again, Turn("hi", "better"), now=NOW, title="Second title").title == "Second title"
    store.save_turn(slot(store, partition), Turn("more", "r"), now=NOW, title="Third title")
    later = take_slot(store, partition, NOW, 10, now=NOW, replace_last=True, replace_only="more")
    assert later is not None and later.replaces is not None
    assert store.save_turn(later, Turn("more", "r2"), now=NOW, title="Fourth title").title == "Second title"
    assert users(store, partition) == ["hi", "more"]


def test_a_turn_saved_but_not_yet_counted_is_not_replaced(store: ConversationStore, aws: Any) -> None:
    """META counts a turn only once its item is written: an item it does not count yet is in flight."""
    partition = partition_id("s1", "f")
    in_flight = slot(store, partition)
    sk = f"T#{in_flight.generation:010d}#{in_flight.number:010d}"
    aws.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"S#{partition}"},
            "sk": {"S": sk},
            "user": {"S": "in flight"},
            "assistant": {"S": "r"},
        },
    )
    planned = take_slot(store, partition, NOW, 10, now=NOW, replace_last=True)
    assert planned is not None and planned.replaces is None


def test_the_history_sent_is_the_window_of_whole_turns_before_the_one_replaced(
    store: ConversationStore,
) -> None:
    for number in range(1, 9):
        say(store, f"u{number}")
    assert [turn.user for turn in slot(store, history=3).history] == turns_window(8, 3) == ["u7", "u8"]
    replacing = take_slot(store, "s1", NOW, 5, now=NOW, replace_last=True)
    assert replacing is not None and replacing.replaces is not None
    assert [turn.user for turn in replacing.history] == turns_window(7, 5) == ["u4", "u5", "u6", "u7"]


def test_an_even_window_starts_again_every_half_window() -> None:
    assert [turns_to_send(n, 4) for n in range(4, 12)] == [4, 3, 4, 3, 4, 3, 4, 3]


def test_only_an_anonymous_default_conversation_ends_with_its_idle_expiry(store: ConversationStore) -> None:
    """Another conversation's turn is checked against the session's expiry (session_check), and a
    signed-in user's conversation has none: neither is refused by its own META's expiry here."""
    say(store, "u", partition_id("s1", "c"))
    past_its_meta = ABSOLUTE + 1
    assert store.plan_turn(partition_id("s1", "c"), NOW, 10, now=past_its_meta) is not None
    say(store, "u", "s2")
    assert store.plan_turn("s2", NOW, 10, now=NOW + TTL + 1, lasting=True) is not None
    assert store.plan_turn("s2", NOW, 10, now=NOW + TTL + 1) is None


def test_a_turn_planned_without_a_time_is_planned_at_the_clocks(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    say(store, "u")
    monkeypatch.setattr(time, "time", lambda: NOW + TTL + 1)
    assert store.plan_turn("s1", NOW, 10) is None  # its idle expiry passed


def test_a_signed_in_users_conversation_lasts_from_each_turn(store: ConversationStore, aws: Any) -> None:
    """A signed-in user's META and turns count from the turn, not from a session's issue; an anonymous
    caller's turns keep the session's deadline however late they are saved."""
    partition = partition_id("u:1", "c")
    taken = take_slot(store, partition, NOW, 10, now=NOW + 10, lasting=True)
    assert taken is not None and taken.lasting
    store.save_turn(taken, Turn("a", "r"), now=NOW + 50.5)
    assert int(meta_of(aws, partition)["expires_at"]["N"]) == NOW + 51 + MAX_AGE
    (turn,) = [item for item in items_of(aws, partition) if item["sk"]["S"] != "~META"]
    assert (turn["created_at"], turn["expires_at"]) == (
        {"N": str(NOW + 50)},
        {"N": str(NOW + 50 + MAX_AGE + 86_400)},
    )
    store.save_turn(slot(store, "s3"), Turn("b", "r"), now=NOW + 50.5)
    (turn,) = [item for item in items_of(aws, "s3") if item["sk"]["S"] != "~META"]
    assert turn["expires_at"] == {"N": str(ABSOLUTE)}


class PutsFail(Executor):
    """A pool whose every call fails as a throttled write that ran out of retries."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        failed: Future[Any] = Future()
        failed.set_exception(
            ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "PutItem"
            )
        )
        return failed


class Later(Executor):
    """A pool that runs a call only when its result is asked for, or at `run_all`: a slow write."""

    def __init__(self) -> None:
        self.pending: list[tuple[Future[Any], Callable[[], Any]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        later = self

        class Deferred(Future[Any]):
            def result(self, timeout: float | None = None) -> Any:
                later.run(self)
                return super().result(timeout)

        future = Deferred()
        self.pending.append((future, lambda: fn(*args, **kwargs)))
        return future

    def run(self, future: Future[Any]) -> None:
        for index, (waiting, call) in enumerate(self.pending):
            if waiting is future:
                del self.pending[index]
                try:
                    future.set_result(call())
                except Exception as error:  # the future carries it
                    future.set_exception(error)
                return

    def run_all(self) -> None:
        while self.pending:
            self.run(self.pending[0][0])


def test_a_turn_whose_item_is_not_written_leaves_the_count_as_the_items_are(
    store: ConversationStore, aws: Any
) -> None:
    """The item's write failed after META counted it: the count is taken back. A regenerate had
    deleted the turn it replaces first, so the conversation is one turn shorter, and so is its count."""
    partition = partition_id("s1", "p")
    for text in ("one", "two"):
        store.save_turn(slot(store, partition), Turn(text, "r"), now=NOW)
    failing = ConversationStore(aws, TABLE, ttl_seconds=TTL, max_age_seconds=MAX_AGE, pool=PutsFail())
    third = slot(store, partition)
    store.rename(store.load(partition, NOW), "Renamed")  # META changed since: saved the careful way
    with pytest.raises(CarefulSaveFailed) as failed:
        failing.save_turn(third, Turn("three", "r"), now=NOW)
    assert isinstance(failed.value.error, ClientError)
    assert (store.load(partition, NOW).turns, users(store, partition)) == (2, ["one", "two"])
    regenerate = take_slot(store, partition, NOW, 10, now=NOW, replace_last=True)
    assert regenerate is not None
    with pytest.raises(CarefulSaveFailed):
        failing.save_turn(regenerate, Turn("two again", "r"), now=NOW)
    assert (store.load(partition, NOW).turns, users(store, partition)) == (1, ["one"])


def test_a_turn_saved_twice_in_one_slot_is_refused_the_second_time(store: ConversationStore) -> None:
    partition = partition_id("s1", "twice")
    taken = slot(store, partition)
    store.save_turn(taken, Turn("once", "r"), now=NOW)
    with pytest.raises(CarefulSaveFailed) as twice:  # META moved on: the careful way, whose put is refused
        store.save_turn(taken, Turn("twice", "r"), now=NOW)
    assert isinstance(twice.value.error, ClientError)
    assert twice.value.error.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert (store.load(partition, NOW).turns, users(store, partition)) == (1, ["once"])


def test_a_turn_that_loses_to_a_reset_answers_with_what_came_after_and_leaves_nothing(
    store: ConversationStore, aws: Any
) -> None:
    partition = partition_id("s1", "lost")
    late = slot(store, partition)
    store.reset(store.load(partition, NOW), now=NOW)
    say(store, "after the reset", partition)
    assert store.save_turn(late, Turn("late", "r"), now=NOW, title="late") == Saved(1)
    assert users(store, partition) == ["after the reset"]
    # META gone too (TTL took it) while a turn was in flight: nothing to count, nothing left behind.
    gone = slot(store, partition_id("s1", "gone"))
    aws.delete_item(TableName=TABLE, Key={"pk": {"S": "S#s1#gone"}, "sk": {"S": "~META"}})
    assert store.save_turn(gone, Turn("late", "r"), now=NOW) == Saved(0)
    assert items_of(aws, partition_id("s1", "gone")) == []


def test_a_lost_turns_item_is_deleted_only_once_its_write_is_done_or_failed(
    store: ConversationStore, aws: Any
) -> None:
    """The item's write may still be on its way when the reset's news comes back: the turn waits
    for it before deleting it, and a write that failed is nothing to delete."""
    later = Later()
    slow = ConversationStore(aws, TABLE, ttl_seconds=TTL, max_age_seconds=MAX_AGE, pool=later)
    partition = partition_id("s1", "slow")
    late = slot(store, partition)
    store.reset(store.load(partition, NOW), now=NOW)
    assert slow.save_turn(late, Turn("late", "r"), now=NOW) == Saved(0)
    later.run_all()
    assert [item["sk"]["S"] for item in items_of(aws, partition)] == ["~META"]
    failing = ConversationStore(aws, TABLE, ttl_seconds=TTL, max_age_seconds=MAX_AGE, pool=PutsFail())
    late = slot(store, partition)
    store.reset(store.load(partition, NOW), now=NOW)
    assert failing.save_turn(late, Turn("late", "r"), now=NOW) == Saved(0)


def test_a_reset_starts_a_generation_from_the_clock_or_the_next_and_keeps_no_listing(
    store: ConversationStore, aws: Any
) -> None:
    assert store.reset(store.load("fresh", NOW), now=NOW + 5.5) is False
    record = store.load("fresh", NOW)
    assert (record.generation, record.expires_at) == (NOW + 5, NOW + 6 + TTL)
    partition = partition_id("s1", "listed")
    store.save_turn(slot(store, partition), Turn("x", "r"), now=NOW, title="x")
    store.rename(store.load(partition, NOW), "Mine")
    generation = store.load(partition, NOW).generation
    assert store.reset(store.load(partition, NOW), now=NOW) is True
    meta = meta_of(aws, partition)
    assert set(meta) == {"pk", "sk", "gen", "turns", "expires_at", "rev"}
    assert (meta["gen"], meta["turns"], meta["expires_at"]) == (
        {"N": str(generation + 1)},
        {"N": "0"},
        {"N": str(ABSOLUTE)},
    )
    store.reset(store.load(partition_id("u:1", "c"), NOW), now=NOW, lasting=True)
    assert int(meta_of(aws, partition_id("u:1", "c"))["expires_at"]["N"]) == NOW + MAX_AGE


def test_touch_slides_the_expiry_from_now_and_never_brings_a_meta_back(
    store: ConversationStore, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    say(store, "u")
    record = store.load("s1", NOW)
    monkeypatch.setattr(time, "time", lambda: NOW + 100.5)
    store.touch(record)
    assert store.load("s1", NOW).expires_at == NOW + 101 + TTL
    store.touch(record, now=NOW + 200, lasting=True)
    assert store.load("s1", NOW).expires_at == NOW + 200 + MAX_AGE
    aws.delete_item(TableName=TABLE, Key={"pk": {"S": "S#s1"}, "sk": {"S": "~META"}})
    store.touch(record, now=NOW + 300)
    assert meta_of(aws, "s1") == {}


def test_only_a_listed_conversation_can_be_renamed(store: ConversationStore, aws: Any) -> None:
    partition = partition_id("s1", "unlisted")
    slot(store, partition)
    assert store.rename(store.load(partition, NOW), "Mine") is None
    assert "title" not in meta_of(aws, partition)


def test_a_better_title_replaces_only_the_automatic_one_its_turn_wrote(store: ConversationStore) -> None:
    partition = partition_id("s1", "titled")
    taken = slot(store, partition)
    store.save_turn(taken, Turn("hi", "r"), now=NOW, title="hi")
    assert store.retitle(taken, "hi", "Greeting") is True
    assert store.load(partition, NOW).title == "Greeting"
    assert store.retitle(taken, "hi", "Other") is False  # not the title it wrote any more
    store.reset(store.load(partition, NOW), now=NOW)
    store.save_turn(slot(store, partition), Turn("hi", "r"), now=NOW, title="hi")
    assert store.retitle(taken, "hi", "Stale") is False  # a turn of a generation since reset
    assert store.load(partition, NOW).title == "hi"


def test_a_page_of_the_list_ends_where_the_next_begins(store: ConversationStore) -> None:
    for offset, conversation in enumerate("abcd"):
        say(store, conversation, partition_id("s1", conversation), now=NOW + offset)
    page, after = store.conversations("s1", limit=3)
    assert [c.id for c in page] == ["d", "c", "b"] and after == ((NOW + 1) * 1000, "b")
    assert [c.id for c in store.conversations("s1", limit=3, after=after)[0]] == ["a"]


def test_a_first_slot_and_a_known_slot_need_no_read(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slot's number is its start in microseconds and three random digits."""
    asked: list[int] = []
    monkeypatch.setattr(secrets, "randbelow", lambda below: asked.append(below) or 7)
    monkeypatch.setattr(time, "time", lambda: NOW + 0.25)
    number = (NOW * 1_000_000 + 250_000) * 1000 + 7
    assert store.first_slot("s1#c", NOW) == Slot("s1#c", NOW, NOW, number, 0, owner="s1", conversation="c")
    assert store.first_slot("s1", NOW, NOW + 1.5).number == (NOW * 1_000_000 + 1_500_000) * 1000 + 7
    assert store.first_slot("s1", NOW, NOW, max_history_turns=4).recent == Recent(1 << 30, (), 5)
    state = Known(5, 3, Context(100, "fp", 3), 4, "T")
    assert store.known_slot("s1#c", NOW, state, NOW + 0.25, lasting=True, max_history_turns=10) == Slot(
        "s1#c", NOW, 5, number, 3, (), True, owner="s1", conversation="c", stored=True, context=state.context,
        revision=4,
    )  # fmt: skip
    assert asked == [1000, 1000, 1000, 1000]


def test_a_partition_is_the_owners_own_for_the_default_conversation() -> None:
    assert partition_id("o", "default") == "o" and partition_id("o", "c") == "o#c"
    assert (owner_of("o"), conversation_of("o")) == ("o", "default")
    assert (owner_of("o#c"), conversation_of("o#c")) == ("o", "c")


# -- a turn's files ---------------------------------------------------------------------------------


def attachment(attachment_id: str, name: str = "cat.png") -> Any:
    from claude_chat.attachments import Attachment

    return Attachment(attachment_id, name, "image/png", 1234, 1_616, 1_600, "0" * 64)


def test_a_turns_files_are_saved_by_reference_and_read_back_with_it(store: ConversationStore) -> None:
    files = (attachment("a" * 22, "chat café.png"), attachment("b" * 22))
    taken = slot(store)
    store.save_turn(taken, Turn("look", "a cat", attachments=files), now=NOW)
    say(store, "and now?")
    record = store.load("s1", NOW)
    assert store.all_turns(record) == [
        Turn("look", "a cat", attachments=files),
        Turn("and now?", "re and now?"),
    ]
    assert [turn.attachments for turn in slot(store).history] == [files, ()]
    assert store.history_page(record, 10, 10**9).turns[0].attachments == files


def forgetting(store: ConversationStore, failure: Exception | None = None) -> list[tuple[str, list[str]]]:
    """The store, wired to record the files each reset asks to delete (and fail with `failure`)."""
    asked: list[tuple[str, list[str]]] = []

    def forget(owner: str, attachment_ids: list[str]) -> None:
        asked.append((owner, attachment_ids))
        if failure is not None:
            raise failure

    store._forget_files = forget
    return asked


def test_a_reset_deletes_the_conversations_files_under_their_owner(
    aws: Any, pool: ThreadPoolExecutor
) -> None:
    asked: list[tuple[str, list[str]]] = []
    store = ConversationStore(
        aws,
        os.environ["TABLE_NAME"],
        ttl_seconds=TTL,
        max_age_seconds=MAX_AGE,
        pool=pool,
        forget_files=lambda owner, ids: asked.append((owner, ids)),
    )
    partition = partition_id("s1", "trip")
    for files in ((attachment("a" * 22),), (), (attachment("b" * 22), attachment("c" * 22))):
        store.save_turn(slot(store, partition), Turn("u", "a", attachments=files), now=NOW)
    assert store.reset(store.load(partition, NOW), now=NOW + 1)
    assert asked == [("s1", ["a" * 22, "b" * 22, "c" * 22])]  # the owner's, not the partition's
    assert store.all_turns(store.load(partition, NOW)) == []


def test_a_reset_of_a_conversation_without_files_deletes_none(store: ConversationStore) -> None:
    asked = forgetting(store)
    say(store, "no files here")
    assert store.reset(store.load("s1", NOW), now=NOW + 1)
    assert asked == []


def test_a_reset_stands_when_its_files_cannot_be_deleted_and_says_so_in_the_log(
    store: ConversationStore, caplog: pytest.LogCaptureFixture
) -> None:
    asked = forgetting(store, failure=RuntimeError("the bucket is away"))
    store.save_turn(slot(store), Turn("u", "a", attachments=(attachment("a" * 22),)), now=NOW)
    with caplog.at_level("ERROR", logger="claude_chat.conversation_store"):
        assert store.reset(store.load("s1", NOW), now=NOW + 1)
    assert asked == [("s1", ["a" * 22])]
    assert store.all_turns(store.load("s1", NOW)) == []  # the reset stood
    (logged,) = [r for r in caplog.records if r.name == "claude_chat.conversation_store"]
    assert logged.getMessage() == "could not delete a conversation's attachments"
    assert logged.exc_info is not None and str(logged.exc_info[1]) == "the bucket is away"


def test_a_turn_saved_the_careful_way_knows_what_it_was_billed_as_the_next_turn_reads_it(
    store: ConversationStore,
) -> None:
    store.save_turn(slot(store), Turn("one", "r1"), now=NOW, billed=(100, "fp"))
    regenerate = take_slot(store, "s1", NOW, 10, now=NOW, replace_last=True)
    assert regenerate is not None
    saved = store.save_turn(regenerate, Turn("one", "r1 again"), now=NOW, billed=(120, "fp"))
    assert not saved.also_written  # a turn that replaces another is saved the careful way
    assert saved.state is not None and saved.state.context == Context(120, "fp", 1)
    read = known(slot(store))
    assert read is not None and replace(saved.state, recent=None) == replace(read, recent=None)
    # Its newest turns as a read finds them (the read's depth is its window; the save's one more).
    assert saved.state.recent is not None and read.recent is not None
    assert saved.state.recent.turns == read.recent.turns

"""A turn's save in one transaction (the item, META's count and what the caller adds, such as the
budgets' settlement), on condition that META is as the turn read it; else the careful save.

The state a one-call save returns is worked out, not read: these tests compare it with what a read
of META finds, and show each change since the read (a save, a rename, a retitle, a reset) sends the
save the careful way, with the added actions left to the caller and nothing written twice.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from claude_chat.conversation_store import ConversationStore, Known, Slot, Turn
from tests.unit.test_conversation_store import MAX_AGE, NOW, TTL, take_slot

COUNTER = {"pk": {"S": "TB#test"}, "sk": {"S": "D#test"}}


@pytest.fixture
def store(aws: Any, pool: ThreadPoolExecutor) -> ConversationStore:
    return ConversationStore(
        aws, os.environ["TABLE_NAME"], ttl_seconds=TTL, max_age_seconds=MAX_AGE, pool=pool
    )


class Calls:
    """The DynamoDB operations a store makes."""

    def __init__(self, store: ConversationStore) -> None:
        self.names: list[str] = []
        db = store._db
        for name in ("transact_write_items", "put_item", "update_item", "delete_item"):
            original = getattr(db, name)

            def recorded(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
                self.names.append(_name)
                return _original(*args, **kwargs)

            setattr(db, name, recorded)


def addition(amount: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": os.environ["TABLE_NAME"],
            "Key": COUNTER,
            "UpdateExpression": "ADD used :n",
            "ExpressionAttributeValues": {":n": {"N": str(amount)}},
        }
    }


def counter(store: ConversationStore) -> int:
    item = store._db.get_item(TableName=os.environ["TABLE_NAME"], Key=COUNTER).get("Item", {})
    return int(item.get("used", {"N": "0"})["N"])


def planned(store: ConversationStore, now: float = NOW) -> Slot:
    slot = take_slot(store, "s1", NOW, 10, now=now)
    assert slot is not None
    return slot


def known_now(store: ConversationStore) -> Known | None:
    """What a fresh read of META says (as the next turn's plan sees it), and its newest turns."""
    slot = store.plan_turn("s1", NOW, 10, replace_last=True, now=NOW + 5)
    assert slot is not None and slot.recent is not None
    return Known(slot.generation, slot.turns_before, slot.context, slot.revision, slot.title, slot.recent)


def same(saved: Known | None, read: Known | None) -> bool:
    """A saved turn's state as a read finds it: the newest turns as deep as it knows them."""
    assert saved is not None and read is not None and saved.recent is not None and read.recent is not None
    depth = min(saved.recent.depth, read.recent.depth)
    return (
        replace(saved, recent=None) == replace(read, recent=None)
        and saved.recent.turns[:depth] == read.recent.turns[:depth]
    )


def test_a_first_and_a_second_turn_each_save_in_one_call_with_what_is_added(store: ConversationStore) -> None:
    calls = Calls(store)
    first = store.save_turn(planned(store), Turn("u1", "a1"), now=NOW, title="First", also=[addition(5)])
    assert first.also_written and (first.turns, first.title) == (1, "First")
    assert same(first.state, known_now(store))
    second_slot = planned(store, NOW + 1)
    calls.names.clear()
    second = store.save_turn(
        second_slot, Turn("u2", "a2"), now=NOW + 1, title="ignored", billed=(120, "fp"), also=[addition(-2)]
    )
    assert calls.names == ["transact_write_items"]
    assert second.also_written and (second.turns, second.title) == (2, "First")
    assert same(second.state, known_now(store))
    assert second.state is not None and second.state.context is not None
    assert (second.state.context.tokens, second.state.context.turns) == (120, 2)
    assert counter(store) == 3
    assert [turn.user for turn in store.all_turns(store.load("s1", NOW))] == ["u1", "u2"]


def test_a_save_since_the_read_sends_the_save_the_careful_way_and_leaves_the_addition(
    store: ConversationStore,
) -> None:
    store.save_turn(planned(store), Turn("u1", "a1"), now=NOW, title="t")
    mine, theirs = planned(store, NOW + 1), planned(store, NOW + 1)
    store.save_turn(theirs, Turn("theirs", "a"), now=NOW + 1)
    calls = Calls(store)
    saved = store.save_turn(mine, Turn("mine", "b"), now=NOW + 2, also=[addition(7)])
    assert not saved.also_written
    assert "transact_write_items" in calls.names and "put_item" in calls.names
    assert counter(store) == 0  # the caller settles; the failed transaction wrote nothing
    assert saved.turns == 3 and saved.state is not None
    assert replace(saved.state, recent=None) == replace(known_now(store), recent=None)  # type: ignore[arg-type]
    assert saved.state.recent is None  # another turn was saved beside it: its own newest turns are not known
    assert sorted(turn.user for turn in store.all_turns(store.load("s1", NOW))) == ["mine", "theirs", "u1"]


def test_a_rename_since_the_read_is_not_overwritten_nor_misreported(store: ConversationStore) -> None:
    store.save_turn(planned(store), Turn("u1", "a1"), now=NOW, title="auto")
    slot = planned(store, NOW + 1)
    store.rename(store.load("s1", NOW + 1), "Mine")
    saved = store.save_turn(slot, Turn("u2", "a2"), now=NOW + 2, also=[addition(1)])
    assert not saved.also_written
    assert saved.title == "Mine"


def test_a_reset_since_the_read_saves_nothing_and_adds_nothing(store: ConversationStore) -> None:
    store.save_turn(planned(store), Turn("u1", "a1"), now=NOW, title="t")
    slot = planned(store, NOW + 1)
    store.reset(store.load("s1", NOW + 1), NOW + 1)
    saved = store.save_turn(slot, Turn("u2", "a2"), now=NOW + 2, also=[addition(4)])
    assert not saved.also_written and saved.state is None
    assert counter(store) == 0
    assert store.all_turns(store.load("s1", NOW + 3)) == []


def test_an_added_action_that_fails_leaves_the_save_to_the_careful_way(store: ConversationStore) -> None:
    refused = addition(9)
    refused["Update"]["ConditionExpression"] = "attribute_exists(nothing)"
    saved = store.save_turn(planned(store), Turn("u1", "a1"), now=NOW, title="t", also=[refused])
    assert not saved.also_written and saved.turns == 1
    assert counter(store) == 0
    assert [turn.user for turn in store.all_turns(store.load("s1", NOW))] == ["u1"]


def test_a_one_call_save_of_unknown_outcome_is_not_saved_again_nor_its_addition_left_to_the_caller(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The transaction landed, but its answer was a server error: nothing says it did not. Saving the
    # careful way would count the turn again (then fail on the item it finds) and hand the addition
    # (the settlement) back to the caller, which would write it a second time.
    slot = planned(store)
    db = store._db
    real = db.transact_write_items

    def landed_unanswered(**kwargs: Any) -> Any:
        real(**kwargs)
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "?"}}, "TransactWriteItems")

    monkeypatch.setattr(db, "transact_write_items", landed_unanswered)
    with pytest.raises(ClientError) as raised:
        store.save_turn(slot, Turn("u1", "a1"), now=NOW, title="t", also=[addition(5)])
    monkeypatch.undo()
    assert raised.value.response["Error"]["Code"] == "InternalServerError", raised.value
    assert counter(store) == 5
    known = known_now(store)
    assert known is not None and known.turns == 1

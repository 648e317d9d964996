"""The conversation store's requests as DynamoDB gets them (botocore's Stubber), and its admission checks.

tests/unit/test_conversation_store.py checks what the store does against moto; these pin the
requests themselves: the conditional writes' conditions, every key, expiry and amount, the reads'
consistency and limits, and what a turn's admission must find on META (`check`, `session_check`),
where moto would take a differently written request the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from claude_chat.admission import Check
from claude_chat.conversation_store import (
    CarefulSaveFailed,
    ConversationStore,
    ConversationSummary,
    HistoryPage,
    SessionRecord,
    Slot,
    Turn,
)

TABLE = "t"
TTL = 3600
MAX_AGE = 7 * 24 * 3600
NOW = 1_800_000_000
LATER = NOW + 10.5  # a turn's start: ceil() is NOW + 11, int() NOW + 10


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def s(value: str) -> dict[str, str]:
    return {"S": value}


def key(pk: str, sk: str = "~META") -> dict[str, Any]:
    return {"pk": s(pk), "sk": s(sk)}


class AtOnce(Executor):
    """Runs each call when it is submitted, so the requests come in one order."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # the future carries it
            future.set_exception(error)
        return future


@pytest.fixture(scope="module")
def client() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def stubbed(client: Any) -> Iterator[tuple[ConversationStore, Stubber]]:
    stubber = Stubber(client)
    with stubber:
        yield (
            ConversationStore(client, TABLE, ttl_seconds=TTL, max_age_seconds=MAX_AGE, pool=AtOnce()),
            stubber,
        )
    stubber.assert_no_pending_responses()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def store() -> ConversationStore:
    """A store for what needs no DynamoDB call (a check is one action of the admission's transaction)."""
    return ConversationStore(None, TABLE, ttl_seconds=TTL, max_age_seconds=MAX_AGE, pool=AtOnce())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- what a turn's admission checks


def test_a_first_turn_creates_meta_unless_another_first_turn_did() -> None:
    first = Slot("s1#c", NOW, NOW + 10, 1, 0, owner="s1", conversation="c")
    expected = Check(
        "conversation",
        {
            "Update": {
                "Key": key("S#s1#c"),
                "UpdateExpression": "SET gen = :gen, turns = :zero, expires_at = :exp",
                "ConditionExpression": "attribute_not_exists(gen)",
                # Another conversation's META expires with the session's turns.
                "ExpressionAttributeValues": {
                    ":gen": n(NOW + 10),
                    ":zero": n(0),
                    ":exp": n(NOW + MAX_AGE + 86_400),
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    )
    assert store().check(first, LATER) == store().check(first, LATER, exact=True) == expected


def test_a_turn_in_an_anonymous_sessions_default_conversation_slides_it_while_it_lives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    turn = Slot("s1", NOW, 7, 1, 2, stored=True, owner="s1", revision=3)
    values = {":gen": n(7), ":exp": n(NOW + 11 + TTL), ":now": n(NOW + 10)}
    monkeypatch.setattr(time, "time", lambda: LATER)
    assert store().check(turn) == Check(
        "conversation",
        {
            "Update": {
                "Key": key("S#s1"),
                "UpdateExpression": "SET expires_at = :exp",
                "ConditionExpression": "gen = :gen AND expires_at > :now",
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    )
    exact = store().check(turn, LATER, exact=True).item["Update"]
    assert (
        exact["ConditionExpression"] == "gen = :gen AND turns = :turns AND rev = :rev AND expires_at > :now"
    )
    assert exact["ExpressionAttributeValues"] == {**values, ":turns": n(2), ":rev": n(3)}


def test_a_turn_in_an_anonymous_sessions_other_conversation_checks_its_generation_only() -> None:
    turn = Slot("s1#c", NOW, 7, 1, 2, stored=True, owner="s1", conversation="c")
    assert store().check(turn, LATER) == Check(
        "conversation",
        {
            "ConditionCheck": {
                "Key": key("S#s1#c"),
                "ConditionExpression": "gen = :gen",
                "ExpressionAttributeValues": {":gen": n(7)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    )
    exact = store().check(turn, LATER, exact=True).item["ConditionCheck"]
    # Never saved since META was made: no `rev` yet.
    assert exact["ConditionExpression"] == "gen = :gen AND turns = :turns AND attribute_not_exists(rev)"
    assert exact["ExpressionAttributeValues"] == {":gen": n(7), ":turns": n(2)}


@pytest.mark.parametrize("session_id", ["u:1", "u:1#c"])
def test_a_signed_in_users_turn_slides_its_conversation_by_the_whole_max_age(session_id: str) -> None:
    turn = Slot(
        session_id,
        NOW,
        7,
        1,
        2,
        lasting=True,
        stored=True,
        owner="u:1",
        conversation=session_id[4:] or "default",
    )
    check = store().check(turn, LATER, exact=True)
    assert check == Check(
        "conversation",
        {
            "Update": {
                "Key": key(f"S#{session_id}"),
                "UpdateExpression": "SET expires_at = :exp",
                "ConditionExpression": "gen = :gen AND turns = :turns AND attribute_not_exists(rev)",
                "ExpressionAttributeValues": {":gen": n(7), ":exp": n(NOW + 11 + MAX_AGE), ":turns": n(2)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    )


def test_a_turn_elsewhere_checks_the_session_lives_and_slides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def session(condition: str, now: int, exp: int) -> Check:
        return Check(
            "session",
            {
                "Update": {
                    "Key": key("S#s1"),
                    "UpdateExpression": "SET gen = if_not_exists(gen, :fresh), "
                    "turns = if_not_exists(turns, :zero), expires_at = :exp",
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": {
                        ":zero": n(0),
                        ":fresh": n(now),
                        ":exp": n(exp),
                        ":now": n(now),
                    },
                }
            },
        )

    # Fresh, the session may have no META yet; from its idle timeout on, it must have a live one.
    fresh = "attribute_not_exists(pk) OR expires_at > :now"
    assert store().session_check("s1", NOW, LATER) == session(fresh, NOW + 10, NOW + 11 + TTL)
    assert store().session_check("s1", NOW, NOW + TTL) == session(
        "expires_at > :now", NOW + TTL, NOW + 2 * TTL
    )
    monkeypatch.setattr(time, "time", lambda: NOW + TTL - 1)
    assert store().session_check("s1", NOW) == session(fresh, NOW + TTL - 1, NOW + 2 * TTL - 1)


# --------------------------------------------------------------------------- reads


def query(pk: str, **request: Any) -> dict[str, Any]:
    return {
        "TableName": TABLE,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": s(pk)},
        "ScanIndexForward": False,
        "ConsistentRead": True,
        **request,
    }


def generation(pk: str, gen: int, **request: Any) -> dict[str, Any]:
    return {
        "TableName": TABLE,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": s(pk), ":prefix": s(f"T#{gen:010d}#")},
        "ConsistentRead": True,
        **request,
    }


def turn_item(number: int, gen: int = 7) -> dict[str, Any]:
    return {
        **key("S#s1", f"T#{gen:010d}#{number:010d}"),
        "user": s(f"u{number}"),
        "assistant": s(f"a{number}"),
    }


META = {**key("S#s1"), "gen": n(7), "turns": n(3), "expires_at": n(NOW + TTL)}


def test_meta_and_the_newest_turns_are_one_consistent_descending_query(
    stubbed: tuple[ConversationStore, Stubber],
) -> None:
    conversations, stubber = stubbed
    stubber.add_response("query", {"Items": [META]}, query("S#s1", Limit=1))
    stubber.add_response("query", {"Items": [META, turn_item(3)]}, query("S#s1", Limit=6))
    assert conversations.load("s1", NOW) == SessionRecord("s1", NOW, 7, 3, NOW + TTL, stored=True)
    planned = conversations.plan_turn("s1", NOW, 4, LATER, replace_last=True)
    assert planned is not None and planned.replaces == 3 and planned.history == ()


def test_a_generations_turns_are_read_consistently(stubbed: tuple[ConversationStore, Stubber]) -> None:
    conversations, stubber = stubbed
    record = SessionRecord("s1", NOW, 7, 3, stored=True)
    stubber.add_response("query", {"Items": [turn_item(1), turn_item(2)]}, generation("S#s1", 7))
    assert conversations.all_turns(record) == [Turn("u1", "a1"), Turn("u2", "a2")]
    # A page reads one turn past itself, and again past DynamoDB's own page (1 MB) until it has them.
    older = {"ExclusiveStartKey": key("S#s1", f"T#{7:010d}#{9:010d}"), "ScanIndexForward": False}
    next_page = key("S#s1", f"T#{7:010d}#{5:010d}")
    stubber.add_response(
        "query",
        {"Items": [turn_item(8), turn_item(5)], "LastEvaluatedKey": next_page},
        generation("S#s1", 7, **older, Limit=4),
    )
    stubber.add_response(
        "query",
        {"Items": [turn_item(2), turn_item(1)]},
        generation("S#s1", 7, ExclusiveStartKey=next_page, ScanIndexForward=False, Limit=2),
    )
    page = conversations.history_page(record, 3, 10**9, before=9)
    assert page == HistoryPage((Turn("u2", "a2"), Turn("u5", "a5"), Turn("u8", "a8")), 2)


def test_the_list_is_a_query_of_the_owners_index_from_where_the_last_page_ended(
    stubbed: tuple[ConversationStore, Stubber],
) -> None:
    conversations, stubber = stubbed

    def listed(conversation: str, updated_at: int) -> dict[str, Any]:
        return {**key(f"S#s1#{conversation}"), "owner": s("S#s1"), "updated_at": n(updated_at), "turns": n(1)}

    request = {
        "TableName": TABLE,
        "IndexName": "ByOwnerModel",
        "KeyConditionExpression": "#owner = :owner",
        "ExpressionAttributeNames": {"#owner": "owner"},
        "ExpressionAttributeValues": {":owner": s("S#s1")},
        "ScanIndexForward": False,
    }
    after = {**key("S#s1#b"), "owner": s("S#s1"), "updated_at": n(5_000)}
    page_end = {**key("S#s1#c"), "owner": s("S#s1"), "updated_at": n(4_000)}
    stubber.add_response(
        "query",
        {"Items": [listed("c", 4_000)], "LastEvaluatedKey": page_end},
        {**request, "ExclusiveStartKey": after, "Limit": 3},
    )
    stubber.add_response(
        "query",
        {"Items": [listed("d", 3_000), listed("e", 2_000)]},
        {**request, "ExclusiveStartKey": page_end, "Limit": 2},
    )
    found, more = conversations.conversations("s1", 2, after=(5_000, "b"))
    assert found == [
        ConversationSummary("c", "New chat", 1, 4_000),
        ConversationSummary("d", "New chat", 1, 3_000),
    ]
    assert more == (3_000, "d")


# --------------------------------------------------------------------------- writes


def test_a_turn_is_its_own_item_then_metas_count_title_model_and_bill(
    stubbed: tuple[ConversationStore, Stubber],
) -> None:
    """A regenerate of a conversation's only turn: its item, the replaced turn's deletion, META."""
    conversations, stubber = stubbed
    regenerate = Slot(
        "u:1#c",
        NOW,
        7,
        42,
        1,
        lasting=True,
        owner="u:1",
        conversation="c",
        replaces=41,
        stored=True,
        revision=2,
    )
    stubber.add_response(
        "put_item",
        {},
        {
            "TableName": TABLE,
            "Item": {**key("S#u:1#c", f"T#{7:010d}#{42:010d}"), "user": s("hi"), "assistant": s("hello"),
                     "created_at": n(NOW + 10), "expires_at": n(NOW + 10 + MAX_AGE + 86_400)},
            "ConditionExpression": "attribute_not_exists(sk)",
        },
    )  # fmt: skip
    stubber.add_response(
        "delete_item",
        {},
        {
            "TableName": TABLE,
            "Key": key("S#u:1#c", f"T#{7:010d}#{41:010d}"),
            "ConditionExpression": "attribute_exists(sk)",
        },
    )
    values = {
        ":added": n(0),
        ":gen": n(7),
        ":exp": n(NOW + 11 + MAX_AGE),
        ":owner": s("S#u:1"),
        ":cid": s("c"),
        ":title": s("Hi"),
        ":now": n((NOW + 10) * 1000 + 500),
        ":one": n(1),
        ":model": s("m"),
        ":ctx": n(120),
        ":ctxfp": s("fp"),
        ":ctxn": n(1),
        ":ctxr": n(3),
    }
    meta = {**key("S#u:1#c"), "gen": n(7), "turns": n(1), "rev": n(3), "auto_title": s("Hi")}
    stubber.add_response(
        "update_item",
        {"Attributes": meta},
        {
            "TableName": TABLE,
            "Key": key("S#u:1#c"),
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "UpdateExpression": "ADD turns :added, rev :one "
            "SET expires_at = :exp, #owner = :owner, cid = :cid, auto_title = :title, model = :model, "
            "ctx = :ctx, ctxfp = :ctxfp, ctxn = :ctxn, ctxr = :ctxr, updated_at = :now",
            "ConditionExpression": "gen = :gen AND (attribute_not_exists(updated_at) OR updated_at <= :now)",
        },
    )
    saved = conversations.save_turn(
        regenerate, Turn("hi", "hello"), LATER, title="Hi", model="m", billed=(120, "fp")
    )
    assert (saved.turns, saved.title) == (1, "Hi")


def test_a_turn_saved_after_a_later_one_counts_without_moving_the_update_time_back(
    stubbed: tuple[ConversationStore, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    conversations, stubber = stubbed
    monkeypatch.setattr(time, "time", lambda: LATER)
    turn = Slot("s1", NOW, 7, 42, 0, owner="s1")
    # META is not as the turn read it: the one-call save is cancelled, and the turn saved the careful way.
    stubber.add_client_error("transact_write_items", service_error_code="TransactionCanceledException")
    stubber.add_response(
        "put_item",
        {},
        {
            "TableName": TABLE,
            "Item": {**key("S#s1", f"T#{7:010d}#{42:010d}"), "user": s("hi"), "assistant": s("hello"),
                     "created_at": n(NOW + 10), "expires_at": n(NOW + MAX_AGE + 86_400)},
            "ConditionExpression": "attribute_not_exists(sk)",
        },
    )  # fmt: skip
    values = {
        ":added": n(1),
        ":gen": n(7),
        ":exp": n(NOW + 11 + TTL),
        ":owner": s("S#s1"),
        ":cid": s("default"),
        ":title": s("New chat"),
        ":one": n(1),
    }
    update = (
        "ADD turns :added, rev :one SET expires_at = :exp, #owner = :owner, cid = :cid, "
        "auto_title = if_not_exists(auto_title, :title)"
    )
    request = {
        "TableName": TABLE,
        "Key": key("S#s1"),
        "ExpressionAttributeNames": {"#owner": "owner"},
        "ReturnValues": "ALL_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    later = {**key("S#s1"), "gen": n(7), "updated_at": n((NOW + 20) * 1000)}
    stubber.add_client_error(
        "update_item",
        service_error_code="ConditionalCheckFailedException",
        modeled_fields={"Item": later},
        expected_params={
            **request,
            "ExpressionAttributeValues": {**values, ":now": n((NOW + 10) * 1000 + 500)},
            "UpdateExpression": f"{update}, updated_at = :now REMOVE ctx, ctxfp, ctxn, ctxr",
            "ConditionExpression": "gen = :gen AND (attribute_not_exists(updated_at) OR updated_at <= :now)",
        },
    )
    meta = {**later, "turns": n(2), "rev": n(2), "auto_title": s("New chat")}
    stubber.add_response(
        "update_item",
        {"Attributes": meta},
        {
            **request,
            "ExpressionAttributeValues": values,
            "UpdateExpression": f"{update} REMOVE ctx, ctxfp, ctxn, ctxr",
            "ConditionExpression": "gen = :gen",
        },
    )
    assert conversations.save_turn(turn, Turn("hi", "hello")).turns == 2


def test_a_turn_whose_item_is_not_written_takes_its_count_back(
    stubbed: tuple[ConversationStore, Stubber],
) -> None:
    conversations, stubber = stubbed
    stubber.add_client_error("transact_write_items", service_error_code="TransactionCanceledException")
    stubber.add_client_error("put_item", service_error_code="ProvisionedThroughputExceededException")
    stubber.add_response("update_item", {"Attributes": {"gen": n(7), "turns": n(3)}})
    stubber.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": key("S#s1"),
            "UpdateExpression": "ADD turns :minus",
            "ExpressionAttributeValues": {":minus": n(-1)},
        },
    )
    with pytest.raises(CarefulSaveFailed, match="ProvisionedThroughputExceeded"):
        conversations.save_turn(Slot("s1", NOW, 7, 42, 2, owner="s1"), Turn("hi", "hello"), LATER)


def test_reading_a_session_slides_its_idle_expiry_on_meta_only_if_there_is_one(
    stubbed: tuple[ConversationStore, Stubber],
) -> None:
    conversations, stubber = stubbed
    stubber.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": key("S#s1"),
            "UpdateExpression": "SET expires_at = :exp",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": {":exp": n(NOW + 11 + TTL)},
        },
    )
    conversations.touch(SessionRecord("s1", NOW, 7, stored=True), LATER)


def test_a_rename_and_a_better_automatic_title_are_conditional_writes(
    stubbed: tuple[ConversationStore, Stubber],
) -> None:
    conversations, stubber = stubbed
    renamed = {**key("S#s1#c"), "turns": n(2), "updated_at": n(5), "title": s("Mine"), "model": s("m")}
    stubber.add_response(
        "update_item",
        {"Attributes": renamed},
        {
            "TableName": TABLE,
            "Key": key("S#s1#c"),
            "UpdateExpression": "SET title = :title",
            "ConditionExpression": "attribute_exists(updated_at)",
            "ExpressionAttributeValues": {":title": s("Mine")},
            "ReturnValues": "ALL_NEW",
        },
    )
    stubber.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": key("S#s1#c"),
            "UpdateExpression": "SET auto_title = :title",
            "ConditionExpression": "gen = :gen AND auto_title = :expected",
            "ExpressionAttributeValues": {":title": s("Better"), ":expected": s("hi"), ":gen": n(7)},
        },
    )
    record = SessionRecord("s1#c", NOW, 7, stored=True, conversation="c")
    assert conversations.rename(record, "Mine") == ConversationSummary("c", "Mine", 2, 5, "m")
    assert conversations.retitle(Slot("s1#c", NOW, 7, 1, 0, owner="s1", conversation="c"), "hi", "Better")


def test_a_reset_bumps_the_generation_unlists_and_deletes_the_old_turns_25_at_a_time(
    stubbed: tuple[ConversationStore, Stubber], sleeps: list[float]
) -> None:
    conversations, stubber = stubbed
    stubber.add_response(
        "update_item",
        {"Attributes": {"gen": n(7), "updated_at": n(5)}},
        {
            "TableName": TABLE,
            "Key": key("S#s1#c"),
            "UpdateExpression": "SET gen = if_not_exists(gen, :before_first) + :one, "
            "turns = :zero, expires_at = :exp REMOVE #owner, updated_at, cid, title, auto_title",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {
                ":one": n(1),
                ":zero": n(0),
                ":before_first": n(NOW + 9),
                ":exp": n(NOW + MAX_AGE + 86_400),
            },
            "ReturnValues": "UPDATED_OLD",
            "ConditionExpression": "attribute_exists(pk)",
        },
    )
    keys = [key("S#s1#c", f"T#{7:010d}#{number:010d}") for number in range(30)]
    stubber.add_response(
        "query", {"Items": keys}, generation("S#s1#c", 7, ProjectionExpression="pk, sk, att")
    )  # with each turn's files, which go with it

    def deletes(batch: list[dict[str, Any]]) -> dict[str, Any]:
        return {"RequestItems": {TABLE: [{"DeleteRequest": {"Key": k}} for k in batch]}}

    unprocessed = {TABLE: [{"DeleteRequest": {"Key": k}} for k in keys[3:5]]}
    stubber.add_response("batch_write_item", {"UnprocessedItems": unprocessed}, deletes(keys[:25]))
    stubber.add_response("batch_write_item", {"UnprocessedItems": {}}, deletes(keys[3:5]))
    stubber.add_response("batch_write_item", {}, deletes(keys[25:]))
    assert conversations.reset(
        SessionRecord("s1#c", NOW, 7, stored=True, conversation="c"), LATER, must_exist=True
    )
    assert sleeps == [0.05]


def test_deletes_left_unprocessed_are_tried_five_times_then_left_to_ttl(
    stubbed: tuple[ConversationStore, Stubber], sleeps: list[float]
) -> None:
    conversations, stubber = stubbed
    stubber.add_response("update_item", {"Attributes": {"gen": n(7)}})
    stubber.add_response("query", {"Items": [turn_item(1)]})
    left = {TABLE: [{"DeleteRequest": {"Key": key("S#s1", f"T#{7:010d}#{1:010d}")}}]}
    for _ in range(5):
        stubber.add_response("batch_write_item", {"UnprocessedItems": left}, {"RequestItems": left})
    assert not conversations.reset(SessionRecord("s1", NOW, 7, stored=True), LATER)
    assert sleeps == [0.05, 0.1, 0.2, 0.4, 0.8]

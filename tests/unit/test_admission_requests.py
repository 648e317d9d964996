"""The admission's requests as DynamoDB gets them (botocore's Stubber): every key, expression and amount.

tests/unit/test_admission.py checks what the admission does against moto; these pin the requests
themselves, where moto would take a differently written one the same way (an expression's case, a
share written as 2500.0, an eventually consistent read).
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from claude_chat.admission import Admission, Charge, Check, DayUse, Limits, shard_key
from claude_chat.rate_limiter import RateLimiter

TABLE = "t"
T0 = 1_800_000_005.0  # 2027-01-15, 5 s into a request window of a minute
DAY = {"sk": {"S": "D#2027-01-15"}}
META = {"pk": {"S": "S#o"}, "sk": {"S": "~META"}}
EXPIRES = {"N": "1800144000"}  # 2027-01-17 00:00 UTC: a day after the day ends


@pytest.fixture(scope="module")
def client() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


def stubbed(
    client: Any, pool: ThreadPoolExecutor, global_limits: Limits, shards: int
) -> tuple[Admission, Stubber]:
    limiter = RateLimiter(client, TABLE, limit=5, window_seconds=60)
    return Admission(client, TABLE, limiter, global_limits=global_limits, shards=shards, pool=pool), Stubber(
        client
    )


def counter(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, **DAY}


def test_a_turn_is_admitted_by_one_transaction_and_settled_by_another(
    client: Any, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request window, the caller's day, a share of the global day (budgets that do not split
    evenly: each share rounds down) and the conversation's check, then the settlement's two ADDs."""
    gate, stubber = stubbed(client, pool, Limits(10_001, 20_002), shards=4)
    monkeypatch.setattr(random, "randrange", lambda _: 3)
    check = Check(
        "conversation", {"ConditionCheck": {"Key": META, "ConditionExpression": "attribute_exists(gen)"}}
    )
    admission = [
        {
            "Update": {
                "Key": {"pk": {"S": "RL#k"}, "sk": {"S": "W#1800000000"}},
                "UpdateExpression": "ADD hits :one SET expires_at = :exp",
                "ConditionExpression": "attribute_not_exists(hits) OR hits < :limit",
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":limit": {"N": "5"},
                    ":exp": {"N": "1800000120"},
                },
                "TableName": TABLE,
            }
        },
        {
            "Update": {
                "TableName": TABLE,
                "Key": counter("TB#k"),
                "UpdateExpression": "ADD used :tokens, nusd :nanos SET expires_at = :exp",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                # More tokens than the whole budget: not even a counter not yet written takes them.
                "ConditionExpression": "used <= :used_room "
                "AND (attribute_not_exists(nusd) OR nusd <= :nusd_room)",
                "ExpressionAttributeValues": {
                    ":tokens": {"N": "150"},
                    ":nanos": {"N": "300"},
                    ":exp": EXPIRES,
                    ":used_room": {"N": "-50"},
                    ":nusd_room": {"N": "4700"},
                },
            }
        },
        {
            "Update": {
                "TableName": TABLE,
                "Key": counter("GB#all#3"),
                "UpdateExpression": "ADD used :tokens, nusd :nanos SET expires_at = :exp",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                "ConditionExpression": "(attribute_not_exists(used) OR used <= :used_room) "
                "AND (attribute_not_exists(nusd) OR nusd <= :nusd_room)",
                "ExpressionAttributeValues": {
                    ":tokens": {"N": "150"},
                    ":nanos": {"N": "300"},
                    ":exp": EXPIRES,
                    ":used_room": {"N": "2350"},  # a share of 2,500 tokens
                    ":nusd_room": {"N": "4700"},  # and of 5,000 nano-dollars
                },
            }
        },
        {"ConditionCheck": {"Key": META, "ConditionExpression": "attribute_exists(gen)", "TableName": TABLE}},
    ]
    stubber.add_response("transact_write_items", {}, {"TransactItems": admission})
    settlement = [
        {
            "Update": {
                "TableName": TABLE,
                "Key": counter(pk),
                "UpdateExpression": "ADD used :tokens, nusd :nanos",
                "ExpressionAttributeValues": {":tokens": {"N": "-100"}, ":nanos": {"N": "-200"}},
            }
        }
        for pk in ("TB#k", "GB#all#3")
    ]
    stubber.add_response("transact_write_items", {}, {"TransactItems": settlement})
    with stubber:
        ticket = gate.admit("k", Charge(150, 300), Limits(100, 5_000), checks=[check], now=T0)
        assert ticket.counters == [counter("TB#k"), counter("GB#all#3")]
        ticket.settle(Charge(50, 100))
    stubber.assert_no_pending_responses()


def test_the_days_use_is_a_consistent_read_of_the_two_amounts(client: Any, pool: ThreadPoolExecutor) -> None:
    gate, stubber = stubbed(client, pool, Limits(), shards=1)
    stubber.add_response(
        "get_item",
        {"Item": {"used": {"N": "3"}, "nusd": {"N": "4"}}},
        {
            "TableName": TABLE,
            "Key": counter("TB#k"),
            "ProjectionExpression": "used, nusd",
            "ConsistentRead": True,
        },
    )
    with stubber:
        assert gate.day_use("k", Limits(9, 9), now=T0) == DayUse(3, 4, Limits(9, 9), 57_595)
    stubber.assert_no_pending_responses()


def test_a_full_shard_reads_every_shard_a_hundred_at_a_time_until_none_is_left_unread(
    client: Any, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """256 shards of 1,000 tokens, all full but shard 170, which a throttled read returns last."""
    gate, stubber = stubbed(client, pool, Limits(256_000, 0), shards=256)
    monkeypatch.setattr(random, "randrange", lambda _: 0)
    monkeypatch.setattr("time.sleep", lambda _: None)
    keys = [counter(shard_key(shard)) for shard in range(256)]

    def used(shards: range) -> list[dict[str, Any]]:
        return [{**keys[shard], "used": {"N": "100" if shard == 170 else "1000"}} for shard in shards]

    def reads(start: int, stop: int) -> dict[str, Any]:
        return {"RequestItems": {TABLE: {"Keys": keys[start:stop], "ConsistentRead": True}}}

    def take(pk: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": TABLE,
                "Key": counter(pk),
                "UpdateExpression": "ADD used :tokens, nusd :nanos SET expires_at = :exp",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                "ConditionExpression": "(attribute_not_exists(used) OR used <= :used_room)",
                "ExpressionAttributeValues": {
                    ":tokens": {"N": "500"},
                    ":nanos": {"N": "0"},
                    ":exp": EXPIRES,
                    ":used_room": {"N": "500"},
                },
            }
        }

    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": "ConditionalCheckFailed"}]},
        expected_params={"TransactItems": [take("GB#all")]},
    )
    stubber.add_response("batch_get_item", {"Responses": {TABLE: used(range(100))}}, reads(0, 100))
    unread = {TABLE: {"Keys": keys[150:200], "ConsistentRead": True}}
    stubber.add_response(
        "batch_get_item",
        {"Responses": {TABLE: used(range(100, 150))}, "UnprocessedKeys": unread},
        reads(100, 200),
    )
    stubber.add_response(
        "batch_get_item", {"Responses": {}, "UnprocessedKeys": unread}, {"RequestItems": unread}
    )
    stubber.add_response(
        "batch_get_item", {"Responses": {TABLE: used(range(150, 200))}}, {"RequestItems": unread}
    )
    stubber.add_response("batch_get_item", {"Responses": {TABLE: used(range(200, 256))}}, reads(200, 256))
    stubber.add_response("transact_write_items", {}, {"TransactItems": [take("GB#all#170")]})
    with stubber:
        ticket = gate.admit("k", Charge(500, 0), Limits(), request=False, now=T0)
    stubber.assert_no_pending_responses()
    assert ticket.counters == [counter("GB#all#170")]

"""Admission against DynamoDB (moto): one all-or-nothing write for the window and every budget.

The flood the issue found (a client with a spent window holding the global budget for a moment, and
every refusal leaving records behind) cannot happen when a refusal writes nothing at all: these
tests look at the whole table after each refusal.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from claude_chat.admission import (
    MAX_SHARDS,
    Admission,
    Charge,
    Check,
    Conflict,
    Limits,
    shard_count,
    shard_key,
    until_day_ends,
)
from claude_chat.errors import BudgetExhausted, Busy, RateLimited
from claude_chat.rate_limiter import RateLimiter

T0 = 1_800_000_000.0
OFF = Limits()


def admission(aws: Any, *, global_limits: Limits = OFF, shards: int = 1, window: int = 5) -> Admission:
    """An admission with a pool of its own: a pool shared by the module would keep the threads of the
    process that started them, and a test forked after them (make mutation) would wait on none."""
    table = os.environ["TABLE_NAME"]
    limiter = RateLimiter(aws, table, limit=window, window_seconds=60)
    return Admission(
        aws, table, limiter, global_limits=global_limits, shards=shards, pool=ThreadPoolExecutor(4)
    )


def table(aws: Any) -> dict[str, dict[str, Any]]:
    items = aws.scan(TableName=os.environ["TABLE_NAME"])["Items"]
    return {
        f"{i['pk']['S']}|{i['sk']['S']}": {k: v for k, v in i.items() if k not in ("pk", "sk")} for i in items
    }


def spent(aws: Any, pk: str) -> tuple[int, int]:
    item = aws.get_item(
        TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": pk}, "sk": {"S": "D#2027-01-15"}}
    ).get("Item", {})
    return int(item.get("used", {"N": "0"})["N"]), int(item.get("nusd", {"N": "0"})["N"])


def test_an_admitted_turn_reserves_its_worst_case_and_settles_to_its_cost(aws) -> None:
    gate = admission(aws, global_limits=Limits(10_000, 10_000))
    ticket = gate.admit("k", Charge(600, 900), Limits(1_000, 1_000), now=T0)
    assert spent(aws, "TB#k") == spent(aws, "GB#all") == (600, 900)
    ticket.settle(Charge(250, 400))
    assert spent(aws, "TB#k") == spent(aws, "GB#all") == (250, 400)
    ticket.settle(Charge(1, 1))  # once only
    assert spent(aws, "TB#k") == (250, 400)


def test_a_cost_above_the_reservation_is_charged_whole(aws) -> None:
    gate = admission(aws)
    ticket = gate.admit("k", Charge(100, 100), Limits(1_000, 1_000), now=T0)
    ticket.settle(Charge(300, 700))  # a retried attempt Claude may have billed too
    assert spent(aws, "TB#k") == (300, 700)


def test_the_callers_budget_refuses_by_tokens_or_by_money_and_writes_nothing(aws) -> None:
    gate = admission(aws, global_limits=Limits(10_000, 10_000))
    gate.admit("k", Charge(600, 100), Limits(1_000, 1_000), now=T0)
    before = table(aws)
    with pytest.raises(RateLimited) as tokens:
        gate.admit("k", Charge(401, 1), Limits(1_000, 1_000), now=T0)
    assert tokens.value.limit == "tokens" and tokens.value.status == 429
    with pytest.raises(RateLimited) as money:
        gate.admit("k", Charge(1, 901), Limits(1_000, 1_000), now=T0)
    assert money.value.limit == "money"
    assert table(aws) == before  # not even the request window moved
    gate.admit("k", Charge(400, 900), Limits(1_000, 1_000), now=T0)  # exactly what is left fits
    assert spent(aws, "TB#k") == (1_000, 1_000)


def test_a_turn_larger_than_the_whole_budget_is_refused_on_a_fresh_counter(aws) -> None:
    gate = admission(aws, global_limits=Limits(5_000, 0))
    with pytest.raises(RateLimited):
        gate.admit("fresh", Charge(1_001, 0), Limits(1_000, 0), now=T0)
    with pytest.raises(BudgetExhausted):
        gate.admit("fresh", Charge(5_001, 0), Limits(), now=T0)
    assert table(aws) == {}


def test_a_spent_window_refuses_first_and_holds_no_budget(aws) -> None:
    """The issue's flood, in miniature: once the window is spent, no refusal touches any counter."""
    gate = admission(aws, global_limits=Limits(1_000_000, 0), window=2)
    for _ in range(2):
        gate.admit("flooder", Charge(100, 0), Limits(500, 0), now=T0).settle(Charge(10, 0))
    before = table(aws)
    for _ in range(20):
        with pytest.raises(RateLimited) as refused:
            gate.admit("flooder", Charge(400_000, 0), Limits(500, 0), now=T0)  # over its own budget too
        assert refused.value.limit == "requests"
        assert refused.value.headers["RateLimit-Remaining"] == "0"
    assert table(aws) == before
    assert spent(aws, "GB#all") == (20, 0)
    gate.admit("someone-else", Charge(999_980, 0), Limits(), now=T0)  # the whole rest of the day is theirs


def test_the_global_budget_refuses_with_503_until_midnight(aws) -> None:
    gate = admission(aws, global_limits=Limits(0, 1_000))
    gate.admit("a", Charge(0, 800), Limits(), now=T0)
    with pytest.raises(BudgetExhausted) as refused:
        gate.admit("b", Charge(0, 201), Limits(), now=T0)
    assert refused.value.status == 503
    assert refused.value.headers["Retry-After"] == str(86_400 - int(T0) % 86_400)
    assert spent(aws, "TB#b") == (0, 0) and spent(aws, "GB#all") == (0, 800)


def test_the_global_budget_is_spread_over_shards_each_holding_its_share(aws) -> None:
    gate = admission(aws, global_limits=Limits(0, 8_000), shards=8)
    for _ in range(64):
        gate.admit("k", Charge(0, 100), Limits(), request=False, now=T0)
    shares = [spent(aws, shard_key(shard))[1] for shard in range(8)]
    assert sum(shares) == 6_400
    assert len([share for share in shares if share]) >= 4  # spread, not one hot item
    assert max(shares) <= 1_000  # no shard past its share: the sum never passes the budget
    admitted = 64
    while True:
        try:
            gate.admit("k", Charge(0, 100), Limits(), request=False, now=T0)
        except BudgetExhausted:
            break
        admitted += 1
    assert admitted * 100 <= 8_000
    assert admitted * 100 >= 8_000 - 8 * 100  # at most a worst case per shard left unspent


def test_shard_count_holds_fifty_worst_cases_a_shard() -> None:
    assert shard_count(Limits(0, 1_000), Charge(0, 100)) == 1
    assert shard_count(Limits(0, 100 * 50 * 3), Charge(0, 100)) == 2
    assert shard_count(Limits(0, 100 * 50 * 8), Charge(0, 100)) == 8
    assert shard_count(Limits(10**12, 100 * 50 * 8), Charge(1, 100)) == 8  # the tighter dimension
    assert shard_count(Limits(0, 10**15), Charge(0, 1)) == MAX_SHARDS
    assert shard_count(Limits(0, 10**15), Charge(0, 1), configured=3) == 3
    assert shard_count(Limits(), Charge(0, 1)) == 1


def test_a_failed_check_writes_nothing_and_says_what_it_found(aws) -> None:
    gate = admission(aws)
    key = {"pk": {"S": "S#owner"}, "sk": {"S": "~META"}}
    aws.put_item(TableName=os.environ["TABLE_NAME"], Item={**key, "gen": {"N": "7"}})
    before = table(aws)
    check = Check(
        "conversation",
        {
            "ConditionCheck": {
                "Key": key,
                "ConditionExpression": "gen = :gen",
                "ExpressionAttributeValues": {":gen": {"N": "6"}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    )
    with pytest.raises(Conflict) as conflict:
        gate.admit("k", Charge(10, 10), Limits(100, 100), checks=[check], now=T0)
    assert conflict.value.check is check and conflict.value.current["gen"] == {"N": "7"}
    assert table(aws) == before


def test_a_throttled_or_conflicting_write_is_busy_with_retry_after(aws, monkeypatch) -> None:
    gate = admission(aws, shards=4, global_limits=Limits(0, 10_000))
    calls = []

    def throttled(**request: Any) -> None:
        calls.append(request)
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException"},
                "CancellationReasons": [{"Code": "None"}, {"Code": "None"}, {"Code": "TransactionConflict"}],
            },
            "TransactWriteItems",
        )

    monkeypatch.setattr(gate._db, "transact_write_items", throttled)
    with pytest.raises(Busy) as busy:
        gate.admit("k", Charge(1, 1), Limits(100, 100), now=T0)
    assert busy.value.status == 503 and busy.value.headers["Retry-After"] == "1"
    assert len(calls) == 3  # retried, each time on another shard
    shards = [next(a["Update"]["Key"]["pk"]["S"] for a in c["TransactItems"][2:]) for c in calls]
    assert shards[0] != shards[1] and shards[1] != shards[2]

    def unavailable(**request: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "TransactWriteItems")

    monkeypatch.setattr(gate._db, "transact_write_items", unavailable)
    with pytest.raises(Busy):
        gate.admit("k", Charge(1, 1), Limits(100, 100), now=T0)


def test_the_days_use_reads_what_was_spent(aws) -> None:
    gate = admission(aws)
    gate.admit("k", Charge(30, 40), Limits(100, 100), now=T0).settle(Charge(3, 4))
    use = gate.day_use("k", Limits(100, 100), now=T0)
    assert (use.tokens, use.nanos, use.reset_after) == (3, 4, 86_400 - int(T0) % 86_400)
    assert gate.day_use("nobody", Limits(), now=T0).tokens == 0


def test_nothing_on_means_no_call(aws, monkeypatch) -> None:
    gate = admission(aws)
    monkeypatch.setattr(gate._db, "transact_write_items", lambda **_: pytest.fail("called"))
    ticket = gate.admit("k", Charge(5, 5), Limits(), request=False, now=T0)
    ticket.settle(Charge(1, 1))


def test_settling_is_one_call_and_falls_back_to_one_add_each_when_counters_stay_held(
    aws, monkeypatch
) -> None:
    gate = admission(aws, global_limits=Limits(10_000, 10_000))
    ticket = gate.admit("k", Charge(600, 900), Limits(1_000, 1_000), now=T0)
    real = gate._db.transact_write_items
    calls: list[Any] = []
    conflicts = [3]  # how many more calls find the counters held by other transactions

    def held(**request: Any) -> Any:
        calls.append(request)
        if conflicts[0] > 0:
            conflicts[0] -= 1
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException"},
                    "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
                },
                "TransactWriteItems",
            )
        return real(**request)

    monkeypatch.setattr(gate._db, "transact_write_items", held)
    ticket.settle(Charge(100, 200))
    assert len(calls) == 3  # tried as one call three times, then one ADD each
    assert spent(aws, "TB#k") == spent(aws, "GB#all") == (100, 200)
    calls.clear()
    gate.admit("k", Charge(10, 10), Limits(1_000, 1_000), now=T0).settle(Charge(5, 5))
    assert len(calls) == 2  # admitted, then settled: one transaction each
    assert spent(aws, "TB#k") == spent(aws, "GB#all") == (105, 205)


def test_a_window_seen_spent_refuses_without_a_call_until_it_ends(aws, monkeypatch) -> None:
    """A flood from one key costs no DynamoDB write once its window is spent, so it holds no counter
    that other callers' transactions could conflict with."""
    gate = admission(aws, global_limits=Limits(0, 10_000), window=1)
    gate.admit("flooder", Charge(1, 1), Limits(), now=T0)
    with pytest.raises(RateLimited):
        gate.admit("flooder", Charge(1, 1), Limits(), now=T0)  # refused by DynamoDB: now known spent
    real = gate._db.transact_write_items
    calls: list[Any] = []

    def counted(**request: Any) -> Any:
        calls.append(request)
        return real(**request)

    monkeypatch.setattr(gate._db, "transact_write_items", counted)
    for _ in range(5):
        with pytest.raises(RateLimited) as refused:
            gate.admit("flooder", Charge(1, 1), Limits(), now=T0 + 30)
        assert refused.value.headers["RateLimit-Remaining"] == "0" and refused.value.retry_after == 30
    assert calls == []
    gate.admit("someone-else", Charge(1, 1), Limits(), now=T0 + 30)
    gate.admit("flooder", Charge(1, 1), Limits(), request=False, now=T0 + 30)  # a title: no window drawn
    assert len(calls) == 2
    gate.admit("flooder", Charge(1, 1), Limits(), now=T0 + 60)  # the next window
    assert len(calls) == 3


def test_retry_after_a_day_refusal_reaches_the_next_day_and_no_more() -> None:
    end = 1_800_057_600  # 2027-01-16 00:00 UTC
    for now in (end - 86_399.5, end - 1_000.25, end - 2, end - 1.5, end - 0.5, end - 0.001):
        assert end <= now + until_day_ends(now) < end + 1
    assert until_day_ends(end) == 86_400


def test_a_budget_split_over_more_shards_than_it_holds_is_still_enforced(aws: Any) -> None:
    """GLOBAL_BUDGET_SHARDS set above a budget left each shard a share of nothing, which no condition
    enforces: the token budget went unenforced while money was on, and a budget on its own lost its
    only condition (an empty ConditionExpression, which DynamoDB refuses)."""
    gate = admission(aws, global_limits=Limits(3, 10**9), shards=8)
    assert gate.shards == 3
    assert admission(aws, global_limits=Limits(0, 1), shards=8).shards == 1
    for _ in range(3):
        gate.admit("k", Charge(1, 1), Limits(), request=False, now=T0)
    with pytest.raises(BudgetExhausted):
        gate.admit("k", Charge(1, 1), Limits(), request=False, now=T0)
    alone = admission(aws, global_limits=Limits(0, 2), shards=4)
    tomorrow = T0 + 86_400  # the shards above are today's
    for _ in range(2):
        alone.admit("j", Charge(5, 1), Limits(), request=False, now=tomorrow)
    with pytest.raises(BudgetExhausted):
        alone.admit("j", Charge(5, 1), Limits(), request=False, now=tomorrow)

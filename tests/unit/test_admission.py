"""Admission against DynamoDB (moto): one all-or-nothing write for the window and every budget.

The flood the issue found (a client with a spent window holding the global budget for a moment, and
every refusal leaving records behind) cannot happen when a refusal writes nothing at all: these
tests look at the whole table after each refusal.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from claude_chat.admission import (
    MAX_SHARDS,
    Admission,
    Charge,
    Check,
    Conflict,
    DayUse,
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
    assert str(conflict.value) == "conversation"
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
    assert (ticket.reserved, ticket.counters) == (Charge(5, 5), [])
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


# --------------------------------------------------------------------------- helpers of the tests below


def canceled(*codes: str | None) -> ClientError:
    """A cancelled transaction, one reason per action (None: the action did not fail)."""
    reasons = [{"Code": code or "None"} for code in codes]
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": reasons,
        },
        "TransactWriteItems",
    )


def error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Operation")


def calls(
    aws: Any, monkeypatch: pytest.MonkeyPatch, fail: Callable[[str], ClientError | None] = lambda _: None
) -> list[str]:
    """The DynamoDB operations the client makes from now on, in order; `fail` may answer one with an error."""
    made: list[str] = []
    real = aws._make_api_call

    def recorded(operation: str, params: dict[str, Any]) -> Any:
        made.append(operation)
        failure = fail(operation)
        if failure is not None:
            raise failure
        return real(operation, params)

    monkeypatch.setattr(aws, "_make_api_call", recorded)
    return made


def failing(operation: str, *errors: ClientError) -> Callable[[str], ClientError | None]:
    """Fails the next calls of `operation` with `errors`, one each, then lets them through."""
    left = list(errors)
    return lambda made: left.pop(0) if made == operation and left else None


def fill(aws: Any, shard: int, *, used: int = 0, nusd: int = 0) -> None:
    """A global shard's counter today as other turns left it."""
    aws.put_item(
        TableName=os.environ["TABLE_NAME"],
        Item={
            "pk": {"S": shard_key(shard)},
            "sk": {"S": "D#2027-01-15"},
            "used": {"N": str(used)},
            "nusd": {"N": str(nusd)},
        },
    )


def draw(monkeypatch: pytest.MonkeyPatch, *values: int) -> list[int]:
    """random.randrange answering `values` in turn (then the last again); returns what it was asked."""
    asked: list[int] = []
    left = list(values)

    def randrange(stop: int) -> int:
        asked.append(stop)
        return left.pop(0) if len(left) > 1 else left[0]

    monkeypatch.setattr(random, "randrange", randrange)
    return asked


@dataclass
class Backoff:
    sleeps: list[float] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)  # what each jitter was drawn from


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> Backoff:
    """Waits recorded, not slept; each jitter drawn at the middle of its span."""
    recorded = Backoff()

    def uniform(low: float, high: float) -> float:
        recorded.spans.append((low, high))
        return (low + high) / 2

    monkeypatch.setattr(random, "uniform", uniform)
    monkeypatch.setattr(time, "sleep", recorded.sleeps.append)
    return recorded


def limited(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The `limit` of each RateLimitedRequests metric printed so far (CloudWatch EMF lines on stdout)."""
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "RateLimitedRequests" in line
    ]
    return [line["limit"] for line in lines]


def expires(aws: Any, pk: str) -> int:
    key = {"pk": {"S": pk}, "sk": {"S": "D#2027-01-15"}}
    return int(aws.get_item(TableName=os.environ["TABLE_NAME"], Key=key)["Item"]["expires_at"]["N"])


# --------------------------------------------------------------------------- charges, days and shards


def test_a_charge_adds_and_subtracts_each_part() -> None:
    assert Charge(5, 7) + Charge(1, 2) == Charge(6, 9)
    assert Charge(5, 7) - Charge(1, 2) == Charge(4, 5)


def test_a_day_counter_expires_a_day_after_its_day_ends(aws: Any) -> None:
    gate = admission(aws, global_limits=Limits(10_000, 0))
    gate.admit("k", Charge(1, 1), Limits(100, 0), now=T0)
    assert expires(aws, "TB#k") == expires(aws, "GB#all") == 1_800_144_000  # 2027-01-17 00:00 UTC


def test_retry_after_a_day_refusal_reaches_the_next_day_and_no_more() -> None:
    end = 1_800_057_600  # 2027-01-16 00:00 UTC
    for now in (end - 86_399.5, end - 1_000.25, end - 2, end - 1.5, end - 0.5, end - 0.001):
        assert end <= now + until_day_ends(now) < end + 1
    assert until_day_ends(end) == 86_400


def test_shard_count_is_whole_number_arithmetic() -> None:
    assert shard_count(Limits(0, 100 * 50 * 2), Charge(0, 100)) == 2  # exactly two shards' worth
    assert shard_count(Limits(0, 50 * 8), Charge(0, 1)) == 8  # a worst case of one nano-dollar
    assert shard_count(Limits(1, 100 * 50 * 8), Charge(1, 100)) == 1  # a one-token budget is not split
    # One short of 256 shards' worth is 128 shards, though the quotient as a float rounds up to 256.
    assert shard_count(Limits(0, 256 * 50 * 10**13 - 1), Charge(0, 10**13)) == 128


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


# --------------------------------------------------------------------------- which shard takes a turn


@pytest.mark.parametrize("budget", [Limits(2, 0), Limits(0, 2)], ids=["tokens", "money"])
def test_a_turn_its_shard_cannot_take_goes_to_a_shard_with_exactly_its_room(
    aws: Any, monkeypatch: pytest.MonkeyPatch, backoff: Backoff, budget: Limits
) -> None:
    """Shards of one unit each: shard 1, drawn, holds its share; shard 0, never written, has room for
    exactly the turn (whose other dimension, off, is charged too, and limits nothing)."""
    gate = admission(aws, global_limits=budget, shards=2)
    draw(monkeypatch, 1)
    fill(aws, 1, used=budget.tokens // 2, nusd=budget.nanos // 2)
    made = calls(aws, monkeypatch)
    gate.admit("k", Charge(1, 1), Limits(), request=False, now=T0)
    assert made == ["TransactWriteItems", "BatchGetItem", "TransactWriteItems"]
    assert spent(aws, shard_key(0)) == (1, 1)


def test_a_turn_its_shard_cannot_take_goes_to_the_roomiest_by_its_tighter_dimension(
    aws: Any, monkeypatch: pytest.MonkeyPatch, backoff: Backoff
) -> None:
    gate = admission(aws, global_limits=Limits(4_000, 4_000), shards=4)  # shares of 1,000 and 1,000
    draw(monkeypatch, 0)
    fill(aws, 0, used=1_000)  # drawn, and full of tokens
    fill(aws, 1, used=500, nusd=500)  # room for 400 tokens and 450 nano-dollars more: 400
    fill(aws, 2, used=800)  # 100
    fill(aws, 3, nusd=900)  # 50
    gate.admit("k", Charge(100, 50), Limits(), request=False, now=T0)
    assert spent(aws, shard_key(1)) == (600, 550)


def test_of_equally_roomy_shards_the_first_takes_the_turn(
    aws: Any, monkeypatch: pytest.MonkeyPatch, backoff: Backoff
) -> None:
    gate = admission(aws, global_limits=Limits(0, 3_000), shards=3)
    draw(monkeypatch, 2)
    fill(aws, 2, nusd=1_000)
    gate.admit("k", Charge(0, 100), Limits(), request=False, now=T0)
    assert [spent(aws, shard_key(shard)) for shard in range(3)] == [(0, 100), (0, 0), (0, 1_000)]


def test_a_turn_no_shard_can_take_is_refused_after_one_read(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = admission(aws, global_limits=Limits(0, 2_000), shards=2)
    draw(monkeypatch, 0)
    fill(aws, 0, nusd=950)
    fill(aws, 1, nusd=990)
    made = calls(aws, monkeypatch)
    with pytest.raises(BudgetExhausted):
        gate.admit("k", Charge(0, 100), Limits(), request=False, now=T0)
    assert made == ["TransactWriteItems", "BatchGetItem"]


def test_a_turn_that_loses_each_roomy_shard_to_other_turns_is_refused_after_three_tries(
    aws: Any, monkeypatch: pytest.MonkeyPatch, backoff: Backoff, capsys: pytest.CaptureFixture[str]
) -> None:
    """The read finds room, and another turn takes it before this one's write, every time."""
    gate = admission(aws, global_limits=Limits(0, 2_000), shards=2)
    made = calls(
        aws,
        monkeypatch,
        lambda operation: canceled("ConditionalCheckFailed") if operation == "TransactWriteItems" else None,
    )
    with pytest.raises(BudgetExhausted):
        gate.admit("k", Charge(0, 100), Limits(), request=False, now=T0)
    assert made == ["TransactWriteItems", "BatchGetItem"] * 2 + ["TransactWriteItems"]
    assert limited(capsys) == ["global_tokens"]


@pytest.mark.parametrize("shards", [2, 4])
def test_a_busy_write_tries_again_on_each_other_shard_alike(
    aws: Any, monkeypatch: pytest.MonkeyPatch, backoff: Backoff, shards: int
) -> None:
    """After a throttled write the turn goes to another shard, any of the others as likely."""
    gate = admission(aws, global_limits=Limits(0, 10_000), shards=shards)
    tried: list[list[str]] = []
    for offset in range(shards - 1):
        asked = draw(monkeypatch, shards - 1, offset, offset)
        made: list[str] = []

        def throttled(made: list[str] = made, **request: Any) -> None:
            made.append(request["TransactItems"][0]["Update"]["Key"]["pk"]["S"])
            raise error("ProvisionedThroughputExceededException")

        monkeypatch.setattr(gate._db, "transact_write_items", throttled)
        with pytest.raises(Busy):
            gate.admit("k", Charge(1, 1), Limits(), request=False, now=T0)
        assert asked == [shards, shards - 1, shards - 1]
        tried.append(made)
    keys = [shard_key(shard) for shard in range(shards)]
    assert all(len(made) == 3 and all(a != b for a, b in itertools.pairwise(made)) for made in tried)
    assert all(key in keys for made in tried for key in made)
    assert sorted(made[1] for made in tried) == sorted(keys[: shards - 1])  # every other shard, once each
    assert backoff.sleeps == pytest.approx([0.0125, 0.025] * (shards - 1))
    assert backoff.spans == [(0.005, 0.02)] * (2 * (shards - 1))


def test_a_throttled_admission_tries_again_and_passes(
    aws: Any, monkeypatch: pytest.MonkeyPatch, backoff: Backoff
) -> None:
    gate = admission(aws, global_limits=Limits(0, 10_000), shards=4)
    made = calls(aws, monkeypatch, failing("TransactWriteItems", error("ThrottlingException")))
    gate.admit("k", Charge(1, 1), Limits(100, 100), now=T0)
    assert made == ["TransactWriteItems"] * 2
    assert spent(aws, "TB#k") == (1, 1)
    assert backoff.sleeps == pytest.approx([0.0125])


# --------------------------------------------------------------------------- what a refusal says


def test_the_callers_refusal_names_the_budget_the_turn_does_not_fit(
    aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = admission(aws)
    gate.admit("k", Charge(600, 100), Limits(1_000, 1_000), request=False, now=T0)
    made = calls(aws, monkeypatch)
    cases = [
        ("k", Charge(401, 900), Limits(1_000, 1_000), "tokens"),  # the money left is exactly enough
        ("k", Charge(401, 5_000), Limits(1_000, 0), "tokens"),  # no money budget: money never refuses
        ("fresh", Charge(1, 2), Limits(1_000, 1), "money"),  # one nano-dollar a day, never spent yet
    ]
    for key, charge, limits, limit in cases:
        with pytest.raises(RateLimited) as refused:
            gate.admit(key, charge, limits, request=False, now=T0 + 0.5)
        assert refused.value.limit == limit
        assert refused.value.retry_after == 86_400 - int(T0) % 86_400
        assert refused.value.headers == {"Retry-After": str(86_400 - int(T0) % 86_400)}
    assert made == ["TransactWriteItems"] * 3  # no second try, no read
    assert limited(capsys) == ["tokens", "tokens", "money"]


def test_each_refusal_is_counted_under_its_limit_once(
    aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = admission(aws, global_limits=Limits(0, 1_000), window=1)
    gate.admit("k", Charge(1, 1), Limits(), now=T0)
    made = calls(aws, monkeypatch)
    with pytest.raises(RateLimited):
        gate.admit("k", Charge(1, 1), Limits(), now=T0)  # DynamoDB refuses: the window is spent
    with pytest.raises(RateLimited):
        gate.admit("k", Charge(1, 1), Limits(), now=T0)  # this container knows it now: no call
    with pytest.raises(BudgetExhausted):
        gate.admit("other", Charge(1, 1_000), Limits(), now=T0)  # one shard: nothing to read
    assert made == ["TransactWriteItems"] * 2
    assert limited(capsys) == ["requests", "requests", "global_tokens"]


@pytest.mark.parametrize(
    "failure",
    [
        canceled("None", "None"),  # cancelled, and no action says why
        ClientError(
            {"Error": {"Code": "TransactionCanceledException", "Message": "?"}}, "TransactWriteItems"
        ),
        canceled("ValidationError", "None"),
        error("ValidationException"),
    ],
    ids=["no-reason", "no-reasons-at-all", "invalid-action", "invalid-request"],
)
def test_a_failure_that_is_no_refusal_is_raised_as_it_is(
    aws: Any, monkeypatch: pytest.MonkeyPatch, failure: ClientError
) -> None:
    gate = admission(aws)
    made = calls(aws, monkeypatch, failing("TransactWriteItems", failure))
    with pytest.raises(ClientError) as raised:
        gate.admit("k", Charge(1, 1), Limits(100, 100), now=T0)
    assert raised.value is failure and made == ["TransactWriteItems"]


def test_without_a_time_the_admission_and_the_days_use_read_the_clock(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: T0)
    gate = admission(aws)
    gate.admit("k", Charge(3, 4), Limits(100, 100))
    assert spent(aws, "TB#k") == (3, 4)  # T0's day
    assert gate.day_use("k", Limits(100, 100)) == DayUse(3, 4, Limits(100, 100), 86_400 - int(T0) % 86_400)


# --------------------------------------------------------------------------- settling


def test_settling_at_the_reservation_writes_nothing_and_one_counter_is_one_plain_add(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = admission(aws)
    exact = gate.admit("k", Charge(10, 10), Limits(100, 100), request=False, now=T0)
    cheaper = gate.admit("k", Charge(10, 10), Limits(100, 100), request=False, now=T0)
    made = calls(aws, monkeypatch)
    exact.settle(Charge(10, 10))
    assert made == []
    cheaper.settle(Charge(4, 5))
    assert made == ["UpdateItem"]
    assert spent(aws, "TB#k") == (14, 15)


@pytest.mark.parametrize(
    "held",
    [
        error("ThrottlingException"),
        canceled("TransactionConflict", "None"),
        ClientError(
            {"Error": {"Code": "TransactionCanceledException", "Message": "?"}}, "TransactWriteItems"
        ),
    ],
    ids=["throttled", "conflict", "cancelled-for-no-reason-given"],
)
def test_settling_tries_three_times_then_adds_to_each_counter_alone(
    aws: Any, monkeypatch: pytest.MonkeyPatch, backoff: Backoff, held: ClientError
) -> None:
    """A settlement writes no condition, so a cancelled one can only have met other writes: try again."""
    gate = admission(aws, global_limits=Limits(10_000, 10_000))
    ticket = gate.admit("k", Charge(600, 900), Limits(1_000, 1_000), now=T0)
    made = calls(aws, monkeypatch, failing("TransactWriteItems", held, held, held))
    ticket.settle(Charge(100, 200))
    assert made == ["TransactWriteItems"] * 3 + ["UpdateItem"] * 2
    assert spent(aws, "TB#k") == spent(aws, "GB#all") == (100, 200)
    assert backoff.sleeps == pytest.approx([0.0075, 0.015, 0.03])
    assert backoff.spans == [(0.5, 1.0)] * 3


@pytest.mark.parametrize(
    "failure", [canceled("ValidationError", "None"), error("ValidationException")], ids=["action", "request"]
)
def test_settling_raises_at_once_what_no_retry_would_change(
    aws: Any, monkeypatch: pytest.MonkeyPatch, backoff: Backoff, failure: ClientError
) -> None:
    gate = admission(aws, global_limits=Limits(10_000, 10_000))
    ticket = gate.admit("k", Charge(600, 900), Limits(1_000, 1_000), now=T0)
    made = calls(aws, monkeypatch, failing("TransactWriteItems", failure))
    with pytest.raises(ClientError) as raised:
        ticket.settle(Charge(100, 200))
    assert raised.value is failure and made == ["TransactWriteItems"] and backoff.sleeps == []


def test_one_counters_add_is_tried_five_times_while_throttled_and_no_more(
    aws: Any, monkeypatch: pytest.MonkeyPatch, backoff: Backoff
) -> None:
    gate = admission(aws)
    first, second, third = (
        gate.admit("k", Charge(10, 10), Limits(100, 100), request=False, now=T0) for _ in range(3)
    )
    throttled = error("ProvisionedThroughputExceededException")
    made = calls(aws, monkeypatch, failing("UpdateItem", *[throttled] * 4))
    first.settle(Charge(4, 5))
    assert made == ["UpdateItem"] * 5 and spent(aws, "TB#k") == (24, 25)
    assert backoff.sleeps == pytest.approx([0.015, 0.03, 0.06, 0.12])
    assert backoff.spans == [(0.5, 1.0)] * 4
    made = calls(aws, monkeypatch, failing("UpdateItem", *[throttled] * 5))
    with pytest.raises(ClientError):
        second.settle(Charge(4, 5))
    assert made == ["UpdateItem"] * 5
    made = calls(aws, monkeypatch, failing("UpdateItem", error("ValidationException")))
    with pytest.raises(ClientError):
        third.settle(Charge(4, 5))
    assert made == ["UpdateItem"]

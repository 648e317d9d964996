"""The request window against DynamoDB (moto), drawn as a turn draws it (claude_chat.admission):
exact counts, windows, header fields, and refusals that cost nothing."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.stub import Stubber

from claude_chat.admission import Admission, Charge, Limits
from claude_chat.errors import RateLimited
from claude_chat.rate_limiter import _SPENT_WINDOWS_KEPT, RateLimitDecision, RateLimiter

WINDOW = 60
T0 = 1_800_000_000.0  # a window boundary: 1_800_000_000 is a multiple of 60


@pytest.fixture
def limiter(aws) -> RateLimiter:
    return RateLimiter(aws, os.environ["TABLE_NAME"], limit=3, window_seconds=WINDOW)


@pytest.fixture
def admission(aws, limiter: RateLimiter) -> Admission:
    off = Limits()
    return Admission(
        aws, os.environ["TABLE_NAME"], limiter, global_limits=off, shards=1, pool=ThreadPoolExecutor(2)
    )


def consume(admission: Admission, key: str, now: float) -> RateLimitDecision:
    """One request drawn from the key's window, then the window as the turn's headers show it."""
    try:
        admission.admit(key, Charge(), Limits(), now=now)
    except RateLimited as refused:
        if (
            refused.limit != "requests"
            or refused.headers["Retry-After"] != refused.headers["RateLimit-Reset"]
        ):
            raise
        return RateLimitDecision(
            False, 3, int(refused.headers["RateLimit-Remaining"]), WINDOW, refused.retry_after
        )
    return admission.limiter.peek(key, now=now)


def test_admits_exactly_the_limit_then_refuses(admission: Admission) -> None:
    decisions = [consume(admission, "198.51.100.7", now=T0 + 1) for _ in range(5)]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
    assert [d.allowed for d in decisions][3:] == [False, False]


def test_budgets_are_per_ip(admission: Admission) -> None:
    for _ in range(3):
        assert consume(admission, "198.51.100.7", now=T0).remaining >= 0
    assert not consume(admission, "198.51.100.7", now=T0).allowed
    assert consume(admission, "198.51.100.8", now=T0).remaining == 2
    assert consume(admission, "2001:db8::1", now=T0).remaining == 2


def test_a_new_window_restores_the_budget(admission: Admission) -> None:
    for _ in range(4):
        consume(admission, "198.51.100.7", now=T0 + 59)
    assert not consume(admission, "198.51.100.7", now=T0 + 59.5).allowed
    assert consume(admission, "198.51.100.7", now=T0 + WINDOW).remaining == 2


def test_reset_is_seconds_until_the_window_ends_never_a_timestamp(admission: Admission) -> None:
    assert consume(admission, "198.51.100.7", now=T0 + 45.2).reset_after == 15
    assert consume(admission, "198.51.100.7", now=T0 + 59.9).reset_after == 1
    consume(admission, "198.51.100.7", now=T0 + 59.9)
    refused = consume(admission, "198.51.100.7", now=T0 + 50.5)
    assert (refused.allowed, refused.reset_after) == (False, 10)


def test_headers_carry_draft_10_and_seed_fields(admission: Admission) -> None:
    decision = consume(admission, "198.51.100.7", now=T0 + 20)
    assert decision.headers() == {
        "RateLimit-Policy": '"chat";q=3;w=60',
        "RateLimit": '"chat";r=2;t=40',
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "2",
        "RateLimit-Reset": "40",
    }


def test_peek_reads_the_window_without_drawing_on_it(admission: Admission, limiter: RateLimiter) -> None:
    assert limiter.peek("198.51.100.7", now=T0).remaining == 3
    consume(admission, "198.51.100.7", now=T0)
    assert [limiter.peek("198.51.100.7", now=T0 + 1).remaining for _ in range(3)] == [2, 2, 2]
    assert limiter.peek("198.51.100.7", now=T0 + WINDOW).remaining == 3  # the next window is whole
    for _ in range(2):
        consume(admission, "198.51.100.7", now=T0)
    spent = limiter.peek("198.51.100.7", now=T0 + 30)
    assert (spent.allowed, spent.remaining, spent.reset_after) == (False, 0, 30)


def test_counters_expire_after_their_window(admission: Admission, aws) -> None:
    consume(admission, "198.51.100.7", now=T0 + 5)
    item = aws.get_item(
        TableName=os.environ["TABLE_NAME"],
        Key={"pk": {"S": "RL#198.51.100.7"}, "sk": {"S": f"W#{int(T0)}"}},
    )["Item"]
    assert int(item["hits"]["N"]) == 1
    assert int(T0) + WINDOW < int(item["expires_at"]["N"]) <= int(T0) + WINDOW + 120


def test_the_last_request_a_window_holds_is_still_allowed(admission: Admission, limiter: RateLimiter) -> None:
    for _ in range(2):
        consume(admission, "198.51.100.7", now=T0)
    last = limiter.peek("198.51.100.7", now=T0)
    assert (last.allowed, last.remaining) == (True, 1)


def test_a_spent_window_is_refused_until_it_ends(limiter: RateLimiter) -> None:
    assert limiter.spent(T0 + 45.5) == RateLimitDecision(False, 3, 0, WINDOW, 15)


def test_a_request_is_drawn_by_one_conditional_add_that_expires_after_its_window(
    limiter: RateLimiter,
) -> None:
    """The request as DynamoDB gets it (the admission adds TableName): the exact expressions."""
    assert limiter.draw("198.51.100.7", T0 + 5) == {
        "Key": {"pk": {"S": "RL#198.51.100.7"}, "sk": {"S": f"W#{int(T0)}"}},
        "UpdateExpression": "ADD hits :one SET expires_at = :exp",
        "ConditionExpression": "attribute_not_exists(hits) OR hits < :limit",
        "ExpressionAttributeValues": {
            ":one": {"N": "1"},
            ":limit": {"N": "3"},
            ":exp": {"N": str(int(T0) + WINDOW + 60)},
        },
    }


def stubbed_limiter() -> tuple[RateLimiter, Stubber]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    return RateLimiter(client, "t", limit=3, window_seconds=WINDOW), Stubber(client)


def test_peek_reads_the_hits_alone_strongly_consistent_at_the_time_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A usage read right after a turn sees that turn's request: a consistent read, of `hits` only."""
    monkeypatch.setattr(time, "time", lambda: T0 + 20.5)
    limiter, stubber = stubbed_limiter()
    stubber.add_response(
        "get_item",
        {"Item": {"hits": {"N": "1"}}},
        {
            "TableName": "t",
            "Key": {"pk": {"S": "RL#k"}, "sk": {"S": f"W#{int(T0)}"}},
            "ProjectionExpression": "hits",
            "ConsistentRead": True,
        },
    )
    with stubber:
        assert limiter.peek("k") == RateLimitDecision(True, 3, 2, WINDOW, 40)
    stubber.assert_no_pending_responses()


def test_a_container_remembers_the_latest_spent_windows_only(limiter: RateLimiter) -> None:
    """The memory of spent windows is bounded: past _SPENT_WINDOWS_KEPT keys, the oldest goes first."""
    keys = [f"k{n}" for n in range(_SPENT_WINDOWS_KEPT + 1)]
    for key in keys:
        limiter.saw_spent(key, T0)
    assert not limiter.known_spent(keys[0], T0)
    assert all(limiter.known_spent(key, T0) for key in keys[1:])
    assert not limiter.known_spent(keys[-1], T0 + WINDOW)  # the next window is whole

"""The rate limiter against DynamoDB (moto): exact counts, windows, and header fields."""

from __future__ import annotations

import os

import pytest

from claude_chat.rate_limiter import RateLimiter

WINDOW = 60
T0 = 1_800_000_000.0  # a window boundary: 1_800_000_000 is a multiple of 60


@pytest.fixture
def limiter(aws) -> RateLimiter:
    return RateLimiter(aws, os.environ["TABLE_NAME"], limit=3, window_seconds=WINDOW)


def test_admits_exactly_the_limit_then_refuses(limiter: RateLimiter) -> None:
    decisions = [limiter.consume("198.51.100.7", now=T0 + 1) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]


def test_budgets_are_per_ip(limiter: RateLimiter) -> None:
    for _ in range(3):
        assert limiter.consume("198.51.100.7", now=T0).allowed
    assert not limiter.consume("198.51.100.7", now=T0).allowed
    assert limiter.consume("198.51.100.8", now=T0).allowed
    assert limiter.consume("2001:db8::1", now=T0).allowed


def test_a_new_window_restores_the_budget(limiter: RateLimiter) -> None:
    for _ in range(4):
        limiter.consume("198.51.100.7", now=T0 + 59)
    assert not limiter.consume("198.51.100.7", now=T0 + 59.5).allowed
    assert limiter.consume("198.51.100.7", now=T0 + WINDOW).allowed


def test_reset_is_seconds_until_the_window_ends_never_a_timestamp(limiter: RateLimiter) -> None:
    decision = limiter.consume("198.51.100.7", now=T0 + 45.2)
    assert decision.reset_after == 15
    assert limiter.consume("198.51.100.7", now=T0 + 59.9).reset_after == 1


def test_headers_carry_draft_10_and_seed_fields(limiter: RateLimiter) -> None:
    decision = limiter.consume("198.51.100.7", now=T0 + 20)
    assert decision.headers() == {
        "RateLimit-Policy": '"chat";q=3;w=60',
        "RateLimit": '"chat";r=2;t=40',
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "2",
        "RateLimit-Reset": "40",
    }


def test_counters_expire_after_their_window(limiter: RateLimiter, aws) -> None:
    limiter.consume("198.51.100.7", now=T0 + 5)
    item = aws.get_item(
        TableName=os.environ["TABLE_NAME"],
        Key={"pk": {"S": "RL#198.51.100.7"}, "sk": {"S": f"W#{int(T0)}"}},
    )["Item"]
    assert int(item["hits"]["N"]) == 1
    assert int(T0) + WINDOW < int(item["expires_at"]["N"]) <= int(T0) + WINDOW + 120

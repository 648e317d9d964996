"""The usage meter on the page: what it shows for each answer of GET /api/usage, and when it asks.

Most answers here are the browser's own stand-ins (Playwright routes), so every case of the
contract's reply can be shown exactly: money where a money budget is set, else tokens (the replies
without `money` are a server from before budgets in money). The last tests read a real server's
figures after a real turn, in money and in tokens; signed-in figures are in test_sign_in.py.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.dev_server import DevServer, start_dev_server
from tests.e2e.conftest import open_chat

BROWSER_IP = "127.0.0.1"  # the client key of every page these tests open (budgets are per key)
RESETS = r", resets in (\d+ h )?\d+ min"


def usage_reply(remaining: int, reset: int, limit: int | None = 200_000) -> dict[str, Any]:
    return {
        "requests": {"limit": 20, "remaining": 19, "reset": 42},
        "tokens": {
            "limit": limit,
            "used": 0 if limit is None else limit - remaining,
            "remaining": remaining,
            "reset": reset,
        },
    }


def money_reply(remaining: float | None, reset: int, limit: float | None = 1.0) -> dict[str, Any]:
    """A server with budgets in money: its token budget is set too (the meter shows the money)."""
    spent = 0.0 if limit is None or remaining is None else limit - remaining
    return {
        **usage_reply(150_000, reset),
        "money": {"limit": limit, "spent": spent, "remaining": remaining, "reset": reset, "currency": "USD"},
    }


def serve_usage(page: Page, replies: list[dict[str, Any]]) -> list[str]:
    """Answers GET /api/usage with each reply in turn (the last one again after); returns the calls."""
    calls: list[str] = []

    def fulfil(route: Route) -> None:
        calls.append(route.request.method)
        reply = replies[min(len(calls), len(replies)) - 1]
        route.fulfill(status=200, content_type="application/json", body=json.dumps(reply))

    page.route("**/api/usage", fulfil)
    return calls


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("textbox", name="Message").press("Enter")
    expect(page.get_by_role("button", name="Send")).to_be_visible()


def test_the_meter_shows_tokens_left_and_when_they_reset(page: Page, chat_server: DevServer) -> None:
    calls = serve_usage(page, [usage_reply(198_766, 5 * 3600 + 12 * 60 + 5)])
    open_chat(page, chat_server.base_url)
    meter = page.locator("#usage")
    expect(meter).to_have_text("198,766 tokens left today, resets in 5 h 13 min")
    assert page.locator("#usage-meter").evaluate("m => [m.max, m.value]") == [200_000, 198_766]
    assert calls == ["GET"]


def test_the_meter_moves_after_each_turn(page: Page, chat_server: DevServer) -> None:
    calls = serve_usage(page, [usage_reply(5_000, 3_000), usage_reply(4_321, 2_950)])
    open_chat(page, chat_server.base_url)
    expect(page.locator("#usage")).to_have_text("5,000 tokens left today, resets in 50 min")
    send(page, "Spend some")
    expect(page.locator("#usage")).to_have_text("4,321 tokens left today, resets in 50 min")
    assert len(calls) == 2


def test_the_countdown_runs_and_a_new_day_fetches_a_new_budget(page: Page, chat_server: DevServer) -> None:
    calls = serve_usage(page, [usage_reply(10, 90), usage_reply(200_000, 86_400)])
    page.clock.install()
    open_chat(page, chat_server.base_url)
    expect(page.locator("#usage")).to_have_text("10 tokens left today, resets in 2 min")
    page.clock.run_for(35_000)
    expect(page.locator("#usage")).to_have_text("10 tokens left today, resets in 1 min")
    page.clock.run_for(65_000)
    expect(page.locator("#usage")).to_have_text("200,000 tokens left today, resets in 24 h 0 min")
    assert len(calls) == 2


def test_no_daily_budget_says_so(page: Page, chat_server: DevServer) -> None:
    serve_usage(page, [usage_reply(0, 0, limit=None)])
    open_chat(page, chat_server.base_url)
    expect(page.locator("#usage")).to_have_text("No daily limit")
    expect(page.locator("#usage-meter")).to_be_hidden()


def test_a_money_budget_shows_money_left_on_the_meter(page: Page, chat_server: DevServer) -> None:
    calls = serve_usage(page, [money_reply(0.83, 5 * 3600 + 12 * 60 + 5), money_reply(0.8234, 5 * 3600)])
    open_chat(page, chat_server.base_url)
    expect(page.locator("#usage")).to_have_text("$0.83 of $1.00 left today, resets in 5 h 13 min")
    meter = page.get_by_role("meter", name="$0.83 of $1.00 left today, resets in 5 h 13 min")
    assert meter.evaluate("m => [m.min, m.max, m.value]") == [0, 1.0, 0.83]
    send(page, "Spend some")
    # Rounded down: the meter never says more is left than there is.
    expect(page.locator("#usage")).to_have_text("$0.82 of $1.00 left today, resets in 5 h 0 min")
    assert page.locator("#usage-meter").evaluate("m => [m.max, m.value]") == [1.0, 0.8234]
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("remaining", "limit", "shown"),
    [
        (0.004, 1.0, "Less than $0.01 of $1.00 left today"),
        (0.0, 1.0, "$0.00 of $1.00 left today"),
        (12.5, 25.0, "$12.50 of $25.00 left today"),
        (0.0042, 0.005, "$0.004 of $0.005 left today"),  # a budget under a cent shows its own digits
    ],
)
def test_money_is_shown_to_the_cent_or_finer(
    page: Page, chat_server: DevServer, remaining: float, limit: float, shown: str
) -> None:
    serve_usage(page, [money_reply(remaining, 600, limit)])
    open_chat(page, chat_server.base_url)
    expect(page.locator("#usage")).to_have_text(f"{shown}, resets in 10 min")
    assert page.locator("#usage-meter").evaluate("m => [m.max, m.value]") == [limit, remaining]


def test_money_budget_off_falls_back_to_tokens(page: Page, chat_server: DevServer) -> None:
    serve_usage(
        page, [{**money_reply(None, 3_000, limit=None), "tokens": usage_reply(4_321, 3_000)["tokens"]}]
    )
    open_chat(page, chat_server.base_url)
    expect(page.locator("#usage")).to_have_text("4,321 tokens left today, resets in 50 min")
    assert page.locator("#usage-meter").evaluate("m => [m.max, m.value]") == [200_000, 4_321]


def test_neither_budget_says_there_is_no_daily_limit(page: Page, chat_server: DevServer) -> None:
    serve_usage(
        page, [{**money_reply(None, 0, limit=None), "tokens": usage_reply(0, 0, limit=None)["tokens"]}]
    )
    open_chat(page, chat_server.base_url)
    expect(page.locator("#usage")).to_have_text("No daily limit")
    expect(page.locator("#usage-meter")).to_be_hidden()


def test_a_server_without_the_route_shows_no_meter_and_no_error(page: Page, chat_server: DevServer) -> None:
    page.route("**/api/usage", lambda route: route.fulfill(status=404, body='{"code":"not_found"}'))
    open_chat(page, chat_server.base_url)
    expect(page.locator("#usage")).to_be_hidden()
    expect(page.get_by_role("alert")).to_be_hidden()


def server_usage(server: DevServer) -> dict[str, Any]:
    """GET /api/usage as the browser's client key sees it."""
    response = server.client(BROWSER_IP).get("/api/usage")
    response.raise_for_status()
    return dict(response.json())


def meter_value(page: Page) -> float:
    return float(page.locator("#usage-meter").evaluate("m => m.value"))


def test_after_a_turn_the_meter_shows_the_money_left(page: Page, chat_server: DevServer) -> None:
    open_chat(page, chat_server.base_url)  # make dev's default: DAILY_BUDGET_USD=1.00 (and a token budget)
    expect(page.locator("#usage-text")).to_have_text(
        re.compile(rf"^\$\d\.\d\d of \$1\.00 left today{RESETS}$")
    )
    before = meter_value(page)
    send(page, "Spend a little money [standin:words=40]")
    page.wait_for_function("before => document.getElementById('usage-meter').value < before", arg=before)
    money = server_usage(chat_server)["money"]
    assert money["limit"] == 1.0 and 0 < money["remaining"] < before
    left = math.floor(money["remaining"] * 100 + 1e-6) / 100
    expect(page.locator("#usage-text")).to_have_text(
        re.compile(rf"^\${left:.2f} of \$1\.00 left today{RESETS}$")
    )
    assert page.locator("#usage-meter").evaluate("m => [m.max, m.value]") == [1.0, money["remaining"]]


@pytest.fixture(scope="module")
def tokens_only_server() -> Iterator[DevServer]:
    """Budgets in tokens only: the money budget off."""
    server = start_dev_server(
        DAILY_BUDGET_USD="0", DAILY_TOKEN_BUDGET="50000", RATE_LIMIT_MAX="1000", DEV_WORKERS="1"
    )
    yield server
    server.stop()


def test_after_a_turn_without_a_money_budget_the_meter_shows_tokens(
    page: Page, tokens_only_server: DevServer
) -> None:
    open_chat(page, tokens_only_server.base_url)
    expect(page.locator("#usage-text")).to_have_text(re.compile(rf"^50,000 tokens left today{RESETS}$"))
    send(page, "Spend some tokens [standin:words=40]")
    expect(page.locator("#usage-text")).not_to_have_text(re.compile(r"^50,000 "))
    figures = server_usage(tokens_only_server)
    assert figures["money"]["limit"] is None
    tokens = figures["tokens"]
    assert tokens["used"] > 0 and tokens["remaining"] == 50_000 - tokens["used"]
    expect(page.locator("#usage-text")).to_have_text(
        re.compile(rf"^{tokens['remaining']:,} tokens left today{RESETS}$")
    )
    assert page.locator("#usage-meter").evaluate("m => [m.max, m.value]") == [50_000, tokens["remaining"]]

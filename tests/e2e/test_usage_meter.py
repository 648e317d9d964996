"""The usage meter on the page: what it shows for each answer of GET /api/usage, and when it asks.

These answers are the browser's own stand-ins (Playwright routes), so every case of the contract's
reply can be shown exactly; the figures of a real server after a real turn are in test_sign_in.py.
"""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page, Route, expect

from tests.dev_server import DevServer
from tests.e2e.conftest import open_chat


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
    expect(page.locator("#usage")).to_have_text("No daily token limit")
    expect(page.locator("#usage-meter")).to_be_hidden()


def test_a_server_without_the_route_shows_no_meter_and_no_error(page: Page, chat_server: DevServer) -> None:
    page.route("**/api/usage", lambda route: route.fulfill(status=404, body='{"code":"not_found"}'))
    open_chat(page, chat_server.base_url)
    expect(page.locator("#usage")).to_be_hidden()
    expect(page.get_by_role("alert")).to_be_hidden()

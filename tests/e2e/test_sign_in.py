"""Sign-in on the chat page, as a person does it: `DEV_SIGN_IN=1 make dev`, the local OpenID
provider's own login form filled in Chromium, back on the page signed in, a streamed reply, the
usage meter, and Sign out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from tests.dev_server import DevServer, start_dev_server
from tests.e2e.conftest import open_chat


@pytest.fixture(scope="module")
def sign_in_server() -> Iterator[DevServer]:
    server = start_dev_server(DEV_SIGN_IN="1", RATE_LIMIT_MAX="1000", DAILY_TOKEN_BUDGET="50000")
    yield server
    server.stop()


def issuer_of(server: DevServer) -> str:
    return str(httpx.get(f"{server.base_url}/config.json", timeout=10).json()["issuer"])


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("textbox", name="Message").press("Enter")


def sign_in(page: Page, server: DevServer, login: str = "ada", password: str = "lovelace") -> None:
    """From the page's Sign in button through the provider's form and back."""
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{issuer_of(server)}/**")
    expect(page.get_by_role("heading", name="Sign in to Claude chat")).to_be_visible()
    page.get_by_label("Username").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.base_url}/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def stored(page: Page, storage: str) -> dict[str, str]:
    return dict(page.evaluate(f"() => Object.fromEntries(Object.entries({storage}))"))


def test_the_page_asks_for_sign_in_and_sends_nothing_before(page: Page, sign_in_server: DevServer) -> None:
    api_calls: list[str] = []
    page.on("request", lambda request: "/api/" in request.url and api_calls.append(request.url))
    open_chat(page, sign_in_server.base_url)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(page.get_by_role("textbox", name="Message")).to_be_disabled()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(page.locator("#empty-hint")).to_have_text("Sign in to chat with Claude.")
    expect(page.locator("#usage")).to_be_hidden()
    assert api_calls == [], "a signed-out page called the API (it would only be refused)"


def test_sign_in_chat_and_sign_out(page: Page, sign_in_server: DevServer) -> None:
    authorizations: list[str | None] = []

    def record(request: Request) -> None:
        if "/api/" in request.url:
            authorizations.append(request.headers.get("authorization"))

    page.on("request", record)
    open_chat(page, sign_in_server.base_url)
    sign_in(page, sign_in_server)

    # Back on the page, signed in: who it is, Sign out, and a clean address bar.
    expect(page.get_by_text("Signed in as Ada Lovelace")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_be_hidden()
    assert page.url == f"{sign_in_server.base_url}/", "the code and state were left in the address bar"

    send(page, "Hello, signed in [standin:delta_delay=0.02][standin:words=20]")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.locator(".message.assistant .content").last).to_have_text(
        re.compile(r"^Stand-in reply to: Hello, signed in w1 .* w14$")
    )

    # Every API call carried the access token: an RS256 JWT of the provider, for the API.
    assert authorizations, "the page made no API call"
    assert all(value and value.startswith("Bearer ") for value in authorizations), authorizations
    token = authorizations[-1].removeprefix("Bearer ")  # type: ignore[union-attr]
    claims = _claims(token)
    assert claims["sub"] == "ada"
    assert claims["aud"] == "claude-chat-api"
    assert claims["iss"] == issuer_of(sign_in_server)

    # Tokens live in this tab's sessionStorage, never in localStorage.
    assert not any(token in value for value in stored(page, "localStorage").values())
    assert any(token in value for value in stored(page, "sessionStorage").values())

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{issuer_of(sign_in_server)}/**")
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(f"{sign_in_server.base_url}/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(page.locator(".message")).to_have_count(0)
    assert not any(token in value for value in stored(page, "sessionStorage").values())

    # Signed out at the provider too: signing in again asks for the password again.
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Password")).to_be_visible()


def test_a_wrong_password_stays_on_the_provider(page: Page, sign_in_server: DevServer) -> None:
    open_chat(page, sign_in_server.base_url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("not her password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    assert page.url.startswith(issuer_of(sign_in_server))


def test_cancelling_sign_in_comes_back_signed_out_and_says_so(page: Page, sign_in_server: DevServer) -> None:
    open_chat(page, sign_in_server.base_url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(f"{sign_in_server.base_url}/")
    expect(page.get_by_role("alert")).to_have_text("Sign-in was cancelled.")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.url == f"{sign_in_server.base_url}/"


def test_anonymous_make_dev_has_no_sign_in(chat_page: Page) -> None:
    expect(chat_page.get_by_role("button", name="Sign in")).to_be_hidden()
    expect(chat_page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(chat_page.get_by_role("textbox", name="Message")).to_be_enabled()


def _claims(token: str) -> dict[str, Any]:
    import base64

    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))

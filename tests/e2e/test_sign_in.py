"""Sign-in on the chat page, as a person does it: `DEV_SIGN_IN=1 make dev`, the local OpenID
provider's own login form filled in Chromium, back on the page signed in, a streamed reply, the
usage meter, and Sign out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.dev_server import DevServer, start_dev_server
from tests.e2e.conftest import open_chat


@pytest.fixture(scope="module")
def sign_in_server() -> Iterator[DevServer]:
    # Budgets in tokens only (the money budget off): the meter shows tokens, as the group budgets are.
    server = start_dev_server(
        DEV_SIGN_IN="1", RATE_LIMIT_MAX="1000", DAILY_TOKEN_BUDGET="50000", DAILY_BUDGET_USD="0"
    )
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


def usage_shown(page: Page) -> tuple[int, int]:
    """(tokens left, daily limit) as the meter shows them."""
    text = page.locator("#usage-text").text_content() or ""
    match = re.fullmatch(r"([\d,]+) tokens? left today, resets in (\d+ h )?\d+ min", text)
    assert match, text
    limit = page.locator("#usage-meter").evaluate("m => m.max")
    return int(match[1].replace(",", "")), int(limit)


def server_usage(server: DevServer, authorization: str) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/api/usage", headers={"Authorization": authorization}, timeout=10)
    response.raise_for_status()
    return dict(response.json())


def test_the_usage_meter_moves_after_a_signed_in_turn(page: Page, sign_in_server: DevServer) -> None:
    authorizations: list[str] = []
    page.on(
        "request",
        lambda request: (
            "/api/usage" in request.url and authorizations.append(request.headers["authorization"])
        ),
    )
    open_chat(page, sign_in_server.base_url)
    sign_in(page, sign_in_server, "ada", "lovelace")
    expect(page.locator("#usage")).to_be_visible()
    before, limit = usage_shown(page)
    assert limit == 50_000  # DAILY_TOKEN_BUDGET: ada is in no group
    send(page, "Count my tokens [standin:words=30]")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.locator("#usage-text")).not_to_have_text(re.compile(rf"^{before:,} "))
    after, _ = usage_shown(page)
    assert after < before
    # The meter shows what the server charged ada for the turn, as the server itself reports it.
    figures = server_usage(sign_in_server, authorizations[-1])["tokens"]
    assert figures["remaining"] == after
    assert figures["used"] == limit - after


def test_a_user_in_the_pro_group_sees_the_group_budget(page: Page, sign_in_server: DevServer) -> None:
    open_chat(page, sign_in_server.base_url)
    sign_in(page, sign_in_server, "grace", "hopper")
    expect(page.get_by_text("Signed in as Grace Hopper")).to_be_visible()
    expect(page.locator("#usage")).to_be_visible()
    assert usage_shown(page)[1] == 1_000_000  # make dev's GROUP_TOKEN_BUDGETS for "pro"


def test_a_refused_token_is_renewed_once_and_the_turn_goes_through(
    page: Page, sign_in_server: DevServer
) -> None:
    open_chat(page, sign_in_server.base_url)
    sign_in(page, sign_in_server)
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    sent: list[str] = []

    def refuse_the_first(route: Route) -> None:
        headers = dict(route.request.headers)
        sent.append(headers.get("authorization", ""))
        if len(sent) == 1:
            headers["authorization"] = sent[0][:-8] + "AAAAAAAA"  # a tampered signature: the server says 401
        route.continue_(headers=headers)

    page.route("**/api/chat/history/stream", refuse_the_first)
    send(page, "Still me?")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    # (ada's conversation follows her from test to test, so the stand-in may number the turn.)
    expect(page.locator(".message.assistant .content").last).to_have_text(
        re.compile(r"^Stand-in reply to: Still me\?")
    )
    expect(page.get_by_role("alert")).to_be_hidden()
    assert len(sent) == 2
    assert sent[1] != sent[0], "the retry did not carry a renewed access token"
    assert _claims(sent[1].removeprefix("Bearer "))["sub"] == "ada"


def test_a_token_refused_for_good_asks_to_sign_in_again_and_keeps_the_message(
    page: Page, sign_in_server: DevServer
) -> None:
    open_chat(page, sign_in_server.base_url)
    sign_in(page, sign_in_server)
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    page.route(
        "**/api/**",
        lambda route: route.continue_(
            headers={**route.request.headers, "authorization": "Bearer not.a.token"}
        ),
    )
    send(page, "Are you there?")
    notice = page.get_by_role("alert")
    expect(notice).to_contain_text("Your sign-in has expired. Sign in again to go on.")
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(page.locator(".message")).to_have_count(0)
    expect(page.get_by_role("textbox", name="Message")).to_have_value("Are you there?")
    page.unroute("**/api/**")
    # The provider still knows the person: no password this time, straight back, the text still there.
    notice.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{sign_in_server.base_url}/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.get_by_text("Signed in as Ada Lovelace")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_have_value("Are you there?")


def test_the_access_token_is_renewed_before_it_expires(page: Page) -> None:
    # Tokens of 65 s: the page renews them a minute before they expire, so after about 5 s.
    server = start_dev_server(
        DEV_SIGN_IN="1", RATE_LIMIT_MAX="1000", OIDC_ACCESS_TOKEN_TTL="65", DEV_WORKERS="1"
    )
    try:
        open_chat(page, server.base_url)
        sign_in(page, server)
        first = page.evaluate(TOKEN_IN_SESSION_STORAGE)
        assert first
        page.wait_for_function(
            f"() => ({TOKEN_IN_SESSION_STORAGE})() !== {json.dumps(first)}", timeout=20_000
        )
        renewed = page.evaluate(TOKEN_IN_SESSION_STORAGE)
        assert _claims(renewed)["exp"] > _claims(first)["exp"]
        sent: list[str] = []
        page.on(
            "request",
            lambda r: "/api/chat/history/stream" in r.url and sent.append(r.headers["authorization"]),
        )
        send(page, "After the renewal")
        expect(page.locator(".message.assistant .content").last).to_have_text(
            "Stand-in reply to: After the renewal"
        )
        assert sent == [f"Bearer {renewed}"]
        expect(page.get_by_text("Signed in as Ada Lovelace")).to_be_visible()
    finally:
        server.stop()


TOKEN_IN_SESSION_STORAGE = """() => {
    const key = Object.keys(sessionStorage).find(k => k.startsWith('claude-chat.oidc.user:'));
    return key ? JSON.parse(sessionStorage.getItem(key)).access_token : null;
}"""


def test_sign_out_with_a_logout_url_sends_cognito_s_parameters(page: Page, sign_in_server: DevServer) -> None:
    """config.json's logoutUrl (make web-config's, for Cognito) is where Sign out goes."""
    base = sign_in_server.base_url
    config = {
        "issuer": issuer_of(sign_in_server),
        "clientId": "claude-chat-local",
        "logoutUrl": f"{base}/logout",
    }
    page.route("**/config.json", lambda route: route.fulfill(json=config))
    logouts: list[str] = []

    def logout(route: Route) -> None:
        logouts.append(route.request.url)
        route.fulfill(status=302, headers={"Location": f"{base}/"})

    page.route(f"{base}/logout?*", logout)
    open_chat(page, base)
    sign_in(page, sign_in_server)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    for _ in range(50):  # the page forgets the user first, then goes to the sign-out page
        if logouts:
            break
        page.wait_for_timeout(100)
    assert len(logouts) == 1
    query = parse_qs(urlsplit(logouts[0]).query)
    assert query["client_id"] == ["claude-chat-local"]
    assert query["logout_uri"] == [f"{base}/"]
    # The sign-out page sends the browser back to the chat page: read its storage once it is there.
    page.wait_for_url(lambda url: url.startswith(f"{base}/") and "/logout" not in url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    assert not any("access_token" in value for value in stored(page, "sessionStorage").values())


def test_a_provider_without_end_session_signs_out_on_the_page(page: Page, sign_in_server: DevServer) -> None:
    def without_end_session(route: Route) -> None:
        response = route.fetch()
        document = response.json()
        document.pop("end_session_endpoint", None)
        route.fulfill(response=response, json=document)

    page.route("**/.well-known/openid-configuration", without_end_session)
    open_chat(page, sign_in_server.base_url)
    sign_in(page, sign_in_server)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_be_disabled()
    assert navigations == [], "the page left for a sign-out page the provider does not have"
    assert not any("access_token" in value for value in stored(page, "sessionStorage").values())


def test_anonymous_make_dev_has_no_sign_in(chat_page: Page) -> None:
    expect(chat_page.get_by_role("button", name="Sign in")).to_be_hidden()
    expect(chat_page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(chat_page.get_by_role("textbox", name="Message")).to_be_enabled()


def _claims(token: str) -> dict[str, Any]:
    import base64

    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))

"""The chat page, used as a person would: typing, streaming, stopping, reloading, being refused."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.dev_server import DevServer, start_dev_server
from tests.e2e.conftest import StaticSite, collecting_dialogs, open_chat

STREAM_ROUTE = "**/api/chat/history/stream"


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("textbox", name="Message").press("Enter")


def wait_until_idle(page: Page) -> None:
    expect(page.get_by_role("button", name="Send")).to_be_visible()


def messages(page: Page) -> list[tuple[str, str]]:
    """(role, text) of each message on the page, in order."""
    rows = page.locator(".message").evaluate_all(
        "nodes => nodes.map(n => [n.classList.contains('user') ? 'user' : 'assistant',"
        " n.querySelector('.content').textContent])"
    )
    return [(role, text) for role, text in rows]


def last_reply(page: Page) -> str:
    return page.locator(".message.assistant .content").last.text_content() or ""


def session_token(page: Page) -> str | None:
    token = page.evaluate("() => localStorage.getItem('claude-chat.session')")
    return str(token) if token else None


def open_id(page: Page) -> str | None:
    """The conversation the page's URL names, or None (a new chat)."""
    match = re.search(r"#/c/([A-Za-z0-9_-]+)$", page.url)
    return match[1] if match else None


def server_history(server: DevServer, token: str, conversation: str) -> list[dict[str, str]]:
    """A conversation's messages on the server ([] when it does not exist)."""
    response = httpx.get(
        f"{server.base_url}/api/conversations/{conversation}", headers={"X-Session-Id": token}, timeout=10
    )
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return list(response.json()["messages"])


def server_conversations(server: DevServer, token: str) -> list[dict[str, str]]:
    response = httpx.get(f"{server.base_url}/api/conversations", headers={"X-Session-Id": token}, timeout=10)
    response.raise_for_status()
    return list(response.json()["conversations"])


def test_a_streamed_reply_appears_progressively(chat_page: Page) -> None:
    send(chat_page, "Tell me a story [standin:delta_delay=0.08][standin:words=25]")
    stop = chat_page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    lengths = []
    while stop.is_visible():
        lengths.append(len(last_reply(chat_page)))
        time.sleep(0.03)
    wait_until_idle(chat_page)
    final = last_reply(chat_page)
    growing = [n for n in lengths if n]
    assert len(set(growing)) >= 8, f"the reply did not grow piece by piece: {lengths}"
    assert growing == sorted(growing)
    assert growing[0] < len(final) / 2
    assert final.startswith("Stand-in reply to: Tell me a story w1 ")
    assert final.endswith(" w18")
    assert messages(chat_page)[0] == ("user", "Tell me a story [standin:delta_delay=0.08][standin:words=25]")


def test_stop_keeps_the_partial_reply(chat_page: Page, chat_server: DevServer) -> None:
    httpx.delete(f"{chat_server.standin_url}/_standin/disconnects", timeout=5)
    send(chat_page, "Go on [standin:delta_delay=0.05][standin:words=300]")
    expect(chat_page.locator(".message.assistant .content")).to_contain_text(" w8 ")
    chat_page.get_by_role("button", name="Stop").click()
    wait_until_idle(chat_page)
    shown = last_reply(chat_page)
    time.sleep(0.5)
    assert last_reply(chat_page) == shown, "the reply kept growing after Stop"
    assert 8 <= len(shown.split()) < 300
    expect(chat_page.locator(".message.assistant .note")).to_have_text("Stopped.")
    disconnects = httpx.get(f"{chat_server.standin_url}/_standin/disconnects", timeout=5).json()
    assert disconnects, "Stop did not close the upstream stream"

    chat_page.reload()
    expect(chat_page.locator("body")).to_have_attribute("data-ready", "true")
    restored = messages(chat_page)
    assert restored[0] == ("user", "Go on [standin:delta_delay=0.05][standin:words=300]")
    assert restored[1][0] == "assistant"
    assert restored[1][1].startswith(shown.strip())
    assert len(restored[1][1].split()) < 300


def test_reload_restores_the_conversation(chat_page: Page) -> None:
    send(chat_page, "First question")
    wait_until_idle(chat_page)
    send(chat_page, "Second question")
    wait_until_idle(chat_page)
    before, token = messages(chat_page), session_token(chat_page)
    assert [role for role, _ in before] == ["user", "assistant", "user", "assistant"]
    assert before[3][1] == "Stand-in reply to: Second question (turn 2)"

    chat_page.reload()
    expect(chat_page.locator("body")).to_have_attribute("data-ready", "true")
    assert messages(chat_page) == before
    assert session_token(chat_page) == token


def test_new_chat_starts_an_empty_one_and_keeps_the_old(chat_page: Page, chat_server: DevServer) -> None:
    send(chat_page, "Remember this")
    wait_until_idle(chat_page)
    token, kept = session_token(chat_page), open_id(chat_page)
    assert token and kept and len(server_history(chat_server, token, kept)) == 2

    chat_page.get_by_role("button", name="New chat").click()
    expect(chat_page.locator(".message")).to_have_count(0)
    expect(chat_page.locator("#empty-hint")).to_be_visible()
    assert open_id(chat_page) is None
    assert len(server_history(chat_server, token, kept)) == 2
    expect(chat_page.get_by_role("link", name="Remember this")).to_be_visible()
    chat_page.reload()
    expect(chat_page.locator("body")).to_have_attribute("data-ready", "true")
    expect(chat_page.locator(".message")).to_have_count(0)
    expect(chat_page.get_by_role("link", name="Remember this")).to_be_visible()


def test_new_chat_during_a_reply_stops_it(chat_page: Page, chat_server: DevServer) -> None:
    send(chat_page, "Earlier turn")
    wait_until_idle(chat_page)
    old = open_id(chat_page)
    send(chat_page, "Long one [standin:delta_delay=0.05][standin:words=300]")
    expect(chat_page.locator(".message.assistant .content").last).to_contain_text(" w5 ")
    chat_page.get_by_role("button", name="New chat").click()
    expect(chat_page.locator(".message")).to_have_count(0)
    wait_until_idle(chat_page)
    time.sleep(1)  # the server saves a left stream's partial reply once it notices
    token = session_token(chat_page)
    assert token and old
    # The old conversation keeps what was written before New chat stopped it, as Stop would.
    history = server_history(chat_server, token, old)
    assert [m["content"] for m in history[:3]] == [
        "Earlier turn",
        "Stand-in reply to: Earlier turn",
        "Long one [standin:delta_delay=0.05][standin:words=300]",
    ]
    assert len(history) == 4 and len(history[3]["content"].split()) < 300
    assert [c["id"] for c in server_conversations(chat_server, token)] == [old]
    chat_page.reload()
    expect(chat_page.locator("body")).to_have_attribute("data-ready", "true")
    expect(chat_page.locator(".message")).to_have_count(0)


def test_an_upstream_error_explains_itself_and_keeps_the_text(
    chat_page: Page, chat_server: DevServer
) -> None:
    send(chat_page, "Kept before")
    wait_until_idle(chat_page)
    token, conversation = session_token(chat_page), open_id(chat_page)
    assert token and conversation
    before = server_history(chat_server, token, conversation)

    send(chat_page, "Are you there? [standin:status=529]")
    notice = chat_page.get_by_role("alert")
    expect(notice).to_contain_text("Claude is busy right now")
    expect(notice.get_by_role("button", name="Retry")).to_be_visible()
    expect(chat_page.get_by_role("textbox", name="Message")).to_have_value(
        "Are you there? [standin:status=529]"
    )
    assert [role for role, _ in messages(chat_page)] == ["user", "assistant"]
    assert server_history(chat_server, token, conversation) == before


def test_an_error_mid_reply_takes_the_turn_back(chat_page: Page, chat_server: DevServer) -> None:
    send(chat_page, "Start then fail [standin:fail_after=4][standin:delta_delay=0.05]")
    expect(chat_page.get_by_role("alert")).to_contain_text("Claude is busy right now")
    expect(chat_page.locator(".message")).to_have_count(0)
    expect(chat_page.get_by_role("textbox", name="Message")).to_have_value(
        "Start then fail [standin:fail_after=4][standin:delta_delay=0.05]"
    )
    assert open_id(chat_page) is None  # the URL names no conversation the server does not keep
    expect(chat_page.locator("#conversation-list a")).to_have_count(0)
    token = session_token(chat_page)
    assert token is None or server_conversations(chat_server, token) == []


def test_a_network_error_offers_retry_that_sends_the_same_message(chat_page: Page) -> None:
    attempts: list[str] = []

    def refuse_once(route: Route) -> None:
        attempts.append(route.request.method)
        if len(attempts) == 1:
            route.abort("connectionrefused")
        else:
            route.continue_()

    chat_page.route(STREAM_ROUTE, refuse_once)
    send(chat_page, "Through a flaky network")
    notice = chat_page.get_by_role("alert")
    expect(notice).to_contain_text("Could not reach the chat service")
    expect(chat_page.get_by_role("textbox", name="Message")).to_have_value("Through a flaky network")

    notice.get_by_role("button", name="Retry").click()
    wait_until_idle(chat_page)
    expect(chat_page.locator(".message.assistant .content")).to_have_text(
        "Stand-in reply to: Through a flaky network"
    )
    assert messages(chat_page)[0] == ("user", "Through a flaky network")
    expect(chat_page.locator(".message")).to_have_count(2)
    expect(chat_page.get_by_role("textbox", name="Message")).to_have_value("")
    expect(notice).to_be_hidden()
    assert attempts == ["POST", "POST"]


MARKDOWN = """# Plan

Some **bold**, *emphasis*, `inline code` and a [link](https://example.com/docs).

1. first
2. second
   - nested

```python
print("hi")
```

| name | value |
|------|------:|
| a    | 1     |

> quoted"""


def test_replies_render_as_markdown(chat_page: Page) -> None:
    send(chat_page, f"[standin:echo=raw] {MARKDOWN}")
    wait_until_idle(chat_page)
    reply = chat_page.locator(".message.assistant .content").last
    expect(reply.locator("h2")).to_have_text("Plan")
    expect(reply.locator("strong")).to_have_text("bold")
    expect(reply.locator("em")).to_have_text("emphasis")
    expect(reply.locator("p > code")).to_have_text("inline code")
    link = reply.get_by_role("link", name="link")
    expect(link).to_have_attribute("href", "https://example.com/docs")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(reply.locator("ol > li")).to_have_count(2)
    expect(reply.locator("ol > li").nth(1).locator("ul > li")).to_have_text("nested")
    expect(reply.locator("pre > code.language-python")).to_have_text('print("hi")')
    expect(reply.locator("table th")).to_have_text(["name", "value"])
    expect(reply.locator("table td")).to_have_text(["a", "1"])
    expect(reply.locator("blockquote")).to_have_text("quoted")
    # The user's own message is shown as typed, not rendered.
    expect(chat_page.locator(".message.user .content").last).to_contain_text("# Plan\n\nSome **bold**")


XSS_PAYLOADS = """<img src=x onerror=alert(1)>
<script>alert(2)</script>
<svg onload=alert(3)></svg>
<a href="javascript:alert(4)">html link</a>
[md link](javascript:alert(5))
[upper](JAVASCRIPT:alert(6))
[spaced]( javascript:alert(7))
[data](data:text/html,<script>alert(8)</script>)
![pixel](https://tracker.invalid/pixel.png)
<iframe src="javascript:alert(9)"></iframe>
**<img src=x onerror=alert(10)>**"""


def _assert_inert(page: Page, requests: list[str]) -> None:
    reply = page.locator(".message.assistant .content").last
    expect(reply).to_contain_text("<img src=x onerror=alert(1)>")  # shown as text
    for tag in ("img", "script", "svg", "iframe", "object", "embed"):
        expect(page.locator(f".message {tag}")).to_have_count(0)
    hrefs = page.locator(".message a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs == ["https://tracker.invalid/pixel.png"], hrefs
    handlers = page.locator(".message *").evaluate_all(
        "nodes => nodes.flatMap(n => [...n.attributes].map(a => a.name))"
        ".filter(name => name.startsWith('on'))"
    )
    assert handlers == []
    assert not any("tracker.invalid" in url for url in requests), "the reply made the browser fetch an image"


def test_xss_payloads_in_a_reply_stay_inert(chat_page: Page) -> None:
    requests: list[str] = []
    chat_page.on("request", lambda request: requests.append(request.url))
    with collecting_dialogs(chat_page) as dialogs:
        send(chat_page, f"[standin:echo=raw] {XSS_PAYLOADS}")
        wait_until_idle(chat_page)
        _assert_inert(chat_page, requests)
        chat_page.reload()  # the same text, now from the stored history
        expect(chat_page.locator("body")).to_have_attribute("data-ready", "true")
        _assert_inert(chat_page, requests)
        chat_page.locator(".message a").first.click()  # an image link opens a tab; it runs nothing here
        time.sleep(0.3)
    assert dialogs == []


def test_keyboard_enter_sends_and_shift_enter_makes_a_new_line(chat_page: Page) -> None:
    box = chat_page.get_by_role("textbox", name="Message")
    expect(box).to_be_focused()
    box.press_sequentially("line one")
    box.press("Shift+Enter")
    box.press_sequentially("line two")
    expect(box).to_have_value("line one\nline two")
    expect(chat_page.locator(".message")).to_have_count(0)
    box.press("Enter")
    wait_until_idle(chat_page)
    assert messages(chat_page)[0] == ("user", "line one\nline two")
    expect(box).to_have_value("")
    expect(box).to_be_focused()

    box.fill("Long [standin:delta_delay=0.05][standin:words=300]  ")  # trailing spaces are not kept
    box.press("Enter")
    expect(chat_page.locator(".message.assistant .content").last).to_contain_text(" w3 ")
    expect(box).to_have_value("")
    expect(box).to_be_focused()  # typing the next message while a reply streams
    box.press("Escape")
    wait_until_idle(chat_page)
    expect(chat_page.locator(".message.assistant .note")).to_have_text("Stopped.")


def test_controls_are_labelled_and_focus_is_visible(chat_page: Page) -> None:
    expect(chat_page.get_by_role("log", name="Conversation")).to_be_visible()
    expect(chat_page.get_by_role("button", name="New chat")).to_be_visible()
    chat_page.get_by_role("textbox", name="Message").focus()
    chat_page.keyboard.press("Tab")
    expect(chat_page.get_by_role("button", name="Send")).to_be_focused()
    outline = chat_page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline[0] != "none" and float(outline[1].removesuffix("px")) >= 2, outline


def test_readable_on_a_phone_sized_screen(chat_page: Page) -> None:
    chat_page.set_viewport_size({"width": 360, "height": 640})
    long_line = "x" * 300
    send(
        chat_page,
        f"[standin:echo=raw] Wide things:\n\n```\n{long_line}\n```\n\nhttps://example.com/{long_line}",
    )
    wait_until_idle(chat_page)
    page_width = chat_page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert page_width[0] <= page_width[1], f"the page scrolls sideways: {page_width}"
    code_scrolls = chat_page.locator(".message pre").evaluate("pre => pre.scrollWidth > pre.clientWidth")
    assert code_scrolls, "a long code line should scroll inside its block"
    for control in ("Send", "New chat"):
        box = chat_page.get_by_role("button", name=control).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["y"] + box["height"] <= 640
        assert box["height"] >= 40, f"{control} is too small to tap: {box}"


def test_the_page_works_from_another_origin(
    page: Page, page_site: StaticSite, chat_server: DevServer
) -> None:
    api_origins: set[str] = set()
    page.on(
        "request",
        lambda request: (
            "/api/" in request.url and api_origins.add(re.sub(r"(//[^/]+).*", r"\1", request.url))
        ),
    )
    open_chat(page, page_site.origin)
    send(page, "Hello across origins")
    wait_until_idle(page)
    expect(page.locator(".message.assistant .content")).to_have_text(
        "Stand-in reply to: Hello across origins"
    )
    assert api_origins == {chat_server.base_url}

    page.reload()  # GET with X-Session-Id: a preflighted request, and the token came from an exposed header
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator(".message")).to_have_count(2)
    # PATCH and DELETE, preflighted too.
    page.get_by_role("button", name="Options for Hello across origins").click()
    page.get_by_role("textbox", name="Title").fill("Renamed across origins")
    page.get_by_role("button", name="Rename", exact=True).click()
    expect(page.get_by_role("link", name="Renamed across origins")).to_be_visible()
    page.get_by_role("button", name="Options for Renamed across origins").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export as JSON").click()
    assert (
        download.value.suggested_filename == "renamed-across-origins.json"
    )  # the server's name, exposed by CORS
    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(".message")).to_have_count(0)
    expect(page.locator("#conversation-list a")).to_have_count(0)
    expect(page.get_by_role("alert")).to_be_hidden()

    # What a page's script may read of a cross-origin reply is only what CORS exposes.
    readable = page.evaluate(
        """async (url) => {
            const response = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                               body: JSON.stringify({message: "headers?"})});
            const names = ["x-session-id", "ratelimit", "ratelimit-policy", "ratelimit-limit",
                           "ratelimit-remaining", "ratelimit-reset"];
            return Object.fromEntries(names.map(name => [name, response.headers.get(name)]));
        }""",
        f"{chat_server.base_url}/api/chat/history",
    )
    assert all(readable.values()), readable


def test_an_origin_not_allowed_is_refused_by_the_browser(page: Page, page_site: StaticSite) -> None:
    # Same files and port, but 127.0.0.1 rather than localhost: an origin CORS_ALLOW_ORIGINS does not list.
    page.goto(page_site.origin.replace("localhost", "127.0.0.1"))
    expect(page.get_by_role("alert")).to_contain_text("Could not load your conversations")


@pytest.fixture(scope="module")
def tight_server() -> Iterator[DevServer]:
    """A server of its own, as the browser's budget is 127.0.0.1's: two requests an hour."""
    server = start_dev_server(RATE_LIMIT_MAX="2", DEV_WORKERS="1")
    yield server
    server.stop()


def test_a_rate_limit_refusal_counts_down_and_disables_send(page: Page, tight_server: DevServer) -> None:
    browser_ip = "127.0.0.1"
    with tight_server.client(browser_ip) as client:
        for _ in range(2):
            assert client.post("/api/chat", json={"message": "spend"}).status_code == 200
        refused = client.post("/api/chat", json={"message": "one more"})
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])

    page.clock.install()
    open_chat(page, tight_server.base_url)
    send(page, "Am I allowed?")
    notice = page.get_by_role("alert")
    expect(notice).to_contain_text("You can send again in")
    shown = _seconds_in(notice.text_content() or "")
    assert retry_after - 3 <= shown <= retry_after
    send_button = page.get_by_role("button", name="Send")
    expect(send_button).to_be_disabled()
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_have_value("Am I allowed?")
    expect(page.locator(".message")).to_have_count(0)
    box.press("Enter")  # refused on the page itself while the countdown runs
    expect(page.locator(".message")).to_have_count(0)

    page.clock.run_for(5_000)
    assert shown - 6 <= _seconds_in(notice.text_content() or "") <= shown - 4

    page.clock.fast_forward(shown * 1000)
    expect(notice).to_be_hidden()
    expect(send_button).to_be_enabled()
    expect(box).to_have_value("Am I allowed?")


def _seconds_in(text: str) -> int:
    match = re.search(r"in (?:(\d+):)?(\d+):(\d\d)\.|in (\d+) s\.", text)
    assert match, text
    if match[4]:
        return int(match[4])
    hours, minutes, seconds = int(match[1] or 0), int(match[2]), int(match[3])
    return hours * 3600 + minutes * 60 + seconds


def test_a_spent_daily_token_budget_says_so_and_counts_down_to_midnight(page: Page) -> None:
    server = start_dev_server(DAILY_TOKEN_BUDGET="30", RATE_LIMIT_MAX="1000", DEV_WORKERS="1")
    try:
        open_chat(page, server.base_url)
        send(page, "Spend it [standin:words=40]")
        wait_until_idle(page)
        send(page, "One more")
        notice = page.get_by_role("alert")
        expect(notice).to_contain_text("You have used today's allowance of replies.")
        until_midnight = 86_400 - int(time.time()) % 86_400
        assert abs(_seconds_in(notice.text_content() or "") - until_midnight) <= 3
        expect(page.get_by_role("button", name="Send")).to_be_disabled()
        expect(page.get_by_role("textbox", name="Message")).to_have_value("One more")
    finally:
        server.stop()


def test_a_spent_daily_money_budget_says_so_too(page: Page) -> None:
    # Less than any turn's worst case: the first turn is refused (429, limit "money") before Claude.
    server = start_dev_server(DAILY_BUDGET_USD="0.000001", RATE_LIMIT_MAX="1000", DEV_WORKERS="1")
    try:
        open_chat(page, server.base_url)
        expect(page.locator("#usage-text")).to_contain_text("of $0.000001 left today")
        send(page, "Too dear")
        notice = page.get_by_role("alert")
        expect(notice).to_contain_text("You have used today's allowance of replies.")
        until_midnight = 86_400 - int(time.time()) % 86_400
        assert abs(_seconds_in(notice.text_content() or "") - until_midnight) <= 3
        expect(page.get_by_role("button", name="Send")).to_be_disabled()
        expect(page.get_by_role("textbox", name="Message")).to_have_value("Too dear")
        assert server.standin_requests() == []
    finally:
        server.stop()


def test_show_earlier_messages_loads_older_pages_in_order(chat_page: Page, chat_server: DevServer) -> None:
    """A conversation longer than one page: the newest page on reload, older ones on demand."""
    token = None
    for n in range(1, 6):
        headers = {"X-Session-Id": token} if token else {}
        response = httpx.post(
            f"{chat_server.base_url}/api/chat/history",
            json={"message": f"turn {n}"},
            headers=headers,
            timeout=10,
        )
        token = response.json()["session"]
    assert token
    whole = [(m["role"], m["content"]) for m in server_history(chat_server, token, "default")]
    assert len(whole) == 10

    def two_turns_a_page(route: Route) -> None:
        url = route.request.url
        if route.request.method == "GET":
            url += ("&" if "?" in url else "?") + "limit=2"
        route.continue_(url=url)

    # The seed's route wrote to the caller's `default` conversation: the page opens it by its address.
    chat_page.route(re.compile(r".*/api/conversations/default(\?.*)?$"), two_turns_a_page)
    chat_page.evaluate("token => localStorage.setItem('claude-chat.session', token)", token)
    chat_page.goto(f"{chat_server.base_url}/#/c/default")
    chat_page.reload()
    expect(chat_page.locator("body")).to_have_attribute("data-ready", "true")
    assert messages(chat_page) == whole[6:]
    earlier = chat_page.get_by_role("button", name="Show earlier messages")
    expect(earlier).to_be_visible()

    earlier.click()
    expect(chat_page.locator(".message")).to_have_count(8)
    assert messages(chat_page) == whole[2:]
    expect(earlier).to_be_focused()  # still there: the next click is one keypress away

    chat_page.keyboard.press("Enter")
    expect(chat_page.locator(".message")).to_have_count(10)
    assert messages(chat_page) == whole
    expect(earlier).to_be_hidden()
    expect(chat_page.get_by_role("log", name="Conversation")).to_be_focused()

    chat_page.get_by_role("button", name="New chat").click()
    expect(chat_page.locator(".message")).to_have_count(0)
    expect(earlier).to_be_hidden()
    chat_page.go_back()  # Back to the conversation, its newest page again
    expect(chat_page.locator(".message")).to_have_count(4)
    expect(earlier).to_be_visible()


@pytest.fixture(scope="module")
def aws_like_server() -> Iterator[DevServer]:
    """Disconnects hidden from the stream function, as in AWS: only the page's stop request can stop it."""
    server = start_dev_server(DEV_HIDE_DISCONNECTS="1")
    yield server
    server.stop()


def test_stop_reaches_claude_where_the_function_cannot_see_the_client_leave(
    page: Page, aws_like_server: DevServer
) -> None:
    open_chat(page, aws_like_server.base_url)
    httpx.delete(f"{aws_like_server.standin_url}/_standin/disconnects", timeout=5)
    stops: list[str] = []
    page.on(
        "request",
        lambda request: stops.append(request.url) if request.url.endswith("/api/chat/stop") else None,
    )
    send(page, "Go on [standin:delta_delay=0.2][standin:words=300]")
    expect(page.locator(".message.assistant .content")).to_contain_text(" w3 ")
    page.get_by_role("button", name="Stop").click()
    stopped_at = time.monotonic()
    disconnects: list = []
    while time.monotonic() - stopped_at < 5 and not disconnects:
        disconnects = httpx.get(f"{aws_like_server.standin_url}/_standin/disconnects", timeout=5).json()
        time.sleep(0.1)
    assert stops, "the page sent no stop request"
    assert disconnects, "Claude's stream went on after Stop"
    assert time.monotonic() - stopped_at < 2.5
    shown = last_reply(page)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    restored = messages(page)
    assert restored[1][0] == "assistant"
    assert restored[1][1].startswith(shown.strip()[:10])
    assert len(restored[1][1].split()) < 300

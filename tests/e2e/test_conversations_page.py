"""Many conversations on the page: the sidebar, addresses in the URL, rename, delete, export,
regenerate and edit, themes and the phone's drawer, in Chromium against `make dev`."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, Route, expect

from tests.dev_server import DevServer
from tests.e2e.conftest import collecting_dialogs, open_chat

XSS_TITLE = "<img src=x onerror=alert(1)>"


def send(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()


def messages(page: Page) -> list[tuple[str, str]]:
    rows = page.locator(".message:not([hidden])").evaluate_all(
        "nodes => nodes.map(n => [n.classList.contains('user') ? 'user' : 'assistant',"
        " n.querySelector('.content').textContent])"
    )
    return [(role, text) for role, text in rows]


def open_id(page: Page) -> str | None:
    """The conversation the URL names, or None (a new chat)."""
    match = re.search(r"#/c/([A-Za-z0-9_-]+)$", page.url)
    return match[1] if match else None


def titles(page: Page) -> list[str]:
    return page.locator("#conversation-list a").all_text_contents()


def current_title(page: Page) -> list[str]:
    return page.locator("#conversation-list a[aria-current='page']").all_text_contents()


def token_of(page: Page) -> str:
    token = page.evaluate("() => localStorage.getItem('claude-chat.session')")
    assert token, "the page holds no session"
    return str(token)


def server_conversation(server: DevServer, token: str, conversation: str) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/api/conversations/{conversation}", headers={"X-Session-Id": token}, timeout=10
    )


def server_messages(server: DevServer, token: str, conversation: str) -> list[tuple[str, str]]:
    response = server_conversation(server, token, conversation)
    response.raise_for_status()
    return [(m["role"], m["content"]) for m in response.json()["messages"]]


def options(page: Page, title: str) -> None:
    page.get_by_role("button", name=f"Options for {title}", exact=True).click()
    expect(page.get_by_role("dialog")).to_be_visible()


def test_new_chat_keeps_the_old_one_and_the_list_switches_between_them(
    chat_page: Page, chat_server: DevServer
) -> None:
    expect(chat_page.locator("#list-empty")).to_be_visible()
    send(chat_page, "Alpha question")
    alpha = open_id(chat_page)
    assert alpha and titles(chat_page) == ["Alpha question"]
    assert current_title(chat_page) == ["Alpha question"]
    expect(chat_page.get_by_role("heading", name="Alpha question")).to_be_visible()

    chat_page.get_by_role("button", name="New chat").click()
    expect(chat_page.locator(".message")).to_have_count(0)
    assert open_id(chat_page) is None
    assert titles(chat_page) == ["Alpha question"] and current_title(chat_page) == []
    expect(chat_page.get_by_role("textbox", name="Message")).to_be_focused()

    send(chat_page, "Beta question")
    beta = open_id(chat_page)
    assert beta and beta != alpha
    assert titles(chat_page) == ["Beta question", "Alpha question"]
    assert current_title(chat_page) == ["Beta question"]

    chat_page.get_by_role("link", name="Alpha question").click()
    expect(chat_page.locator(".message")).to_have_count(2)
    assert open_id(chat_page) == alpha
    assert messages(chat_page) == [
        ("user", "Alpha question"),
        ("assistant", "Stand-in reply to: Alpha question"),
    ]
    assert current_title(chat_page) == ["Alpha question"]

    send(chat_page, "Alpha again")  # continues Alpha, which goes to the top
    assert titles(chat_page) == ["Alpha question", "Beta question"]
    token = token_of(chat_page)
    assert server_messages(chat_server, token, alpha) == messages(chat_page)
    assert [m[1] for m in server_messages(chat_server, token, beta)] == [
        "Beta question",
        "Stand-in reply to: Beta question",
    ]

    # The list is a list: arrow keys move between the conversations.
    chat_page.get_by_role("link", name="Alpha question").focus()
    chat_page.keyboard.press("ArrowDown")
    expect(chat_page.get_by_role("link", name="Beta question")).to_be_focused()
    chat_page.keyboard.press("ArrowUp")
    expect(chat_page.get_by_role("link", name="Alpha question")).to_be_focused()


def test_reload_back_forward_and_a_link_reopen_conversations(chat_page: Page, browser: Browser) -> None:
    send(chat_page, "First conversation")
    first = open_id(chat_page)
    chat_page.get_by_role("button", name="New chat").click()
    send(chat_page, "Second conversation")
    second = open_id(chat_page)
    shown = messages(chat_page)

    chat_page.reload()
    expect(chat_page.locator("body")).to_have_attribute("data-ready", "true")
    expect(chat_page.locator(".message")).to_have_count(2)
    assert open_id(chat_page) == second and messages(chat_page) == shown
    assert current_title(chat_page) == ["Second conversation"]

    chat_page.get_by_role("link", name="First conversation").click()
    expect(chat_page.locator(".message .content").first).to_have_text("First conversation")
    chat_page.go_back()
    expect(chat_page.locator(".message .content").first).to_have_text("Second conversation")
    assert open_id(chat_page) == second and current_title(chat_page) == ["Second conversation"]
    chat_page.go_forward()
    expect(chat_page.locator(".message .content").first).to_have_text("First conversation")
    assert open_id(chat_page) == first

    # A link opens it again for the same person (another tab of the same browser)...
    same_person = chat_page.context.new_page()
    open_chat(same_person, chat_page.url)
    expect(same_person.locator(".message .content").first).to_have_text("First conversation")
    same_person.close()

    # ...and for anyone else it is a conversation that does not exist: nothing of it is shown.
    stranger = browser.new_context()
    try:
        other = open_chat(stranger.new_page(), chat_page.url)
        expect(other.get_by_role("alert")).to_contain_text("That conversation was not found")
        expect(other.locator(".message")).to_have_count(0)
        assert titles(other) == [] and open_id(other) is None
    finally:
        stranger.close()


def test_rename_and_delete_with_confirmation(chat_page: Page, chat_server: DevServer) -> None:
    send(chat_page, "Keep me")
    kept = open_id(chat_page)
    chat_page.get_by_role("button", name="New chat").click()
    send(chat_page, "Rename me")
    renamed = open_id(chat_page)
    token = token_of(chat_page)

    options(chat_page, "Rename me")
    title_box = chat_page.get_by_role("textbox", name="Title")
    expect(title_box).to_have_value("Rename me")
    expect(title_box).to_be_focused()
    title_box.fill("  Trip to Lisbon  ")
    title_box.press("Enter")
    expect(chat_page.get_by_role("dialog")).to_be_hidden()
    assert titles(chat_page) == ["Trip to Lisbon", "Keep me"]
    expect(chat_page.locator("#conversation-title")).to_have_text("Trip to Lisbon")
    expect(chat_page.get_by_role("button", name="Options for Trip to Lisbon")).to_be_focused()
    assert chat_page.title().startswith("Trip to Lisbon")
    assert renamed and server_conversation(chat_server, token, renamed).json()["title"] == "Trip to Lisbon"

    # A title the server refuses (control characters): the dialog says why and stays open.
    options(chat_page, "Trip to Lisbon")
    chat_page.get_by_role("textbox", name="Title").fill("bad\u0007title")
    chat_page.get_by_role("button", name="Rename", exact=True).click()
    expect(chat_page.get_by_role("dialog").get_by_role("alert")).to_contain_text("Could not rename it.")
    chat_page.keyboard.press("Escape")
    expect(chat_page.get_by_role("dialog")).to_be_hidden()

    # Delete asks first; Cancel (the default) deletes nothing.
    options(chat_page, "Keep me")
    chat_page.get_by_role("button", name="Delete…").click()
    confirm = chat_page.get_by_role("dialog", name="Delete this conversation?")
    expect(confirm).to_contain_text("“Keep me” and all its messages will be deleted.")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    chat_page.keyboard.press("Enter")
    expect(confirm).to_be_hidden()
    assert titles(chat_page) == ["Trip to Lisbon", "Keep me"]
    assert kept and server_conversation(chat_server, token, kept).status_code == 200

    # Deleting another conversation: gone from the list and the server; the open one stays.
    options(chat_page, "Keep me")
    chat_page.get_by_role("button", name="Delete…").click()
    confirm.get_by_role("button", name="Delete", exact=True).click()
    expect(confirm).to_be_hidden()
    assert titles(chat_page) == ["Trip to Lisbon"]
    assert server_conversation(chat_server, token, kept).json()["code"] == "not_found"
    assert open_id(chat_page) == renamed
    expect(chat_page.locator(".message")).to_have_count(2)

    # Deleting the open one: a new chat takes its place.
    options(chat_page, "Trip to Lisbon")
    chat_page.get_by_role("button", name="Delete…").click()
    confirm.get_by_role("button", name="Delete", exact=True).click()
    expect(chat_page.locator(".message")).to_have_count(0)
    assert titles(chat_page) == [] and open_id(chat_page) is None
    expect(chat_page.locator("#list-empty")).to_be_visible()
    expect(chat_page.get_by_role("textbox", name="Message")).to_be_focused()
    assert server_conversation(chat_server, token, renamed).status_code == 404
    chat_page.reload()
    expect(chat_page.locator("body")).to_have_attribute("data-ready", "true")
    assert titles(chat_page) == []


def test_export_downloads_markdown_and_json(chat_page: Page, chat_server: DevServer) -> None:
    send(chat_page, "Export this, please")
    send(chat_page, "And a second turn")
    conversation = open_id(chat_page)
    assert conversation
    stored = server_messages(chat_server, token_of(chat_page), conversation)

    options(chat_page, "Export this, please")
    with chat_page.expect_download() as markdown_download:
        chat_page.get_by_role("button", name="Export as Markdown").click()
    markdown = markdown_download.value
    assert markdown.suggested_filename.endswith(".md"), markdown.suggested_filename
    text = Path(markdown.path()).read_text(encoding="utf-8")
    for _, content in stored:
        assert content in text

    with chat_page.expect_download() as json_download:
        chat_page.get_by_role("button", name="Export as JSON").click()
    exported = json_download.value
    assert exported.suggested_filename.endswith(".json"), exported.suggested_filename
    body: dict[str, Any] = json.loads(Path(exported.path()).read_text(encoding="utf-8"))
    assert body["id"] == conversation
    assert body["title"] == "Export this, please"
    assert [(m["role"], m["content"]) for m in body["messages"]] == stored == messages(chat_page)
    expect(chat_page.get_by_role("dialog").get_by_role("alert")).to_be_hidden()


def test_a_title_with_markup_stays_text(chat_page: Page) -> None:
    requests: list[str] = []
    chat_page.on("request", lambda request: requests.append(request.url))
    with collecting_dialogs(chat_page) as dialogs:
        send(chat_page, "Soon to be renamed")
        options(chat_page, "Soon to be renamed")
        chat_page.get_by_role("textbox", name="Title").fill(XSS_TITLE)
        chat_page.get_by_role("button", name="Rename", exact=True).click()
        expect(chat_page.get_by_role("dialog")).to_be_hidden()
        for _ in range(2):
            assert titles(chat_page) == [XSS_TITLE]
            expect(chat_page.locator("#conversation-title")).to_have_text(XSS_TITLE)
            options(chat_page, XSS_TITLE)
            expect(chat_page.locator("#conversation-dialog-title")).to_have_text(XSS_TITLE)
            chat_page.get_by_role("button", name="Delete…").click()
            expect(chat_page.locator("#delete-name")).to_have_text(XSS_TITLE)
            chat_page.get_by_role("button", name="Cancel").click()
            expect(chat_page.locator("img")).to_have_count(0)
            chat_page.reload()  # now from the server's list
            expect(chat_page.locator("body")).to_have_attribute("data-ready", "true")
        time.sleep(0.3)
    assert dialogs == []
    assert not any(url.endswith("/x") for url in requests), "the title made the browser fetch an image"


def test_regenerate_and_edit_replace_the_last_turn(chat_page: Page, chat_server: DevServer) -> None:
    send(chat_page, "First turn")
    send(chat_page, "Second turn")
    conversation, token = open_id(chat_page), token_of(chat_page)
    assert conversation
    expect(chat_page.get_by_role("button", name="Regenerate the last reply")).to_have_count(1)
    expect(chat_page.get_by_role("button", name="Edit your last message")).to_have_count(1)

    chat_page.get_by_role("button", name="Regenerate the last reply").click()
    expect(chat_page.get_by_role("button", name="Send", exact=True)).to_be_visible()
    shown = messages(chat_page)
    assert shown == [
        ("user", "First turn"),
        ("assistant", "Stand-in reply to: First turn"),
        ("user", "Second turn"),
        ("assistant", "Stand-in reply to: Second turn (turn 2)"),  # Claude did not see the old one
    ]
    assert server_messages(chat_server, token, conversation) == shown

    # A regenerate that fails changes nothing: the old turn is back, on the page as on the server.
    chat_page.route("**/api/chat/history/stream", lambda route: route.abort("connectionrefused"))
    chat_page.get_by_role("button", name="Regenerate the last reply").click()
    expect(chat_page.get_by_role("alert")).to_contain_text("Could not reach the chat service")
    assert messages(chat_page) == shown == server_messages(chat_server, token, conversation)
    chat_page.unroute("**/api/chat/history/stream")
    expect(chat_page.get_by_role("textbox", name="Message")).to_have_value("")  # nothing was typed

    # Edit: the text goes to the box; Cancel puts back what was there.
    box = chat_page.get_by_role("textbox", name="Message")
    box.fill("a draft")
    chat_page.get_by_role("button", name="Edit your last message").click()
    expect(box).to_have_value("Second turn")
    expect(box).to_be_focused()
    chat_page.get_by_role("button", name="Cancel edit").click()
    expect(box).to_have_value("a draft")

    chat_page.get_by_role("button", name="Edit your last message").click()
    box.fill("Second turn, edited")
    box.press("Enter")
    expect(chat_page.get_by_role("button", name="Send", exact=True)).to_be_visible()
    expect(box).to_have_value("")
    edited = messages(chat_page)
    assert edited == [
        *shown[:2],
        ("user", "Second turn, edited"),
        ("assistant", "Stand-in reply to: Second turn, edited (turn 2)"),
    ]
    assert server_messages(chat_server, token, conversation) == edited
    chat_page.reload()
    expect(chat_page.locator("body")).to_have_attribute("data-ready", "true")
    assert messages(chat_page) == edited


def test_more_conversations_pages_through_the_list(chat_page: Page, chat_server: DevServer) -> None:
    send(chat_page, "Conversation 0")
    token = token_of(chat_page)
    for n in range(1, 4):
        reply = httpx.post(
            f"{chat_server.base_url}/api/chat/history",
            json={"message": f"Conversation {n}", "conversation": f"made-by-test-{n}"},
            headers={"X-Session-Id": token},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text

    def two_a_page(route: Route) -> None:
        url = route.request.url
        route.continue_(url=url + ("&" if "?" in url else "?") + "limit=2")

    chat_page.route(re.compile(r".*/api/conversations(\?.*)?$"), two_a_page)
    chat_page.reload()
    expect(chat_page.locator("body")).to_have_attribute("data-ready", "true")
    assert titles(chat_page) == ["Conversation 3", "Conversation 2"]
    more = chat_page.get_by_role("button", name="More conversations")
    more.click()
    expect(chat_page.locator("#conversation-list a")).to_have_count(4)
    assert titles(chat_page) == ["Conversation 3", "Conversation 2", "Conversation 1", "Conversation 0"]
    expect(more).to_be_hidden()
    expect(chat_page.get_by_role("link", name="Conversation 1")).to_be_focused()


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _colours(page: Page, selector: str) -> tuple[str, str]:
    pair = page.locator(selector).first.evaluate(
        "e => { const s = getComputedStyle(e); return [s.color, s.backgroundColor]; }"
    )
    return pair[0], pair[1]


def test_the_theme_follows_the_system_setting(browser: Browser, chat_server: DevServer) -> None:
    backgrounds = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)
        try:
            page = open_chat(context.new_page(), chat_server.base_url)
            send(page, f"A {scheme} page")
            body_text, body_background = _colours(page, "body")
            backgrounds[scheme] = body_background
            assert _contrast(body_text, body_background) >= 7, (scheme, body_text, body_background)
            send_text, send_background = _colours(page, "#send")
            assert _contrast(send_text, send_background) >= 4.5, (scheme, send_text, send_background)
            muted = page.locator("#composer-help").evaluate("e => getComputedStyle(e).color")
            assert _contrast(muted, body_background) >= 4.5, (scheme, muted)
            sidebar_text = page.locator("#conversation-list a").first.evaluate(
                "e => getComputedStyle(e).color"
            )
            sidebar_background = page.locator("#sidebar").evaluate("e => getComputedStyle(e).backgroundColor")
            assert _contrast(sidebar_text, sidebar_background) >= 4.5, (scheme, sidebar_text)
        finally:
            context.close()
    assert _luminance(backgrounds["dark"]) < 0.05 < 0.8 < _luminance(backgrounds["light"]), backgrounds


def test_on_a_phone_the_sidebar_is_a_drawer(browser: Browser, chat_server: DevServer) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    try:
        page = open_chat(context.new_page(), chat_server.base_url)
        send(page, "Phone one")
        page.get_by_role("button", name="New chat").click()
        send(page, "Phone two")
        toggle = page.get_by_role("button", name="Show conversations")
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(page.get_by_role("link", name="Phone one")).to_be_hidden()
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"

        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(page.get_by_role("link", name="Phone two")).to_be_focused()  # the open conversation
        expect(page.get_by_role("link", name="Phone one")).to_be_visible()
        # The page behind is inert while the drawer is open.
        assert page.locator("#message").evaluate("e => e.closest('[inert]') !== null")
        page.keyboard.press("Escape")
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(toggle).to_be_focused()
        expect(page.get_by_role("link", name="Phone one")).to_be_hidden()

        toggle.click()
        page.get_by_role("button", name="Close conversations").click()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(toggle).to_be_focused()

        toggle.click()
        page.get_by_role("link", name="Phone one").click()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(page.locator(".message .content").first).to_have_text("Phone one")
        expect(page.get_by_role("textbox", name="Message")).to_be_focused()
        for control in ("Send", "New chat", "Show conversations"):
            box = page.get_by_role("button", name=control, exact=True).bounding_box()
            assert (
                box and box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844
            )
            assert box["height"] >= 40, f"{control} is too small to tap: {box}"
    finally:
        context.close()


def test_an_empty_reply_is_not_kept_on_the_page_as_the_server_keeps_none(
    chat_page: Page, chat_server: DevServer
) -> None:
    """Claude sometimes ends a turn with no text; the server then saves nothing (chat_turn), so the
    page must not show the turn, name the conversation in the URL or list it, nor offer to
    regenerate it (that would replace the turn before it, the server's real last one)."""

    def empty_reply(route: Route) -> None:
        # What the stream route sends for a reply of only whitespace: the turn is not saved, so
        # `turns` and `title` are those from before it (stand-in Claude never answers empty).
        body = json.loads(route.request.post_data or "{}")
        conversation = body["conversation"]
        before = server_conversation(chat_server, route.request.headers["x-session-id"], conversation)
        turns, title = (before.json()["turns"], before.json()["title"]) if before.is_success else (0, "")
        done = {
            "text": "",
            "done": True,
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 1},
            "turns": turns,
            "conversation": conversation,
            "title": title,
        }
        route.fulfill(
            status=200,
            headers={"Content-Type": "text/event-stream", "Access-Control-Allow-Origin": "*"},
            body=f'data: {{"text": "\\n\\n"}}\n\ndata: {json.dumps(done)}\n\ndata: [DONE]\n\n',
        )

    send(chat_page, "A question")  # makes the session, and a conversation to go on with
    conversation, token = open_id(chat_page), token_of(chat_page)
    assert conversation
    kept = messages(chat_page)
    chat_page.route("**/api/chat/history/stream", empty_reply)

    box = chat_page.get_by_role("textbox", name="Message")
    box.fill("Say nothing")
    box.press("Enter")
    expect(chat_page.get_by_role("alert")).to_contain_text("empty reply")
    assert messages(chat_page) == kept == server_messages(chat_server, token, conversation)
    expect(box).to_have_value("Say nothing")  # back in the box, as after any turn that was not kept
    expect(chat_page.get_by_role("button", name="Regenerate the last reply")).to_have_count(1)

    # In a new chat: no address, no entry in the list for a conversation the server does not have.
    chat_page.get_by_role("button", name="New chat").click()
    box.fill("Also nothing")
    box.press("Enter")
    expect(chat_page.get_by_role("alert")).to_contain_text("empty reply")
    assert messages(chat_page) == []
    assert open_id(chat_page) is None
    assert titles(chat_page) == ["A question"]

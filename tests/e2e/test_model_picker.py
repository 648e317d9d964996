"""The model picker: there only when the caller may choose, per conversation, by keyboard, from a phone.

`models_server` offers two models (CLAUDE_MODELS); the session's `chat_server` offers one, as a
deployment that sets nothing does. What reached Claude is read off the stand-in's record of the
requests it was sent (`/_standin/requests`), found by a tag unique to each test's message.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, Request, Route, expect

from tests.dev_server import DevServer, start_dev_server
from tests.e2e.conftest import open_chat

DEFAULT, OTHER = "claude-haiku-4-5", "claude-sonnet-4-5"
STREAM_ROUTE = "**/api/chat/history/stream"


@pytest.fixture(scope="module")
def models_server() -> Iterator[DevServer]:
    server = start_dev_server(CLAUDE_MODELS=f"{DEFAULT},{OTHER}", RATE_LIMIT_MAX="1000")
    yield server
    server.stop()


def tag() -> str:
    return uuid.uuid4().hex[:10]


def picker(page: Page) -> Locator:
    return page.get_by_role("combobox", name="Model")


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("textbox", name="Message").press("Enter")
    expect(page.get_by_role("button", name="Send")).to_be_visible()


def models_sent_to_claude(server: DevServer, text: str) -> list[str]:
    """The `model` of each request the stand-in got whose newest message is `text`, oldest first."""
    return [
        str(record["body"]["model"])
        for record in server.standin_requests()
        if isinstance(record.get("body"), dict) and last_message(record["body"]) == text
    ]


def last_message(body: dict[str, Any]) -> str:
    content = (body.get("messages") or [{}])[-1].get("content")
    if isinstance(content, list):  # blocks (the newest carries the cache breakpoint)
        return "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return str(content)


def turn_bodies(page: Page) -> list[dict[str, Any]]:
    """The body of every turn the page posts from now on (appended as they go)."""
    bodies: list[dict[str, Any]] = []

    def record(request: Request) -> None:
        if request.url.endswith("/api/chat/history/stream") and request.method == "POST":
            bodies.append(dict(request.post_data_json))

    page.on("request", record)
    return bodies


def open_id(page: Page) -> str:
    match = re.search(r"#/c/([A-Za-z0-9_-]+)$", page.url)
    assert match, page.url
    return match[1]


def test_one_model_no_picker_and_turns_name_none(page: Page, chat_server: DevServer) -> None:
    bodies = turn_bodies(page)
    open_chat(page, chat_server.base_url)
    marker = tag()
    send(page, f"Only one model {marker}")
    expect(page.locator(".message.assistant .content")).to_have_text(
        f"Stand-in reply to: Only one model {marker}"
    )
    expect(page.locator("#model-picker")).to_be_hidden()
    expect(page.get_by_role("combobox")).to_have_count(0)
    assert len(bodies) == 1 and "model" not in bodies[0], bodies
    assert models_sent_to_claude(chat_server, f"Only one model {marker}") == [
        httpx.get(f"{chat_server.base_url}/api/models", timeout=10).json()["models"][0]["id"]
    ]


def test_two_models_a_labelled_picker_the_keyboard_operates(page: Page, models_server: DevServer) -> None:
    bodies = turn_bodies(page)
    open_chat(page, models_server.base_url)
    select = picker(page)
    expect(select).to_be_visible()
    expect(select.locator("option")).to_have_text(
        [f"{DEFAULT} — $1 / $5 per M tokens", f"{OTHER} — $3 / $15 per M tokens"]
    )
    expect(select).to_have_value(DEFAULT)  # a new chat starts on the default
    expect(select).to_have_accessible_description(
        re.compile(r"^Prices per million tokens: input / output, as of \d{4}-\d\d-\d\d\.$")
    )

    # From the message box: Tab to Send, Tab to the picker, Down to the next model, then back to write.
    box = page.get_by_role("textbox", name="Message")
    box.focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send")).to_be_focused()
    page.keyboard.press("Tab")
    expect(select).to_be_focused()
    outline = select.evaluate("s => [getComputedStyle(s).outlineStyle, getComputedStyle(s).outlineWidth]")
    assert outline[0] != "none" and float(outline[1].removesuffix("px")) >= 2, outline
    page.keyboard.press("ArrowDown")
    expect(select).to_have_value(OTHER)
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    expect(box).to_be_focused()
    marker = tag()
    page.keyboard.type(f"Which model {marker}")
    page.keyboard.press("Enter")
    expect(page.locator(".message.assistant .content")).to_have_text(
        f"Stand-in reply to: Which model {marker}"
    )

    assert [body.get("model") for body in bodies] == [OTHER]
    assert models_sent_to_claude(models_server, f"Which model {marker}") == [OTHER]
    expect(select).to_have_value(OTHER)


def test_the_choice_is_per_conversation_and_survives_reload(page: Page, models_server: DevServer) -> None:
    open_chat(page, models_server.base_url)
    select = picker(page)
    marker = tag()

    # Conversation A on the other model, conversation B left on the default.
    expect(select).to_have_value(DEFAULT)
    select.select_option(OTHER)
    send(page, f"A {marker}")
    a = open_id(page)
    page.get_by_role("button", name="New chat").click()
    expect(select).to_have_value(DEFAULT)
    send(page, f"B {marker}")
    b = open_id(page)
    assert a != b

    # Switching between them: each opens on its own model.
    page.get_by_role("link", name=f"A {marker}").click()
    expect(page.locator(".message.user .content")).to_have_text([f"A {marker}"])
    expect(select).to_have_value(OTHER)
    page.get_by_role("link", name=f"B {marker}").click()
    expect(page.locator(".message.user .content")).to_have_text([f"B {marker}"])
    expect(select).to_have_value(DEFAULT)

    # A choice made but not sent yet stays with its conversation while the page is open.
    select.select_option(OTHER)
    page.get_by_role("link", name=f"A {marker}").click()
    expect(page.locator(".message.user .content")).to_have_text([f"A {marker}"])
    page.get_by_role("link", name=f"B {marker}").click()
    expect(page.locator(".message.user .content")).to_have_text([f"B {marker}"])
    expect(select).to_have_value(OTHER)
    select.select_option(DEFAULT)

    # Reload: A is still on the other model (the server remembers it), B on the default.
    page.goto(f"{models_server.base_url}/#/c/{a}")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator(".message.user .content")).to_have_text([f"A {marker}"])
    expect(select).to_have_value(OTHER)
    send(page, f"A again {marker}")
    page.get_by_role("link", name=f"B {marker}").click()
    expect(select).to_have_value(DEFAULT)
    send(page, f"B again {marker}")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator(".message.user .content")).to_have_text([f"B {marker}", f"B again {marker}"])
    expect(select).to_have_value(DEFAULT)

    sent = {
        label: models_sent_to_claude(models_server, f"{label} {marker}")
        for label in ("A", "B", "A again", "B again")
    }
    assert sent == {"A": [OTHER], "B": [DEFAULT], "A again": [OTHER], "B again": [DEFAULT]}
    assert open_id(page) == b


def test_a_refused_model_says_so_and_falls_back_to_the_default(page: Page, models_server: DevServer) -> None:
    """The page still offers a model the server no longer allows (the operator removed it)."""
    removed = "claude-opus-4-1"
    served: list[str] = []

    def offer_a_removed_model_once(route: Route) -> None:
        served.append(route.request.url)
        if len(served) > 1:
            route.continue_()  # asked again after the refusal: the server's own answer
            return
        answer = route.fetch().json()
        prices = {**answer["models"][1]["prices"], "input": 15.0, "output": 75.0}
        answer["models"].append({"id": removed, "default": False, "prices": prices})
        route.fulfill(json=answer)

    page.route("**/api/models", offer_a_removed_model_once)
    bodies = turn_bodies(page)
    open_chat(page, models_server.base_url)
    select = picker(page)
    expect(select.locator("option")).to_have_count(3)
    select.select_option(removed)
    marker = tag()
    send(page, f"Refused {marker}")

    notice = page.get_by_role("alert")
    expect(notice).to_contain_text(
        f"{removed} is not available any more, so this chat is back on {DEFAULT}. Your message was not sent."
    )
    expect(select).to_have_value(DEFAULT)
    expect(select.locator("option")).to_have_count(2)  # the list as the server has it now
    expect(page.locator(".message")).to_have_count(0)
    expect(page.get_by_role("textbox", name="Message")).to_have_value(f"Refused {marker}")
    assert [body.get("model") for body in bodies] == [removed]
    assert models_sent_to_claude(models_server, f"Refused {marker}") == []  # no turn happened

    notice.get_by_role("button", name=f"Retry with {DEFAULT}").click()
    expect(page.locator(".message.assistant .content")).to_have_text(f"Stand-in reply to: Refused {marker}")
    expect(notice).to_be_hidden()
    assert [body.get("model") for body in bodies] == [removed, DEFAULT]
    assert models_sent_to_claude(models_server, f"Refused {marker}") == [DEFAULT]
    assert len(served) == 2


def test_a_remembered_model_no_longer_offered_opens_on_the_default(
    page: Page, models_server: DevServer
) -> None:
    open_chat(page, models_server.base_url)
    marker = tag()
    picker(page).select_option(OTHER)
    send(page, f"Old model {marker}")
    conversation = open_id(page)

    def as_if_on_a_removed_model(route: Route) -> None:
        route.fulfill(json={**route.fetch().json(), "model": "claude-opus-4-1"})

    page.route(re.compile(rf".*/api/conversations/{conversation}$"), as_if_on_a_removed_model)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.get_by_role("alert")).to_have_text(
        "This conversation used claude-opus-4-1, which is no longer available:"
        f" its next reply uses {DEFAULT}."
    )
    expect(picker(page)).to_have_value(DEFAULT)
    send(page, f"Next {marker}")
    assert models_sent_to_claude(models_server, f"Next {marker}") == [DEFAULT]


def test_on_a_phone_the_picker_follows_the_conversation_opened_from_the_drawer(
    page: Page, models_server: DevServer
) -> None:
    page.set_viewport_size({"width": 360, "height": 640})
    open_chat(page, models_server.base_url)
    select = picker(page)
    marker = tag()
    select.select_option(OTHER)
    send(page, f"Phone {marker}")
    page.get_by_role("button", name="New chat").click()
    expect(select).to_have_value(DEFAULT)

    page.get_by_role("button", name="Show conversations").click()
    assert select.evaluate("s => s.closest('[inert]') !== null")  # behind the open drawer
    page.get_by_role("link", name=f"Phone {marker}").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()  # the drawer closed
    expect(select).to_have_value(OTHER)
    box = select.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["y"] + box["height"] <= 640, box
    assert box["height"] >= 40, f"too small to tap: {box}"
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"
    select.focus()
    page.keyboard.press("ArrowUp")
    expect(select).to_have_value(DEFAULT)


CONTRAST = """(element) => {
    const rgb = (color) => color.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const luminance = ([r, g, b]) => {
        const [R, G, B] = [r, g, b].map((c) => {
            c /= 255;
            return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * R + 0.7152 * G + 0.0722 * B;
    };
    const ratio = (a, b) => {
        const [x, y] = [luminance(rgb(a)), luminance(rgb(b))].sort((p, q) => q - p);
        return (x + 0.05) / (y + 0.05);
    };
    const behind = (node) => {
        for (let n = node.parentElement; n; n = n.parentElement) {
            const color = getComputedStyle(n).backgroundColor;
            if (!/rgba\\(.*, 0\\)$/.test(color) && color !== "transparent") return color;
        }
        return getComputedStyle(document.documentElement).backgroundColor;
    };
    const select = getComputedStyle(element);
    const label = element.labels[0];
    return {
        text: ratio(select.color, select.backgroundColor),
        edge: ratio(select.borderTopColor, behind(element)),
        label: ratio(getComputedStyle(label).color, behind(label)),
    };
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_picker_is_labelled_and_readable_in_both_themes(
    page: Page, models_server: DevServer, scheme: str
) -> None:
    page.emulate_media(color_scheme=scheme)
    open_chat(page, models_server.base_url)
    select = picker(page)
    expect(select).to_be_visible()
    expect(page.get_by_label("Model", exact=True)).to_have_id("model")  # a visible <label for>
    expect(page.locator("label[for=model]")).to_be_visible()
    ratios = select.evaluate(CONTRAST)
    # WCAG AA: text 4.5:1, a control's boundary 3:1.
    assert ratios["text"] >= 4.5 and ratios["label"] >= 4.5 and ratios["edge"] >= 3, ratios

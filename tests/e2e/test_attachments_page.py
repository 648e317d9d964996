"""Attachments, thinking, web search and citations on the chat page (issue 20).

One server of this module's own thinks (THINKING_BUDGET_TOKENS) and may search (WEB_SEARCH_MAX_USES,
steered by `[standin:search=...]`); the page is served from it, so the object store's CORS allows
the page's uploads. What reached Claude is read off the stand-in's record of its requests, found by a
tag unique to each test's message. Accessibility is checked with axe-core (AXE_CORE_PATH, else
node_modules/axe-core/axe.min.js), in the light and the dark theme.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.dev_server import ROOT, DevServer, start_dev_server
from tests.e2e.conftest import StaticSite, collecting_dialogs, open_chat
from tests.files import pdf, png

AXE = Path(os.environ.get("AXE_CORE_PATH") or ROOT / "node_modules" / "axe-core" / "axe.min.js")


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    started = start_dev_server(
        RATE_LIMIT_MAX="1000",
        THINKING_BUDGET_TOKENS="2048",
        WEB_SEARCH_MAX_USES="2",
        WEB_SEARCH_RESERVE_TOKENS="1000",
        CLAUDE_TIMEOUT_SECONDS="10",
    )
    yield started
    started.stop()


def tag() -> str:
    return uuid.uuid4().hex[:10]


def file(name: str, mime: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


def box(page: Page) -> Any:
    return page.get_by_role("textbox", name="Message")


def tray(page: Page) -> Any:
    return page.get_by_role("list", name="Files to send")


def send(page: Page, text: str) -> None:
    box(page).fill(text)
    box(page).press("Enter")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.locator(".message.assistant[aria-busy]")).to_have_count(0)


def request_with(server: DevServer, marker: str) -> dict[str, Any]:
    """The body of the last request the stand-in got whose newest message holds `marker`."""
    for record in reversed(server.standin_requests()):
        body = record.get("body")
        if not isinstance(body, dict) or not body.get("messages"):
            continue
        content = body["messages"][-1]["content"]
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        if any(marker in str(block.get("text", "")) for block in blocks if isinstance(block, dict)):
            return body
    raise AssertionError(f"no request to Claude carried {marker}")


# Files made in the page itself, for paste and drop (Playwright's set_input_files is the picker's way).
MAKE_TRANSFER = """([name, type, bytes]) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([new Uint8Array(bytes)], name, { type }));
    return transfer;
}"""


def test_attach_by_button_with_preview_progress_and_removal_then_send(page: Page, server: DevServer) -> None:
    open_chat(page, server.base_url)
    # Hold the uploads to the object store until the test lets them go, to see them in progress.
    held: list[Route] = []
    page.route(
        re.compile(r"^http://127\.0\.0\.1:\d+/[^/]+/?$"),
        lambda route: held.append(route) if route.request.method == "POST" else route.continue_(),
    )
    attach = page.get_by_role("button", name="Attach files")
    expect(attach).to_have_accessible_description(re.compile(r"JPEG, PNG, GIF, WebP.*PDFs"))
    with page.expect_file_chooser() as chooser:
        attach.click()
    chooser.value.set_files(
        [file("photo.png", "image/png", png((120, 80))), file("notes.pdf", "application/pdf", pdf(2))]
    )

    expect(tray(page).get_by_role("listitem")).to_have_count(2)
    expect(page.get_by_role("progressbar", name="Uploading photo.png")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Uploading notes.pdf")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()  # while uploads run
    thumb = tray(page).locator("img.thumb")
    expect(thumb).to_have_attribute("src", re.compile(r"^blob:"))
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 120
    expect(tray(page).get_by_text("notes.pdf", exact=True)).to_be_visible()
    expect(tray(page).locator(".file-icon")).to_have_count(1)

    for _ in range(50):
        if len(held) == 2:
            break
        page.wait_for_timeout(100)
    assert len(held) == 2, held
    for route in held:
        route.continue_()
    expect(page.get_by_role("progressbar")).to_have_count(0)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    # Removal, by keyboard: focus moves to the next file's Remove button (here, the box).
    remove = page.get_by_role("button", name="Remove notes.pdf")
    remove.focus()
    page.keyboard.press("Enter")
    expect(tray(page).get_by_role("listitem")).to_have_count(1)
    expect(page.get_by_role("button", name="Remove photo.png")).to_be_visible()

    marker = tag()
    send(page, f"What is in this picture {marker}")
    expect(tray(page)).to_be_hidden()
    sent = page.locator(".message.user").last
    expect(sent.get_by_role("img", name="photo.png")).to_be_visible()
    body = request_with(server, marker)
    blocks = body["messages"][-1]["content"]
    assert [block["type"] for block in blocks] == ["image", "text"], blocks
    assert blocks[0]["source"]["media_type"] == "image/png"


def test_attach_by_paste_and_by_drop(page: Page, server: DevServer) -> None:
    open_chat(page, server.base_url)
    data = list(png((30, 30)))
    pasted = page.evaluate_handle(MAKE_TRANSFER, ["pasted.png", "image/png", data])
    box(page).evaluate(
        """(box, transfer) => box.dispatchEvent(
            new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true }))""",
        pasted,
    )
    expect(page.get_by_role("button", name="Remove pasted.png")).to_be_visible()
    dropped = page.evaluate_handle(MAKE_TRANSFER, ["dropped.pdf", "application/pdf", list(pdf(1))])
    page.locator("#log").dispatch_event("dragover", {"dataTransfer": dropped})
    page.locator("#log").dispatch_event("drop", {"dataTransfer": dropped})
    expect(page.get_by_role("button", name="Remove dropped.pdf")).to_be_visible()
    expect(page.locator(".attachment.ready")).to_have_count(2)

    marker = tag()
    send(page, f"Two files {marker}")
    blocks = request_with(server, marker)["messages"][-1]["content"]
    assert [block["type"] for block in blocks] == ["image", "document", "text"], blocks
    assert blocks[1]["title"] == "dropped.pdf"
    # A PDF is cited by its page: a numbered link to the entry in Sources.
    reply = page.locator(".message.assistant").last
    expect(reply.locator(".sources li")).to_have_text([re.compile(r"^dropped\.pdf, page 1")])
    expect(
        page.locator(".message.user").last.get_by_role("link", name=re.compile(r"^Open dropped\.pdf"))
    ).to_be_visible()


def test_refused_files_are_said_and_the_message_waits(page: Page, server: DevServer) -> None:
    open_chat(page, server.base_url)
    # Refused here, by type: never asked for.
    page.set_input_files("#file-input", files=[file("notes.txt", "text/plain", b"hello")])
    expect(page.get_by_role("alert").filter(has_text="notes.txt can't be attached")).to_be_visible()
    expect(tray(page)).to_be_hidden()

    # Text named .png: the upload goes through, the turn is refused by the file's content (415).
    page.set_input_files("#file-input", files=[file("fake.png", "image/png", b"not an image at all")])
    expect(page.locator(".attachment.ready")).to_have_count(1)
    expect(page.get_by_role("alert").filter(has_text="can't be attached")).to_have_count(0)  # cleared
    marker = tag()
    text = f"Is this a picture {marker}"
    box(page).fill(text)
    box(page).press("Enter")
    expect(page.get_by_role("alert").filter(has_text="not a supported image or PDF")).to_be_visible()
    expect(box(page)).to_have_value(text)
    expect(page.get_by_role("button", name="Remove fake.png")).to_be_visible()  # back in the tray
    expect(page.locator(".message")).to_have_count(0)


RECORD = """() => {
    window.__seen = [];
    new MutationObserver(() => {
        const details = document.querySelector(".message.assistant:last-of-type details.thinking");
        const status = document.querySelector(".message.assistant:last-of-type .search-status");
        window.__seen.push({
            summary: details?.querySelector("summary").textContent ?? null,
            open: details?.open ?? null,
            search: status?.textContent ?? null,
            statusRole: status?.getAttribute("role") ?? null,
        });
    }).observe(document.getElementById("log"), {
        subtree: true, childList: true, characterData: true, attributes: true,
    });
}"""


def test_thinking_search_and_citations_while_streaming_and_from_history(
    page: Page, server: DevServer
) -> None:
    open_chat(page, server.base_url)
    page.evaluate(RECORD)
    marker = tag()
    send(page, f"Tides {marker} [standin:search=tides|moon] [standin:delta_delay=0.05]")
    seen = page.evaluate("window.__seen")
    assert {"summary": "Thinking…", "open": True} in [
        {"summary": s["summary"], "open": s["open"]} for s in seen
    ], seen
    searches = [s["search"] for s in seen if s["search"]]
    assert "Searching the web for “tides”…" in searches and "Searching the web for “moon”…" in searches, (
        searches
    )
    assert all(s["statusRole"] == "status" for s in seen if s["search"])

    reply = page.locator(".message.assistant").last
    thinking = reply.locator("details.thinking")
    expect(thinking.locator("summary")).to_have_text(re.compile(r"^Thought for \d+ s$"))
    expect(thinking).not_to_have_attribute("open", "")
    expect(reply.locator(".search-status")).to_have_count(0)  # gone once the reply is written
    thinking.locator("summary").focus()
    page.keyboard.press("Enter")  # a keyboard opens it
    expect(thinking.locator(".thinking-content")).to_have_text(f"Thinking about: Tides {marker}")
    check_citations(reply)
    # The thinking comes before the reply.
    assert (
        reply.evaluate("r => r.querySelector('details').compareDocumentPosition(r.querySelector('.content'))")
        == 4
    )

    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    reply = page.locator(".message.assistant").last
    expect(reply.locator("details.thinking summary")).to_have_text("Thinking")
    expect(reply.locator("details.thinking")).not_to_have_attribute("open", "")
    expect(reply.locator(".thinking-content")).to_have_text(f"Thinking about: Tides {marker}")
    check_citations(reply)


def check_citations(reply: Any) -> None:
    links = reply.locator(".content sup.citation a")
    expect(links).to_have_text(["1", "2"])
    expect(links.first).to_have_accessible_name("Source 1: Result 1 for tides")
    for link in (links.first, links.last):
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(links.first).to_have_attribute("href", "https://standin.example/tides/1")
    sources = reply.get_by_role("region", name="Sources")
    expect(sources.get_by_role("link")).to_have_text(["Result 1 for tides", "Result 1 for moon"])
    expect(sources.get_by_role("link").last).to_have_attribute("href", "https://standin.example/moon/1")
    expect(sources.get_by_role("link").last).to_have_attribute("rel", "noopener noreferrer")


def test_history_shows_the_files_a_message_carried(page: Page, server: DevServer) -> None:
    open_chat(page, server.base_url)
    page.set_input_files(
        "#file-input",
        files=[file("kept.png", "image/png", png((64, 48))), file("kept.pdf", "application/pdf", pdf(2))],
    )
    expect(page.locator(".attachment.ready")).to_have_count(2)
    send(page, f"Keep these {tag()}")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    message = page.locator(".message.user").last
    image = message.get_by_role("img", name="kept.png")
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))  # fetched through GET /api/attachments/<id>
    page.wait_for_function("img => img.complete && img.naturalWidth === 64", arg=image.element_handle())
    link = message.get_by_role("link", name=re.compile(r"^Open kept\.pdf"))
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url.startswith("blob:"), tab.url


# axe's WCAG 2.x A and AA rules, over the whole page. (Its best-practice rules also report what the
# page had before this: the log is a <main> with role="log", the composer is outside a landmark.)
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def axe_violations(page: Page) -> list[dict[str, Any]]:
    if not AXE.exists():
        pytest.fail(f"no axe-core at {AXE}: `npm ci` installs it (or set AXE_CORE_PATH)")
    page.evaluate(AXE.read_text())
    return list(
        page.evaluate(
            """async (WCAG) => (await axe.run(document, { resultTypes: ["violations"], runOnly: WCAG }))
                .violations.map(v => ({
                    id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(" ")),
                }))""",
            WCAG,
        )
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_new_ui_is_axe_clean_in_both_themes(page: Page, server: DevServer, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    open_chat(page, server.base_url)
    page.set_input_files(
        "#file-input",
        files=[file("a.png", "image/png", png((120, 80))), file("b.pdf", "application/pdf", pdf(1))],
    )
    expect(page.locator(".attachment.ready")).to_have_count(2)
    send(page, f"Look {tag()} [standin:search=tides]")
    reply = page.locator(".message.assistant").last
    expect(reply.locator(".sources li")).to_have_count(2)  # the web page and the PDF's page
    reply.locator("details.thinking summary").click()
    page.set_input_files(
        "#file-input", files=[file("c.png", "image/png", png((120, 80))), file("d.txt", "text/plain", b"x")]
    )
    expect(page.locator(".attachment.ready")).to_have_count(1)
    expect(page.locator("#attach-error")).to_contain_text("d.txt")
    violations = axe_violations(page)
    assert violations == [], violations


def test_files_load_for_a_page_on_another_origin(page: Page, page_site: StaticSite) -> None:
    """The deployed layout: the page on one origin, the functions on another, the store on a third."""
    open_chat(page, page_site.origin)
    page.set_input_files("#file-input", files=[file("far.png", "image/png", png((32, 24)))])
    expect(page.locator(".attachment.ready")).to_have_count(1)
    send(page, f"From afar {tag()}")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    image = page.locator(".message.user").last.get_by_role("img", name="far.png")
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function("img => img.complete && img.naturalWidth === 32", arg=image.element_handle())


def test_regenerate_and_edit_keep_the_files_of_the_turn(page: Page, server: DevServer) -> None:
    open_chat(page, server.base_url)
    page.set_input_files("#file-input", files=[file("again.png", "image/png", png((16, 16)))])
    expect(page.locator(".attachment.ready")).to_have_count(1)
    first = tag()
    send(page, f"Once {first}")
    page.get_by_role("button", name="Regenerate the last reply").click()
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.locator(".message.assistant[aria-busy]")).to_have_count(0)
    bodies = [
        record["body"]
        for record in server.standin_requests()
        if isinstance(record.get("body"), dict) and first in str(record["body"]["messages"][-1]["content"])
    ]
    kinds = [[block["type"] for block in body["messages"][-1]["content"]] for body in bodies]
    assert kinds == [["image", "text"]] * 2, kinds

    page.get_by_role("button", name="Edit your last message").click()
    expect(page.locator("#editing")).to_contain_text("Its file goes with it.")
    edited = tag()
    send(page, f"Twice {edited}")
    blocks = request_with(server, edited)["messages"][-1]["content"]
    assert [block["type"] for block in blocks] == ["image", "text"], blocks
    expect(page.locator(".message.user")).to_have_count(1)
    expect(page.locator(".message.user").get_by_role("img", name="again.png")).to_be_visible()


def test_thinking_search_and_citations_are_text_never_markup(page: Page, server: DevServer) -> None:
    """What Claude thinks, searches and cites is untrusted text: a crafted stream shows it as text."""
    events = [
        {"text": "", "thinking": "<b>bold?</b> <img src=x onerror=alert(1)>"},
        {"text": "", "search": {"query": "<img src=x onerror=alert(2)>"}},
        {
            "text": "Cited text",
            "citations": [
                {"url": "javascript:alert(3)", "title": "<img src=x onerror=alert(4)>", "cited_text": "x"},
                {
                    "url": "https://ok.example/a",
                    "title": "<b>Title</b>",
                    "cited_text": "<script>alert(5)</script>",
                },
            ],
        },
        {"text": " and more \ue0009\ue001."},
        {"text": "", "done": True, "stop_reason": "end_turn", "turns": 1},
    ]
    body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    page.route(
        "**/api/chat/history/stream",
        lambda route: route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body),
    )
    open_chat(page, server.base_url)
    with collecting_dialogs(page) as dialogs:
        send(page, "Crafted")
        reply = page.locator(".message.assistant").last
        expect(reply.locator(".thinking-content")).to_have_text("<b>bold?</b> <img src=x onerror=alert(1)>")
        expect(reply.locator(".content")).to_have_text("Cited text and more 9.1")  # the mark ends the passage
        expect(reply.locator(".content sup a")).to_have_attribute("href", "https://ok.example/a")
        sources = reply.get_by_role("region", name="Sources")
        expect(sources.locator("li")).to_have_count(1)  # a javascript: address is no source
        expect(sources.get_by_role("link")).to_have_text("<b>Title</b>")
        expect(sources.locator("q")).to_have_text("<script>alert(5)</script>")
        assert reply.locator("img, b, script").count() == 0
        page.wait_for_timeout(300)
    assert dialogs == []

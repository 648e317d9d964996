"""examples/use-chat (React, `@ai-sdk/react`'s useChat) in Chromium, holding a conversation with `make dev`.

The example is bundled from source into a temporary directory each run (its
build.mjs, the project's pinned esbuild), served by a plain static server on
another origin, which is the only origin the dev server allows: so the
browser's own fetch, CORS preflight (X-Session-Id) included, is what carries it.
The server thinks and may search, so replies carry reasoning and source parts.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
from playwright.sync_api import Locator, Page, Response, expect

from tests.dev_server import ROOT, DevServer, free_port, start_dev_server
from tests.e2e.conftest import _QuietHandler
from tests.files import pdf, png


@pytest.fixture(scope="module")
def example_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    node = shutil.which("node")
    assert node, "node is needed (make install runs npm ci)"
    out = tmp_path_factory.mktemp("use-chat")
    build = [node, str(ROOT / "examples" / "use-chat" / "build.mjs"), str(out)]
    result = subprocess.run(build, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_QuietHandler, directory=str(out)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def ui_server(example_origin: str) -> Iterator[DevServer]:
    server = start_dev_server(
        CORS_ALLOW_ORIGINS=example_origin,
        RATE_LIMIT_MAX="20",  # the browser's turns all come from 127.0.0.1
        THINKING_BUDGET_TOKENS="1024",
        WEB_SEARCH_MAX_USES="1",
        WEB_SEARCH_RESERVE_TOKENS="20000",  # a turn reserves this per search, within the daily budget
    )
    yield server
    server.stop()


def send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def is_turn(response: Response) -> bool:
    return response.url.endswith("/api/chat/ui") and response.request.method == "POST"


def replies(page: Page) -> Locator:
    """The assistant's messages' text parts (the thinking and the sources are elements of their own)."""
    return page.locator("#messages > li[data-role=assistant] > p")


def test_use_chat_holds_a_conversation(page: Page, example_origin: str, ui_server: DevServer) -> None:
    page.goto(f"{example_origin}/?api={ui_server.base_url}/api/chat/ui")
    send(page, "Hello from useChat")
    expect(replies(page).nth(0)).to_have_text("Stand-in reply to: Hello from useChat")
    expect(page.locator("main")).to_have_attribute("data-status", "ready")
    # The second turn carries the session the first one's metadata gave: the stand-in saw turn 1.
    send(page, "Tell me more")
    expect(replies(page).nth(1)).to_have_text("Stand-in reply to: Tell me more (turn 2)")
    expect(page.locator("#turns")).to_have_text("2 turns saved")
    expect(page.locator("#messages > li")).to_have_count(4)
    expect(page.get_by_role("alert")).to_have_count(0)


def test_use_chat_shows_an_error_it_was_sent(page: Page, example_origin: str, ui_server: DevServer) -> None:
    page.goto(f"{example_origin}/?api={ui_server.base_url}/api/chat/ui")
    send(page, "[standin:fail_after=2] Fail on me")
    expect(page.get_by_role("alert")).to_have_text("Claude is busy right now. Please retry shortly.")
    expect(page.locator("main")).to_have_attribute("data-status", "error")


def test_use_chat_stops_a_reply(page: Page, example_origin: str, ui_server: DevServer) -> None:
    page.goto(f"{example_origin}/?api={ui_server.base_url}/api/chat/ui")
    send(page, "[standin:delta_delay=0.2] [standin:words=40] Stop me")
    reply = replies(page)
    expect(reply).to_contain_text("w2")
    with page.expect_response("**/api/chat/stop") as stop_answer:
        page.get_by_role("button", name="Stop").click()
    assert stop_answer.value.json() == {"ok": True}  # the turn the `start` chunk named, stopped
    expect(page.locator("main")).to_have_attribute("data-status", "ready")
    shown = reply.inner_text()
    page.wait_for_timeout(1500)  # a reply that went on would still be arriving
    assert reply.inner_text() == shown
    assert "w40" not in shown


def test_use_chat_sends_files_and_shows_thinking_and_sources(
    page: Page, example_origin: str, ui_server: DevServer
) -> None:
    """Files picked in the file input go as the SDK's `file` parts (data URLs): the server checks them
    by their bytes, sends Claude an image and a document block and keeps them with the turn; the reply
    shows its thinking and, once each, the web page and the PDF it cites."""
    page.goto(f"{example_origin}/?api={ui_server.base_url}/api/chat/ui")
    picture, document = png((40, 30)), pdf(1)
    page.get_by_label("Attach files").set_input_files(
        [
            {"name": "dot.png", "mimeType": "image/png", "buffer": picture},
            {"name": "notes.pdf", "mimeType": "application/pdf", "buffer": document},
        ]
    )
    with page.expect_response(is_turn) as answer:
        send(page, "What are these? [standin:search=tides]")
    session, conversation = answer.value.headers["x-session-id"], answer.value.request.post_data_json["id"]
    sent = page.locator("#messages > li[data-role=user]").last
    expect(sent.get_by_role("img", name="dot.png")).to_be_visible()
    expect(sent.get_by_role("link", name="notes.pdf")).to_be_visible()
    expect(replies(page).last).to_have_text("Stand-in reply to: What are these?")
    reply = page.locator("#messages > li[data-role=assistant]").last
    expect(reply.locator("details")).to_contain_text("Thinking about: What are these?")
    expect(reply.get_by_role("list", name="Sources").get_by_role("listitem")).to_have_text(
        ["Result 1 for tides", "notes.pdf"]
    )
    expect(reply.get_by_role("link", name="Result 1 for tides")).to_have_attribute(
        "href", "https://standin.example/tides/1"
    )
    expect(page.locator("main")).to_have_attribute("data-status", "ready")
    expect(page.get_by_label("Attach files")).to_have_value("")  # the input is emptied for the next message

    asked = next(
        call["body"]
        for call in reversed(ui_server.standin_requests())
        if "What are these?" in json.dumps(call["body"]["messages"][-1])
    )
    blocks = asked["messages"][-1]["content"]
    assert [block["type"] for block in blocks] == ["image", "document", "text"]
    assert blocks[0]["source"]["media_type"] == "image/png"
    saved = ui_server.client().get(f"/api/conversations/{conversation}", headers={"X-Session-Id": session})
    assert saved.status_code == 200, saved.text
    kept = [
        (file["name"], file["type"], file["size"])
        for message in saved.json()["messages"]
        for file in message.get("attachments", [])
    ]
    assert kept == [("dot.png", "image/png", len(picture)), ("notes.pdf", "application/pdf", len(document))]

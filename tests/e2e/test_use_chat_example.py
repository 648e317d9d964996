"""examples/use-chat (React, `@ai-sdk/react`'s useChat) in Chromium, holding a conversation with `make dev`.

The example is bundled from source into a temporary directory each run (its
build.mjs, the project's pinned esbuild), served by a plain static server on
another origin, which is the only origin the dev server allows: so the
browser's own fetch, CORS preflight (X-Session-Id) included, is what carries it.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, expect

from tests.dev_server import ROOT, DevServer, free_port, start_dev_server
from tests.e2e.conftest import _QuietHandler


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
    server = start_dev_server(CORS_ALLOW_ORIGINS=example_origin)
    yield server
    server.stop()


def send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def test_use_chat_holds_a_conversation(page: Page, example_origin: str, ui_server: DevServer) -> None:
    page.goto(f"{example_origin}/?api={ui_server.base_url}/api/chat/ui")
    send(page, "Hello from useChat")
    replies = page.locator("#messages li[data-role=assistant]")
    expect(replies.nth(0)).to_have_text("Stand-in reply to: Hello from useChat")
    expect(page.locator("main")).to_have_attribute("data-status", "ready")
    # The second turn carries the session the first one's metadata gave: the stand-in saw turn 1.
    send(page, "Tell me more")
    expect(replies.nth(1)).to_have_text("Stand-in reply to: Tell me more (turn 2)")
    expect(page.locator("#turns")).to_have_text("2 turns saved")
    expect(page.locator("#messages li")).to_have_count(4)
    expect(page.get_by_role("alert")).to_have_count(0)


def test_use_chat_shows_an_error_it_was_sent(page: Page, example_origin: str, ui_server: DevServer) -> None:
    page.goto(f"{example_origin}/?api={ui_server.base_url}/api/chat/ui")
    send(page, "[standin:fail_after=2] Fail on me")
    expect(page.get_by_role("alert")).to_have_text("Claude is busy right now. Please retry shortly.")
    expect(page.locator("main")).to_have_attribute("data-status", "error")


def test_use_chat_stops_a_reply(page: Page, example_origin: str, ui_server: DevServer) -> None:
    page.goto(f"{example_origin}/?api={ui_server.base_url}/api/chat/ui")
    send(page, "[standin:delta_delay=0.2] [standin:words=40] Stop me")
    reply = page.locator("#messages li[data-role=assistant]")
    expect(reply).to_contain_text("w2")
    with page.expect_response("**/api/chat/stop") as stop_answer:
        page.get_by_role("button", name="Stop").click()
    assert stop_answer.value.json() == {"ok": True}  # the turn the `start` chunk named, stopped
    expect(page.locator("main")).to_have_attribute("data-status", "ready")
    shown = reply.inner_text()
    page.wait_for_timeout(1500)  # a reply that went on would still be arriving
    assert reply.inner_text() == shown
    assert "w40" not in shown

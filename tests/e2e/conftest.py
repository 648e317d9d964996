"""The chat page in headless Chromium (Debian's package, driven by Playwright) against `make dev`.

No browser is downloaded: Playwright drives the system Chromium (`make test`
installs Debian's package when it is missing; CHROMIUM_PATH points elsewhere).
Each test gets a fresh browser context, so its own localStorage and session.

Servers: `chat_server` is the one the page is served from. It allows one other
origin, `page_site`, a plain static server holding the same web/ files plus a
config.json that points at `chat_server`: the deployed layout (page on one
origin, function URLs on another), so CORS is exercised by a real browser.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.dev_server import ROOT, DevServer, free_port, start_dev_server

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# The flags that keep Chromium off a closed network and quiet in a container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `make test` (it installs Debian's chromium) or set CHROMIUM_PATH"
        )
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@dataclass
class StaticSite:
    """web/ served by a plain static server, as it would be from S3 or any host."""

    origin: str
    root: Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def page_site_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def chat_server(page_site_port: int) -> Iterator[DevServer]:
    # Only the static site's localhost origin is allowed: 127.0.0.1 with the same port is another origin.
    server = start_dev_server(
        RATE_LIMIT_MAX="1000",
        CORS_ALLOW_ORIGINS=f"http://localhost:{page_site_port}",
        CLAUDE_TIMEOUT_SECONDS="5",
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def page_site(
    chat_server: DevServer, page_site_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StaticSite]:
    root = tmp_path_factory.mktemp("site") / "web"
    shutil.copytree(ROOT / "web", root, ignore=shutil.ignore_patterns("config.json"))
    urls = {
        "chatUrl": chat_server.base_url,
        "historyUrl": chat_server.base_url,
        "streamUrl": chat_server.base_url,
    }
    (root / "config.json").write_text(json.dumps(urls))
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", page_site_port), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield StaticSite(f"http://localhost:{page_site_port}", root)
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def chat_page(page: Page, chat_server: DevServer) -> Page:
    """The page as `make dev` serves it, loaded and ready."""
    return open_chat(page, chat_server.base_url)


def open_chat(page: Page, url: str) -> Page:
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return page


@contextlib.contextmanager
def collecting_dialogs(page: Page) -> Iterator[list[str]]:
    """Every alert/confirm/prompt the page opens (an XSS payload firing would open one)."""
    dialogs: list[str] = []

    def record(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    yield dialogs
    page.remove_listener("dialog", record)

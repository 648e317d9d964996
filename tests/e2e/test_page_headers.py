"""The page's security headers as `make dev` sends them, and what Chromium does with them."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from local.page_headers import PAGE_HEADERS
from tests.dev_server import DevServer
from tests.e2e.conftest import StaticSite


def test_the_page_and_its_files_carry_the_security_headers(chat_server: DevServer) -> None:
    for path in ("/", "/index.html", "/js/markdown.js", "/vendor/markdown-it.js", "/markdown.css"):
        response = httpx.get(f"{chat_server.base_url}{path}", timeout=10)
        assert response.status_code == 200, path
        for name, value in PAGE_HEADERS.items():
            assert response.headers.get(name) == value, (path, name)
    csp = httpx.get(f"{chat_server.base_url}/", timeout=10).headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    # The API answers are not documents: they keep their own headers.
    api = httpx.get(f"{chat_server.base_url}/api/openapi.json", timeout=10)
    assert "content-security-policy" not in api.headers


def test_another_site_cannot_frame_the_page(
    page: Page, chat_server: DevServer, page_site: StaticSite
) -> None:
    (page_site.root / "framer.html").write_text(
        f'<!doctype html><title>framer</title><iframe id="f" src="{chat_server.base_url}/"></iframe>'
    )
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text))
    page.goto(f"{page_site.origin}/framer.html")
    expect(page.locator("#f")).to_be_attached()
    page.wait_for_timeout(1000)
    frame = page.frame_locator("#f")
    # The chat page never loads inside the frame (Chromium shows its own error page instead).
    expect(frame.locator("#composer")).to_have_count(0)
    assert any("frame-ancestors" in text for text in blocked), blocked

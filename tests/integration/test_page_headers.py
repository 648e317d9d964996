"""local/page_headers.py: the headers say what web/index.html's meta tags say, plus what only a header can."""

from __future__ import annotations

import functools
import re
import threading
from html.parser import HTMLParser
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx

from local.page_headers import (
    CONTENT_SECURITY_POLICY,
    HEADER_ONLY_POLICY,
    META_POLICY,
    PAGE_HEADERS,
    PageRequestHandler,
)

ROOT = Path(__file__).resolve().parents[2]


class _Metas(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.by_key: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "meta" and found.get("content") is not None:
            key = found.get("http-equiv") or found.get("name") or ""
            self.by_key[key.lower()] = str(found["content"])


def _index_metas() -> dict[str, str]:
    parser = _Metas()
    parser.feed((ROOT / "web" / "index.html").read_text())
    return parser.by_key


def _directives(policy: str) -> dict[str, str]:
    pairs = (part.strip().split(None, 1) for part in policy.split(";") if part.strip())
    return {pair[0]: re.sub(r"\s+", " ", pair[1]) if len(pair) > 1 else "" for pair in pairs}


def test_the_header_policy_is_the_meta_tags_plus_frame_ancestors() -> None:
    meta = _directives(_index_metas()["content-security-policy"])
    assert meta == dict(META_POLICY), "web/index.html's CSP and local/page_headers.py's differ: change both"
    assert _directives(CONTENT_SECURITY_POLICY) == {**meta, **dict(HEADER_ONLY_POLICY)}
    assert dict(HEADER_ONLY_POLICY) == {"frame-ancestors": "'none'"}
    assert PAGE_HEADERS["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_the_referrer_policy_matches_the_meta_tag_and_nosniff_is_on() -> None:
    assert PAGE_HEADERS["Referrer-Policy"] == _index_metas()["referrer"]
    assert PAGE_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert PAGE_HEADERS["X-Frame-Options"] == "DENY"
    assert "clipboard-write" not in PAGE_HEADERS["Permissions-Policy"]  # the Copy buttons need it


def test_make_web_serves_the_page_with_the_headers() -> None:
    handler = functools.partial(PageRequestHandler, directory=str(ROOT / "web"))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            response = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=5)
        finally:
            server.shutdown()
    assert response.status_code == 200
    assert "<title>" in response.text
    for name, value in PAGE_HEADERS.items():
        assert response.headers[name] == value


def test_make_web_uses_the_module() -> None:
    target = re.search(r"^web:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert target and "local.page_headers" in target[1]

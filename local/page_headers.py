"""The chat page's security headers, in one place: `make dev` and `make web` send them with web/.

Why headers as well as the meta tags in web/index.html: a `<meta>` Content-Security-Policy cannot
carry `frame-ancestors` (browsers ignore it there), so only a header stops another site from
framing the page to trick clicks; and `X-Content-Type-Options` exists only as a header. The
header's policy is the meta tag's plus `frame-ancestors 'none'`, so a host that sends it changes
nothing else; tests/integration/test_page_headers.py keeps the two the same. A static host (S3 and
CloudFront, or any other) should send these same values: the README's "Serving the page elsewhere".

`python -m local.page_headers [PORT]` serves web/ with them (`make web`).
"""

from __future__ import annotations

import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

# The policy of the meta tag in web/index.html, directive by directive.
META_POLICY: tuple[tuple[str, str], ...] = (
    ("default-src", "'self'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self' data: blob:"),
    ("connect-src", "'self' https: http://localhost:* http://127.0.0.1:*"),
    ("base-uri", "'none'"),
    ("form-action", "'none'"),
    ("object-src", "'none'"),
)
# What only a header can carry.
HEADER_ONLY_POLICY: tuple[tuple[str, str], ...] = (("frame-ancestors", "'none'"),)

CONTENT_SECURITY_POLICY = "; ".join(f"{name} {value}" for name, value in META_POLICY + HEADER_ONLY_POLICY)

PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # Older browsers that predate frame-ancestors; CloudFront's security headers set it too.
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # as the page's <meta name="referrer">
    # The page uses none of these; a reply's link or an injected frame cannot ask for them.
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

_ENCODED = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in PAGE_HEADERS.items()]


def with_page_headers(app: ASGIApp) -> ASGIApp:
    """The ASGI app `app` (web/'s static files) with the page's headers on every response."""

    async def page(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_ENCODED]}
            await send(message)

        await app(scope, receive, send_with_headers)

    return page


class PageRequestHandler(SimpleHTTPRequestHandler):
    """http.server's static files, with the page's headers (what `make web` runs)."""

    def end_headers(self) -> None:
        for name, value in PAGE_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    handler = functools.partial(PageRequestHandler, directory=str(WEB_ROOT))
    with ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"Serving web/ on http://localhost:{port} with the page's security headers", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()

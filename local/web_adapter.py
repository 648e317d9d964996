"""What the Lambda Web Adapter does between a function URL and an ASGI app, emulated for `make dev`.

The adapter turns the function URL's event back into an HTTP request for the
app: the event's headers and cookies, the decoded body, and the event's
requestContext as JSON in `x-amzn-request-context`, which replaces any copy
the client sent. Serving the stream function through this path locally means
local runs read the client IP exactly as they will in AWS.

SnapStart (adapter 1.1.0+): the adapter POSTs, empty, to the app's
before-checkpoint path before the snapshot and to its after-restore path in
each restored copy, and answers 403 to a client's request for either path.
`make dev` takes no snapshot, but calls both hooks once at start, so a broken
hook fails `make dev` as it would fail a deploy's init or restore.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import posixpath
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ADAPTER_HEADERS = ("x-amzn-request-context", "x-amzn-lambda-context")
SNAPSTART_HOOK_VARIABLES = (
    "AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH",
    "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH",
)


def snapstart_hook_paths() -> list[str]:
    """The hook paths the function's environment configures, before-checkpoint first."""
    return [path for name in SNAPSTART_HOOK_VARIABLES if (path := os.environ.get(name, "").strip())]


def _route(path: str) -> str:
    """A path as a router would match it: decoded, `.`/`..`/`//` resolved, matrix parameters dropped,
    case folded (the adapter's guard compares this way)."""
    decoded = urllib.parse.unquote(path)
    segments = [segment.split(";", 1)[0] for segment in decoded.split("/")]
    return posixpath.normpath("/" + "/".join(segments)).lower()


def is_snapstart_hook(path: str) -> bool:
    return _route(path) in {_route(hook) for hook in snapstart_hook_paths()}


async def call_snapstart_hooks(app: AsgiApp) -> None:
    """Before-checkpoint, then after-restore, as the adapter calls them: an empty POST with no request
    or Lambda context. Anything but a 2xx raises, as it would fail the function's init or restore."""
    status: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    for path in snapstart_hook_paths():
        status.clear()

        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-length", b"0")],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 8000),
        }
        await app(scope, receive, send)
        if not status or not 200 <= status[0] < 300:
            raise RuntimeError(f"SnapStart hook POST {path} answered {status[0] if status else 'nothing'}")


def request_from_event(
    event: dict[str, Any], function_name: str, timeout_seconds: float
) -> tuple[list[tuple[str, str]], bytes]:
    """The headers and body the adapter sends the app for a function URL event."""
    headers = [
        (name.lower(), str(value))
        for name, value in (event.get("headers") or {}).items()
        if name.lower() not in _ADAPTER_HEADERS
    ]
    if event.get("cookies"):
        headers.append(("cookie", "; ".join(event["cookies"])))
    headers.append(("x-amzn-request-context", json.dumps(event["requestContext"])))
    lambda_context = {
        "request_id": event["requestContext"]["requestId"],
        "deadline": int((time.time() + timeout_seconds) * 1000),
        "env_config": {"function_name": function_name},
    }
    headers.append(("x-amzn-lambda-context", json.dumps(lambda_context)))
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    return headers, raw


def hides_disconnects() -> bool:
    """DEV_HIDE_DISCONNECTS=1: behave as in AWS, where a client leaving is invisible to the function."""
    return os.environ.get("DEV_HIDE_DISCONNECTS", "") == "1"


async def call_app(  # noqa: PLR0917 - the ASGI triple plus what the adapter knows of the function
    app: AsgiApp,
    event: dict[str, Any],
    function_name: str,
    receive: Receive,
    send: Send,
    timeout_seconds: float,
) -> None:
    """Runs one request through the app as the adapter would.

    At the function's timeout the response is cut off, as Lambda cuts a streaming function's.
    The client's disconnect reaches the app, as it does locally; with
    DEV_HIDE_DISCONNECTS=1 it does not, as in AWS, where Lambda tells a streaming
    function nothing when its client leaves (see `hides_disconnects`).
    """
    if is_snapstart_hook(event["rawPath"]):  # the adapter's guard: a client never reaches a hook
        await send({"type": "http.response.start", "status": 403, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    headers, body = request_from_event(event, function_name, timeout_seconds)
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": event["requestContext"]["http"]["method"],
        "scheme": "http",
        "path": event["rawPath"],
        "raw_path": event["rawPath"].encode(),
        "query_string": event.get("rawQueryString", "").encode(),
        "root_path": "",
        "headers": [(name.encode(), value.encode()) for name, value in headers],
        "client": ("127.0.0.1", 0),  # the app's TCP peer is the adapter, on the same host
        "server": ("127.0.0.1", 8000),
    }
    body_sent = False

    hidden = hides_disconnects()

    async def replay_then_pass_through() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if hidden:
            await asyncio.Event().wait()  # never: the app learns nothing of its client
        return await receive()

    try:
        await asyncio.wait_for(app(scope, replay_then_pass_through, send), timeout_seconds)
    except TimeoutError:
        print(
            f"{function_name}: Task timed out after {timeout_seconds:.2f} seconds",
            file=sys.stderr,
            flush=True,
        )

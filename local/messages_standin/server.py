"""The stand-in's HTTP side: its routes, its state, and serving it from a thread or a process.

Why apart: how a request travels (routes, the order of checks, pauses, the event
stream going out delta by delta, a client leaving early, a connection dropped on
purpose) is separate from what it says (replies.py) and how it is shaped
(wire.py). For the tests to look at what the code under test sent, and at streams
it abandoned (the API key itself is never recorded, only whether one was sent):

    GET    /_standin/requests      the last 200 requests, oldest first, each with the
                                   usage it was billed
    DELETE /_standin/requests      forget them
    GET    /_standin/disconnects   streams the client left early (DELETE forgets them)

MessagesStandin's hooks (`pause_before`, `pace_buffered`, `delta_sent`, `record`)
do nothing beyond that here; the benchmarks' subclass
(tests/benchmarks/timed_standin.py) paces replies like a real model through them
and stamps when each request's bytes went out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from local.messages_standin import wire
from local.messages_standin.caching import PromptCache
from local.messages_standin.replies import Directives, reply_extras, reply_words
from local.messages_standin.wire import BadRequest, Prompt, new_id

_RECORDED_REQUESTS = 200
# Request headers worth showing a test (retries, API version); never the credentials.
_RECORDED_HEADERS = ("anthropic-version", "anthropic-beta", "x-stainless-retry-count")


class _DropConnection(Exception):
    """Raised inside a response body so the server closes the connection mid-response."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for a connection dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BaseExceptionGroup):
            return not error.subgroup(_DropConnection)
        return not isinstance(error, _DropConnection)


_QUIET_DROPS = _QuietDrops()


@dataclass
class Reply:
    """A reply decided before its first byte, and how far its stream got."""

    request_id: str
    message: dict[str, Any]
    words: list[str]
    directives: Directives
    record: dict[str, Any]  # its entry in /_standin/requests
    sent: int = 0
    ended: bool = False


class _EventStream(StreamingResponse):
    """An SSE response that notices when the client leaves before message_stop."""

    def __init__(self, body: AsyncIterator[bytes], reply: Reply, standin: MessagesStandin) -> None:
        super().__init__(
            body,
            media_type="text/event-stream",
            headers={"request-id": reply.request_id, "cache-control": "no-cache"},
        )
        self._reply, self._standin = reply, standin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:  # servers on ASGI spec >= 2.4 fail the send; older ones cancel us
            pass
        finally:
            if not self._reply.ended:
                self._standin.record_disconnect(self._reply.request_id, self._reply.sent)


async def _truncated(payload: bytes) -> AsyncIterator[bytes]:
    yield payload[: len(payload) // 2]
    raise _DropConnection


class MessagesStandin:
    """The stand-in's state (recorded requests, disconnects, prompt cache) and its routes."""

    def __init__(self) -> None:
        self._requests: deque[dict[str, Any]] = deque(maxlen=_RECORDED_REQUESTS)
        self._disconnects: deque[dict[str, Any]] = deque(maxlen=_RECORDED_REQUESTS)
        self.cache = PromptCache()
        self._lock = threading.Lock()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot, safe to read from a test's thread while the server appends."""
        with self._lock:
            return list(self._requests)

    @property
    def disconnects(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._disconnects)

    def record_disconnect(self, request_id: str, sent: int) -> None:
        with self._lock:
            self._disconnects.append(
                {"request_id": request_id, "disconnected_at_delta": sent, "disconnected_at": time.time()}
            )

    def app(self, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
        logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)  # addFilter ignores repeats
        app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/_standin/requests", self._recorded, methods=["GET", "DELETE"]),
                Route("/_standin/disconnects", self._disconnected, methods=["GET", "DELETE"]),
                *extra_routes,
            ],
            exception_handlers={404: self._not_found, 405: self._not_found},
        )
        app.state.standin = self
        return app

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return wire.error(status, new_id("req_"), f"{request.method} {request.url.path}: not found")

    async def _recorded(self, request: Request) -> JSONResponse:
        if request.method == "DELETE":
            with self._lock:
                self._requests.clear()
        return JSONResponse(self.requests)

    async def _disconnected(self, request: Request) -> JSONResponse:
        if request.method == "DELETE":
            with self._lock:
                self._disconnects.clear()
        return JSONResponse(self.disconnects)

    def record(self, request: Request, request_id: str, body: Any, **fields: Any) -> dict[str, Any]:
        """Records a request (for /_standin/requests) and returns its record, which the reply fills in."""
        record = {
            "request_id": request_id,
            "received_at": time.time(),
            "body": body,
            **fields,
            "headers": {name: request.headers[name] for name in _RECORDED_HEADERS if name in request.headers},
            "usage": None,
        }
        with self._lock:
            self._requests.append(record)
        return record

    # Hooks for a stand-in that takes as long as a model would (the benchmarks'): none here.

    def pause_before(self, delta: int, directives: Directives) -> float:
        """Seconds to wait before sending text delta number `delta` (0 is the first)."""
        return (directives.delta_delay or 0.0) if delta else 0.0

    async def pace_buffered(self, deltas: int, directives: Directives) -> None:
        """Waits, before a non-streamed reply of that many deltas goes out, as long as generating it takes."""

    def delta_sent(self, reply: Reply, text: str) -> None:
        """Called once a text delta went to the socket (the body iterator resumes only then)."""

    async def _messages(self, request: Request) -> Response:
        request_id = new_id("req_")
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        # SDK 1.x sends x-api-key, SDK 2.x a bearer token: either counts, neither is recorded.
        has_api_key = bool(request.headers.get("x-api-key") or request.headers.get("authorization"))
        record = self.record(request, request_id, body, has_api_key=has_api_key)
        if not has_api_key:
            return wire.error(401, request_id, "x-api-key header is required")
        if not isinstance(body, dict):
            return wire.error(400, request_id, "The request body is not a valid JSON object.")
        return await self.reply(request, record, body)

    async def reply(self, request: Request, record: dict[str, Any], body: dict[str, Any]) -> Response:
        """The Messages API's answer to a request body (a JSON Message, an SSE stream, or an error)."""
        try:
            prompt = wire.parse_prompt(body)
            directives = Directives.parse(prompt.last_user_text)
            extras = reply_extras(prompt, directives)
        except BadRequest as bad:
            return wire.error(400, record["request_id"], str(bad))
        return await self._answer(request, record, prompt, directives, extras)

    async def _answer(
        self,
        request: Request,
        record: dict[str, Any],
        prompt: Prompt,
        directives: Directives,
        extras: wire.Extras,
    ) -> Response:
        request_id: str = record["request_id"]
        if directives.advance_clock:
            self.cache.advance(directives.advance_clock)
        if directives.delay:
            await asyncio.sleep(directives.delay)
        fails = directives.fail_after is not None and not prompt.stream
        status = directives.status or (529 if fails else None)
        if status == 429:
            return wire.error(status, request_id, **{"retry-after": str(directives.retry_after)})
        if status:
            return wire.error(status, request_id)
        words, stop_reason = reply_words(prompt, directives)
        bill = self.cache.bill(prompt.cache_seed, prompt.model, prompt.blocks)
        message = wire.message(prompt.model, words, stop_reason, bill.usage(), extras)
        record["usage"] = message["usage"]
        if not prompt.stream:
            await self.pace_buffered(len(words), directives)
        if not prompt.stream and directives.drop_after is not None:
            return StreamingResponse(
                _truncated(json.dumps(message).encode()),
                media_type="application/json",
                headers={"request-id": request_id},
            )
        if not prompt.stream:
            return JSONResponse(message, headers={"request-id": request_id})
        reply = Reply(request_id, message, words, directives, record)
        return _EventStream(self._events(request, reply), reply, self)

    async def _events(self, request: Request, reply: Reply) -> AsyncIterator[bytes]:
        """The real event sequence, one delta per word, each sent as soon as it is yielded."""
        directives = reply.directives
        for event in wire.stream_start(reply.message):
            yield event
        limit, index_of_text = len(reply.words), wire.text_index(reply.message)
        fail_at = min(directives.fail_after, limit) if directives.fail_after is not None else None
        drop_at = min(directives.drop_after, limit) if directives.drop_after is not None else None
        for index in range(limit + 1):
            if index == fail_at:
                reply.ended = True
                yield wire.overloaded()
                return
            if index == drop_at:
                reply.ended = True
                raise _DropConnection
            if index == limit:
                break
            pause = self.pause_before(index, directives)
            if pause:
                await asyncio.sleep(pause)
            if await request.is_disconnected():
                return  # _EventStream records it, as reply.ended is False
            yield wire.text_delta(reply.words[index], index_of_text)
            self.delta_sent(reply, reply.words[index])
            reply.sent += 1
        for event in wire.stream_end(reply.message):
            yield event
        reply.ended = True  # runs only once message_stop has been sent


def create_app(standin: MessagesStandin | None = None) -> Starlette:
    """The ASGI app; its state is at `app.state.standin`."""
    return (standin or MessagesStandin()).app()


@dataclass
class StandinServer:
    """A stand-in serving from a daemon thread; `stop()` shuts it down."""

    url: str
    port: int
    standin: MessagesStandin
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=2)


def start_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    standin: MessagesStandin | None = None,
    extra_routes: Callable[[MessagesStandin], Sequence[BaseRoute]] | None = None,
) -> StandinServer:
    """Serves the stand-in in-process; returns once it accepts connections.

    The socket is bound here, so port 0 yields a free port known before startup.
    `standin` is a new MessagesStandin unless given (a subclass, say).
    `extra_routes` adds routes that answer through the same stand-in (Bedrock's runtime API).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it each streamed event waits ~40 ms for the client's delayed ACK (Nagle's algorithm).
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    bound_port: int = listener.getsockname()[1]
    standin = standin or MessagesStandin()
    config = uvicorn.Config(
        standin.app(extra_routes(standin) if extra_routes else ()),
        log_config=None,  # leave the host process's logging alone
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)  # off the main thread, uvicorn installs no signal handlers
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[listener])), name="messages-standin", daemon=True
    )
    thread.start()
    connect_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - a mapping, not a bind
    url_host = f"[{connect_host}]" if ":" in connect_host else connect_host
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        if server.started:
            try:
                socket.create_connection((connect_host, bound_port), timeout=1).close()
            except OSError:
                pass
            else:
                return StandinServer(f"http://{url_host}:{bound_port}", bound_port, standin, server, thread)
        time.sleep(0.01)
    server.should_exit = True
    raise RuntimeError("the Messages-API stand-in did not start")


def arguments(description: str) -> argparse.ArgumentParser:
    """The command line of a stand-in process: where it listens and how much it logs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--log-level", default="info")
    return parser


def serve(standin: MessagesStandin, parsed: argparse.Namespace) -> None:
    """Serves a stand-in in this process, in the foreground, until interrupted."""
    uvicorn.run(
        create_app(standin),
        host=parsed.host,
        port=parsed.port,
        log_level=parsed.log_level,
        access_log=parsed.log_level == "info",
    )


def main() -> None:
    serve(MessagesStandin(), arguments("A local stand-in for the Anthropic Messages API.").parse_args())

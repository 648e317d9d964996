"""A local stand-in for the Anthropic Messages API, for `make dev` and the tests.

Why: the code under test should run the real anthropic SDK code path (headers,
retries, SSE parsing, error classes) without the network, an API key or a bill.
So this speaks the real wire protocol -- JSON Message objects, `text/event-stream`
with the real event sequence, real error bodies and headers -- and answers
deterministically: "Stand-in reply to: <last user message>", plus " (turn N)" when
the request carries N-1 earlier assistant messages. One word is one output token.

Prompt caching is billed as the real API bills it (local/standin_caching.py): the
model's minimum cacheable length, the 5-minute lifetime refreshed on a hit, at most
4 breakpoints, tools and system prompt in the prefix, and automatic caching (a
top-level `cache_control`). Input tokens are ceil(characters / 4) per block.

A test steers one request with directives in the last user message; they are
removed from the echoed reply, and several may be combined:

    [standin:status=529]        answer with that error status and its real error type:
                                429 rate_limit_error, 500 api_error, 529 overloaded_error,
                                400 invalid_request_error, 401 authentication_error, ...
    [standin:retry_after=9]     the retry-after header of a 429 (default 7)
    [standin:delay=2.5]         wait that many seconds before the response headers (timeouts)
    [standin:delta_delay=0.2]   wait that many seconds between streamed text deltas
    [standin:fail_after=3]      stream: an `error` event (overloaded_error) after 3 deltas;
                                otherwise: a 529
    [standin:drop_after=3]      stream: close the connection after 3 deltas, without
                                message_stop; otherwise: close it halfway through the body
    [standin:words=50]          make the reply exactly 50 words ("w1 w2 ..." after the echo)
    [standin:echo=raw]          reply with the user's text itself, whitespace and newlines kept
                                (Markdown for the browser tests), one delta per word
    [standin:advance_clock=301] move the prompt cache's clock forward 301 s before billing this
                                request (and every later one): cache expiry without sleeping

A timing profile makes every request take as long as a real model would, so
benchmarks can subtract the stand-in's own time from a backend's. It is off
unless set, by environment variables (read when the stand-in is created, so
`make dev` passes them through) or by the CLI flags of the same names:

    STANDIN_FIRST_TOKEN_MS=400     wait before the first text delta (a non-streamed
                                   reply waits as long as its stream would have taken)
    STANDIN_TOKEN_INTERVAL_MS=15   wait between text deltas; [standin:delta_delay=...]
                                   still overrides it per request

For the tests to look at what the code under test sent, and at streams it
abandoned (the API key itself is never recorded, only whether one was sent):

    GET    /_standin/requests      the last 200 requests, oldest first, each with the
                                   usage it was billed and its "timing" (time.time()
                                   seconds): received, headers_sent, first_delta,
                                   last_delta, done, and "deltas": [[sent_at, chars]...]
    DELETE /_standin/requests      forget them
    GET    /_standin/disconnects   streams the client left early (DELETE forgets them)

Amazon Bedrock's runtime API (the same replies, behind SigV4 and its binary event
stream) is local/bedrock_standin.py, served by the same stand-in when its routes are
passed to `start_in_thread(extra_routes=...)`.

Run alone with `python -m local.messages_standin --port 8787`, or in-process with
`start_in_thread()`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local import standin_caching
from local.standin_caching import Block, InvalidCacheControl, PromptCache

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Stand-in: invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timeout"),
    529: ("overloaded_error", "Overloaded"),
}
_DIRECTIVE = re.compile(r"\[standin:(\w+)=([^\]]*)\]")
_RECORDED_REQUESTS = 200
# Request headers worth showing a test (retries, API version); never the credentials.
_RECORDED_HEADERS = ("anthropic-version", "anthropic-beta", "x-stainless-retry-count")


class _BadRequest(Exception):
    """A request the real API would refuse with a 400."""


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


@dataclass(frozen=True)
class TimingProfile:
    """How long a reply takes to generate, in seconds: a realistic pace for benchmarks."""

    first_token: float = 0.0
    token_interval: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TimingProfile:
        """From STANDIN_FIRST_TOKEN_MS and STANDIN_TOKEN_INTERVAL_MS (milliseconds; unset means 0)."""
        env = os.environ if environ is None else environ
        first = float(env.get("STANDIN_FIRST_TOKEN_MS") or 0) / 1000
        interval = float(env.get("STANDIN_TOKEN_INTERVAL_MS") or 0) / 1000
        if first < 0 or interval < 0:
            raise ValueError("STANDIN_FIRST_TOKEN_MS and STANDIN_TOKEN_INTERVAL_MS must not be negative")
        return cls(first, interval)

    def interval(self, directive: float | None) -> float:
        """The pause between deltas: a [standin:delta_delay=...] directive wins over the profile."""
        return self.token_interval if directive is None else directive

    def generation_time(self, deltas: int, interval: float) -> float:
        """What a non-streamed reply of that many deltas waits: its whole stream's duration."""
        return self.first_token + interval * max(0, deltas - 1) if deltas else 0.0


class _Timed:
    """ASGI middleware stamping when a Messages request arrived, got its headers, and ended.

    The stamps go into the dict the route records (scope["standin.timing"]), so a
    benchmark can tell the stand-in's own time from the time of the code calling it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_turn = scope["path"] == "/v1/messages" or scope["path"].startswith("/model/")  # Bedrock's
        if scope["type"] != "http" or not is_turn:
            await self._app(scope, receive, send)
            return
        timing: dict[str, Any] = {
            "received": time.time(),
            "headers_sent": None,
            "first_delta": None,
            "last_delta": None,
            "done": None,
            "deltas": [],
        }
        scope["standin.timing"] = timing

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.start":
                timing["headers_sent"] = time.time()
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                timing["done"] = time.time()

        await self._app(scope, receive, timed_send)


@dataclass(frozen=True)
class _Directives:
    """How the last user message asked this request to behave."""

    status: int | None = None
    retry_after: int = 7
    delay: float = 0.0
    delta_delay: float | None = None  # None: the timing profile's interval
    fail_after: int | None = None
    drop_after: int | None = None
    words: int | None = None
    echo: str = "summary"
    advance_clock: float = 0.0

    @classmethod
    def parse(cls, text: str) -> _Directives:
        found = dict(_DIRECTIVE.findall(text))
        unknown = sorted(found.keys() - cls.__dataclass_fields__.keys())
        if unknown:
            raise _BadRequest(f"unknown stand-in directive(s): {', '.join(unknown)}")
        try:
            directives = cls(
                status=int(found["status"]) if "status" in found else None,
                retry_after=int(found.get("retry_after", 7)),
                delay=float(found.get("delay", 0)),
                delta_delay=float(found["delta_delay"]) if "delta_delay" in found else None,
                fail_after=int(found["fail_after"]) if "fail_after" in found else None,
                drop_after=int(found["drop_after"]) if "drop_after" in found else None,
                words=int(found["words"]) if "words" in found else None,
                echo=found.get("echo", "summary"),
                advance_clock=float(found.get("advance_clock", 0)),
            )
        except ValueError as error:
            raise _BadRequest(f"bad stand-in directive value: {error}") from error
        if directives.status is not None and not 400 <= directives.status <= 599:
            raise _BadRequest("stand-in directive status must be an HTTP error status (400-599)")
        counts = (directives.retry_after, directives.fail_after, directives.drop_after)
        floats = (directives.delay, directives.delta_delay or 0, directives.advance_clock)
        if min(*floats, *(n for n in counts if n is not None)) < 0:
            raise _BadRequest("stand-in directive values must not be negative")
        if directives.echo not in ("summary", "raw"):
            raise _BadRequest("stand-in directive echo must be raw (or summary, the default)")
        if directives.words is not None and directives.words < 1:
            raise _BadRequest("stand-in directive words must be at least 1")
        return directives


@dataclass(frozen=True)
class _Prompt:
    """A request that passed validation, reduced to what the reply depends on."""

    model: str
    max_tokens: int
    stream: bool
    cache_seed: str
    blocks: list[Block]
    last_user_text: str
    assistant_turns: int


def _content_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _BadRequest(f"{where}: Input should be a valid list")
    for index, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _BadRequest(f"{where}.{index}: Input should be a valid content block")
        if block["type"] == "text":
            if not isinstance(block.get("text"), str):
                raise _BadRequest(f"{where}.{index}.text: Input should be a valid string")
            if not block["text"]:
                raise _BadRequest(f"{where}: text content blocks must be non-empty")
            if not block["text"].strip():
                raise _BadRequest(f"{where}: text content blocks must contain non-whitespace text")
    return content


def _parse_settings(body: dict[str, Any]) -> tuple[str, int, bool]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _BadRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _BadRequest("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise _BadRequest("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise _BadRequest("max_tokens: Input should be greater than or equal to 1")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _BadRequest("stream: Input should be a valid boolean")
    return model, max_tokens, stream


def _parse_prompt(body: dict[str, Any]) -> _Prompt:
    """Refuses what the real API refuses, with its wording where it matters."""
    model, max_tokens, stream = _parse_settings(body)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _BadRequest("messages: Field required")
    if not messages:
        raise _BadRequest("messages: at least one message is required")
    blocks = _tool_blocks(body.get("tools"))
    blocks += [
        _cache_block("system", block, f"system.{index}")
        for index, block in enumerate(_content_blocks(body.get("system") or [], "system"))
    ]
    last_user_text, assistant_turns = "", 0
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _BadRequest(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if index == 0 and message["role"] != "user":
            raise _BadRequest('messages: first message must use the "user" role')
        content = _content_blocks(message.get("content"), f"messages.{index}.content")
        is_final_assistant = message["role"] == "assistant" and index == len(messages) - 1
        if not content and not is_final_assistant:
            raise _BadRequest(
                f"messages.{index}: all messages must have non-empty content"
                " except for the optional final assistant message"
            )
        final_text = content[-1].get("text", "") if is_final_assistant and content else ""
        if final_text != final_text.rstrip():
            raise _BadRequest("messages: final assistant content cannot end with trailing whitespace")
        blocks.extend(
            _cache_block(message["role"], block, f"messages.{index}.content.{position}")
            for position, block in enumerate(content)
        )
        if message["role"] == "user":
            last_user_text = " ".join(block["text"] for block in content if block["type"] == "text")
        else:
            assistant_turns += 1
    try:
        blocks = standin_caching.with_automatic_breakpoint(blocks, body.get("cache_control"))
        standin_caching.check_breakpoints(blocks)
    except InvalidCacheControl as invalid:
        raise _BadRequest(str(invalid)) from invalid
    cache_seed = json.dumps([model], separators=(",", ":"))  # tools are blocks of the prefix
    return _Prompt(model, max_tokens, stream, cache_seed, blocks, last_user_text, assistant_turns)


def _cache_block(role: str, content: dict[str, Any], where: str) -> Block:
    try:
        return standin_caching.block(role, content, where)
    except InvalidCacheControl as invalid:
        raise _BadRequest(str(invalid)) from invalid


def _tool_blocks(tools: Any) -> list[Block]:
    """Tool definitions come first in the cached prefix (the API's order: tools, system, messages)."""
    if tools is None:
        return []
    if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
        raise _BadRequest("tools: Input should be a valid list")
    return [_cache_block("tool", tool, f"tools.{index}") for index, tool in enumerate(tools)]


@dataclass
class _Reply:
    """A reply decided before its first byte, and how far its stream got."""

    request_id: str
    message: dict[str, Any]
    words: list[str]
    directives: _Directives
    timing: dict[str, Any]
    sent: int = 0
    ended: bool = False


def _reply_words(prompt: _Prompt, directives: _Directives) -> tuple[list[str], str]:
    """The reply as its text deltas (a word and the space after it), and its stop reason."""
    if directives.echo == "raw":
        raw = _DIRECTIVE.sub("", prompt.last_user_text).strip() or "(empty)"
        deltas = re.findall(r"\S+\s*", raw)
        if len(deltas) > prompt.max_tokens:
            return deltas[: prompt.max_tokens], "max_tokens"
        return deltas, "end_turn"
    echoed = " ".join(_DIRECTIVE.sub(" ", prompt.last_user_text).split())
    text = f"Stand-in reply to: {echoed}"
    if prompt.assistant_turns:
        text += f" (turn {prompt.assistant_turns + 1})"
    words = text.split()
    if directives.words is not None:
        filler = (f"w{n}" for n in range(1, directives.words + 1))
        words = [*words, *filler][: directives.words]
    stop_reason = "end_turn"
    if len(words) > prompt.max_tokens:
        words, stop_reason = words[: prompt.max_tokens], "max_tokens"
    return [f"{word} " for word in words[:-1]] + words[-1:], stop_reason


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _error(status: int, request_id: str, message: str | None = None, **headers: str) -> JSONResponse:
    fallback = ("api_error" if status >= 500 else "invalid_request_error", "")
    error_type, default_message = _ERRORS.get(status, fallback)
    return JSONResponse(
        {
            "type": "error",
            "error": {"type": error_type, "message": message or default_message or f"Error {status}"},
            "request_id": request_id,
        },
        status_code=status,
        headers={"request-id": request_id, **headers},
    )


class _EventStream(StreamingResponse):
    """An SSE response that notices when the client leaves before message_stop."""

    def __init__(self, body: AsyncIterator[bytes], reply: _Reply, standin: MessagesStandin) -> None:
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

    def __init__(self, profile: TimingProfile | None = None) -> None:
        self.profile = TimingProfile.from_env() if profile is None else profile
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
            middleware=[Middleware(_Timed)],
        )
        app.state.standin = self
        return app

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return _error(status, _new_id("req_"), f"{request.method} {request.url.path}: not found")

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
        timing: dict[str, Any] = request.scope.get("standin.timing") or {"received": time.time()}
        timing.setdefault("deltas", [])
        record = {
            "request_id": request_id,
            "received_at": time.time(),
            "body": body,
            **fields,
            "headers": {name: request.headers[name] for name in _RECORDED_HEADERS if name in request.headers},
            "usage": None,
            "timing": timing,
        }
        with self._lock:
            self._requests.append(record)
        return record

    async def _messages(self, request: Request) -> Response:
        request_id = _new_id("req_")
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        # SDK 1.x sends x-api-key, SDK 2.x a bearer token: either counts, neither is recorded.
        has_api_key = bool(request.headers.get("x-api-key") or request.headers.get("authorization"))
        record = self.record(request, request_id, body, has_api_key=has_api_key)
        if not has_api_key:
            return _error(401, request_id, "x-api-key header is required")
        if not isinstance(body, dict):
            return _error(400, request_id, "The request body is not a valid JSON object.")
        return await self.reply(request, record, body)

    async def reply(self, request: Request, record: dict[str, Any], body: dict[str, Any]) -> Response:
        """The Messages API's answer to a request body (a JSON Message, an SSE stream, or an error)."""
        try:
            prompt = _parse_prompt(body)
            directives = _Directives.parse(prompt.last_user_text)
        except _BadRequest as bad:
            return _error(400, record["request_id"], str(bad))
        return await self._answer(request, record, prompt, directives)

    async def _answer(
        self, request: Request, record: dict[str, Any], prompt: _Prompt, directives: _Directives
    ) -> Response:
        request_id: str = record["request_id"]
        if directives.advance_clock:
            self.cache.advance(directives.advance_clock)
        if directives.delay:
            await asyncio.sleep(directives.delay)
        fails = directives.fail_after is not None and not prompt.stream
        status = directives.status or (529 if fails else None)
        if status == 429:
            return _error(status, request_id, **{"retry-after": str(directives.retry_after)})
        if status:
            return _error(status, request_id)
        words, stop_reason = _reply_words(prompt, directives)
        bill = self.cache.bill(prompt.cache_seed, prompt.model, prompt.blocks)
        message = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": prompt.model,
            "content": [{"type": "text", "text": "".join(words)}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {**bill.usage(), "output_tokens": len(words)},
        }
        record["usage"] = message["usage"]
        if not prompt.stream and self.profile != TimingProfile():
            interval = self.profile.interval(directives.delta_delay)
            await asyncio.sleep(self.profile.generation_time(len(words), interval))
        if not prompt.stream and directives.drop_after is not None:
            return StreamingResponse(
                _truncated(json.dumps(message).encode()),
                media_type="application/json",
                headers={"request-id": request_id},
            )
        if not prompt.stream:
            return JSONResponse(message, headers={"request-id": request_id})
        reply = _Reply(request_id, message, words, directives, record["timing"])
        return _EventStream(self._events(request, reply), reply, self)

    async def _events(self, request: Request, reply: _Reply) -> AsyncIterator[bytes]:
        """The real event sequence, one delta per word, each sent as soon as it is yielded."""
        message, directives = reply.message, reply.directives
        usage = {**message["usage"], "output_tokens": 1}
        start = {**message, "content": [], "stop_reason": None, "usage": usage}
        yield _sse("message_start", {"type": "message_start", "message": start})
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        yield _sse("ping", {"type": "ping"})
        limit = len(reply.words)
        interval = self.profile.interval(directives.delta_delay)
        fail_at = min(directives.fail_after, limit) if directives.fail_after is not None else None
        drop_at = min(directives.drop_after, limit) if directives.drop_after is not None else None
        for index in range(limit + 1):
            if index == fail_at:
                reply.ended = True
                error = {"type": "overloaded_error", "message": "Overloaded"}
                yield _sse("error", {"type": "error", "error": error})
                return
            if index == drop_at:
                reply.ended = True
                raise _DropConnection
            if index == limit:
                break
            pause = self.profile.first_token if index == 0 else interval
            if pause:
                await asyncio.sleep(pause)
            if await request.is_disconnected():
                return  # _EventStream records it, as reply.ended is False
            delta = {"type": "text_delta", "text": reply.words[index]}
            yield _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
            sent_at = time.time()  # the body iterator resumes only once the chunk went to the socket
            reply.timing["deltas"].append([sent_at, len(reply.words[index])])
            reply.timing["first_delta"] = reply.timing["first_delta"] or sent_at
            reply.timing["last_delta"] = sent_at
            reply.sent += 1
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": message["usage"],
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})
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
    profile: TimingProfile | None = None,
    extra_routes: Callable[[MessagesStandin], Sequence[BaseRoute]] | None = None,
) -> StandinServer:
    """Serves the stand-in in-process; returns once it accepts connections.

    The socket is bound here, so port 0 yields a free port known before startup.
    The timing profile defaults to the environment's (TimingProfile.from_env).
    `extra_routes` adds routes that answer through the same stand-in (Bedrock's runtime API).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it each streamed event waits ~40 ms for the client's delayed ACK (Nagle's algorithm).
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    bound_port: int = listener.getsockname()[1]
    standin = MessagesStandin(profile)
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


def main() -> None:
    parser = argparse.ArgumentParser(description="A local stand-in for the Anthropic Messages API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    env = TimingProfile.from_env()
    parser.add_argument(
        "--first-token-ms", type=float, default=env.first_token * 1000, help="STANDIN_FIRST_TOKEN_MS"
    )
    parser.add_argument(
        "--token-interval-ms", type=float, default=env.token_interval * 1000, help="STANDIN_TOKEN_INTERVAL_MS"
    )
    parser.add_argument("--log-level", default="info")
    arguments = parser.parse_args()
    profile = TimingProfile(arguments.first_token_ms / 1000, arguments.token_interval_ms / 1000)
    uvicorn.run(
        create_app(MessagesStandin(profile)),
        host=arguments.host,
        port=arguments.port,
        log_level=arguments.log_level,
        access_log=arguments.log_level == "info",
    )


if __name__ == "__main__":
    main()

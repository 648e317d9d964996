"""A local stand-in for the Anthropic Messages API, for `make dev` and the tests.

It speaks the real wire protocol (JSON replies, SSE streams, error bodies and
headers), so the real anthropic SDK code path runs offline. Replies are
deterministic, and a test steers each request with directives in the last
user message, which are removed from the echoed reply:

    [standin:status=529]        answer with that error status (429, 500, 529, 400, 401, ...)
    [standin:retry_after=9]     the retry-after header of a 429 (default 7)
    [standin:delay=2.5]         wait before answering (for timeouts)
    [standin:delta_delay=0.2]   wait between streamed text deltas
    [standin:fail_after=3]      stream: an `error` event after 3 deltas; plain: 529
    [standin:drop_after=3]      stream: close the connection after 3 deltas
    [standin:words=50]          make the reply exactly 50 words long

The reply is "Stand-in reply to: <message>" plus " (turn N)" from the second
turn on. Prompt caching is emulated: a prefix marked with cache_control is
remembered, and a later request that repeats it is billed as a cache read.
Requests are recorded at GET /_standin/requests (DELETE clears them), and
streams the client abandoned at GET /_standin/disconnects.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_DIRECTIVE = re.compile(r"\[standin:(\w+)=([^\]]*)\]")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}
_CACHE_LOOKBACK_BLOCKS = 20


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass
class _Block:
    """One content block of the prompt, in order: system blocks, then message blocks."""

    canonical: str
    tokens: int
    breakpoint: bool


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if isinstance(block, dict))


def _blocks_of(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content if isinstance(block, dict)]


class MessagesStandin:
    """The stand-in's state: recorded requests, disconnects and the prompt cache."""

    def __init__(self) -> None:
        self.requests: deque[dict[str, Any]] = deque(maxlen=200)
        self.disconnects: list[dict[str, Any]] = []
        self._cache: set[str] = set()
        self._lock = threading.Lock()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/messages", self.messages, methods=["POST"]),
                Route("/_standin/requests", self.recorded, methods=["GET", "DELETE"]),
                Route("/_standin/disconnects", self.disconnected, methods=["GET"]),
            ]
        )

    async def recorded(self, request: Request) -> JSONResponse:
        if request.method == "DELETE":
            self.requests.clear()
            self.disconnects.clear()
        return JSONResponse(list(self.requests))

    async def disconnected(self, _: Request) -> JSONResponse:
        return JSONResponse(self.disconnects)

    async def messages(self, request: Request) -> Response:  # noqa: PLR0911 - one return per API outcome
        request_id = f"req_standin_{uuid.uuid4().hex[:20]}"
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "The request body is not valid JSON.", request_id)
        if not isinstance(body, dict):
            return _error(400, "The request body must be an object.", request_id)
        # SDK 1.x sends x-api-key; 2.x sends the key as a bearer token. Neither is ever recorded.
        has_key = bool(request.headers.get("x-api-key") or request.headers.get("authorization"))
        self.requests.append({"body": body, "has_api_key": has_key, "request_id": request_id})
        if not has_key:
            return _error(401, "x-api-key or Authorization header is required", request_id)
        try:
            last_user_text = self._validate(body)
        except _BadRequest as bad:
            return _error(bad.status, bad.message, request_id)
        directives = dict(_DIRECTIVE.findall(last_user_text))
        if "delay" in directives:
            await asyncio.sleep(float(directives["delay"]))
        stream = bool(body.get("stream"))
        status = int(directives.get("status", "0") or 0)
        if not stream and "fail_after" in directives:
            status = 529
        if status:
            headers = {"retry-after": directives.get("retry_after", "7")} if status == 429 else {}
            return _error(status, f"Stand-in error {status}", request_id, headers)
        words, stop_reason = self._reply_words(body, last_user_text, directives)
        usage = self._usage(body, output_tokens=len(words))
        message_id = f"msg_standin_{uuid.uuid4().hex[:20]}"
        if not stream:
            return JSONResponse(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [{"type": "text", "text": "".join(words).rstrip()}],
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": usage,
                },
                headers={"request-id": request_id},
            )
        reply = _Reply(message_id, body["model"], words, stop_reason, usage, directives, request_id)
        return StreamingResponse(
            self._events(request, reply),
            media_type="text/event-stream",
            headers={"request-id": request_id, "cache-control": "no-cache"},
        )

    @staticmethod
    def _validate(body: dict[str, Any]) -> str:
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise _BadRequest("model: Field required")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _BadRequest("max_tokens: must be a positive integer")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest("messages: at least one message is required")
        if not isinstance(messages[0], dict) or messages[0].get("role") != "user":
            raise _BadRequest('messages: first message must use the "user" role')
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                raise _BadRequest(f"messages.{index}: role must be user or assistant")
            for block in _blocks_of(message.get("content", "")):
                if block.get("type") == "text" and not str(block.get("text", "")).strip():
                    raise _BadRequest(
                        f"messages.{index}: text content blocks must contain non-whitespace text"
                    )
        last_user = next(m for m in reversed(messages) if m["role"] == "user")
        return _text_of(last_user["content"])

    @staticmethod
    def _reply_words(
        body: dict[str, Any], last_user_text: str, directives: dict[str, str]
    ) -> tuple[list[str], str]:
        echoed = " ".join(_DIRECTIVE.sub(" ", last_user_text).split())
        turn = 1 + sum(1 for message in body["messages"] if message["role"] == "assistant")
        text = f"Stand-in reply to: {echoed}" + (f" (turn {turn})" if turn > 1 else "")
        words = text.split()
        if "words" in directives:
            wanted = int(directives["words"])
            words = (words + [f"w{n}" for n in range(1, wanted + 1)])[:wanted]
        stop_reason = "end_turn"
        if len(words) > body["max_tokens"]:
            words, stop_reason = words[: body["max_tokens"]], "max_tokens"
        return [f"{word} " for word in words[:-1]] + words[-1:], stop_reason

    def _usage(self, body: dict[str, Any], output_tokens: int) -> dict[str, int]:
        blocks = self._prompt_blocks(body)
        prefix_hashes, running = [], hashlib.sha256(str(body.get("model")).encode())
        for block in blocks:
            running.update(block.canonical.encode())
            prefix_hashes.append(running.hexdigest())
        cache_read = cache_creation = 0
        covered = 0  # blocks [0, covered) are already billed as cache read or write
        with self._lock:
            for index, block in enumerate(blocks):
                if not block.breakpoint:
                    continue
                hit = next(
                    (
                        back
                        for back in range(index, max(covered, index - _CACHE_LOOKBACK_BLOCKS) - 1, -1)
                        if prefix_hashes[back] in self._cache
                    ),
                    None,
                )
                if hit is not None and hit >= covered:
                    cache_read += sum(b.tokens for b in blocks[covered : hit + 1])
                    covered = hit + 1
                cache_creation += sum(b.tokens for b in blocks[covered : index + 1])
                covered = index + 1
                self._cache.add(prefix_hashes[index])
        return {
            "input_tokens": sum(b.tokens for b in blocks[covered:]),
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_creation,
            "cache_read_input_tokens": cache_read,
        }

    @staticmethod
    def _prompt_blocks(body: dict[str, Any]) -> list[_Block]:
        blocks: list[_Block] = []
        system = body.get("system") or []
        for block in _blocks_of(system):
            blocks.append(_block("system", block))
        for message in body["messages"]:
            for block in _blocks_of(message.get("content", "")):
                blocks.append(_block(message["role"], block))
        return blocks

    async def _events(self, request: Request, reply: _Reply) -> AsyncIterator[bytes]:
        words, usage, directives, request_id = reply.words, reply.usage, reply.directives, reply.request_id
        delta_delay = float(directives.get("delta_delay", "0") or 0)
        fail_after = int(directives["fail_after"]) if "fail_after" in directives else None
        drop_after = int(directives["drop_after"]) if "drop_after" in directives else None
        start_usage = {**usage, "output_tokens": 1}
        yield _sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": reply.message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": reply.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        )
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        yield _sse("ping", {"type": "ping"})
        sent = 0
        try:
            for word in words:
                if fail_after is not None and sent >= fail_after:
                    yield _sse(
                        "error",
                        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                    )
                    return
                if drop_after is not None and sent >= drop_after:
                    raise _DropConnection
                if sent and delta_delay:
                    await asyncio.sleep(delta_delay)
                if await request.is_disconnected():
                    self._record_disconnect(request_id, sent)
                    return
                yield _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": word},
                    },
                )
                sent += 1
        except (asyncio.CancelledError, OSError):
            self._record_disconnect(request_id, sent)
            raise
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})

    def _record_disconnect(self, request_id: str, sent: int) -> None:
        self.disconnects.append(
            {"request_id": request_id, "disconnected_at_delta": sent, "disconnected_at": time.time()}
        )


@dataclass
class _Reply:
    """Everything a streamed reply needs, decided before the first byte."""

    message_id: str
    model: str
    words: list[str]
    stop_reason: str
    usage: dict[str, int]
    directives: dict[str, str]
    request_id: str


class _DropConnection(Exception):
    """Raised inside a stream to end it abruptly, without message_stop."""


def _block(role: str, block: dict[str, Any]) -> _Block:
    stripped = {key: value for key, value in block.items() if key != "cache_control"}
    canonical = json.dumps([role, stripped], sort_keys=True)
    return _Block(canonical, _tokens(str(block.get("text", ""))), "cache_control" in block)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _error(status: int, message: str, request_id: str, headers: dict[str, str] | None = None) -> JSONResponse:
    error_type = _ERROR_TYPES.get(status, "api_error")
    return JSONResponse(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id},
        status_code=status,
        headers={"request-id": request_id, **(headers or {})},
    )


def create_app() -> Starlette:
    return MessagesStandin().app()


@dataclass
class StandinServer:
    url: str
    port: int
    standin: MessagesStandin
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


def start_in_thread(host: str = "127.0.0.1", port: int = 0) -> StandinServer:
    """Serves the stand-in from a daemon thread; returns once it accepts connections."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    bound_port = listener.getsockname()[1]
    standin = MessagesStandin()
    config = uvicorn.Config(standin.app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[listener])), name="messages-standin", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        raise RuntimeError("the Messages-API stand-in did not start")
    return StandinServer(f"http://{host}:{bound_port}", bound_port, standin, server, thread)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    arguments = parser.parse_args()
    uvicorn.run(create_app(), host=arguments.host, port=arguments.port, log_level="info")


if __name__ == "__main__":
    main()

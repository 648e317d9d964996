"""StreamFunction: the streamed turn routes as Server-Sent Events, and the stop request.

Lambda's managed Python runtime cannot stream a response, so this function
runs a small ASGI app under uvicorn behind the Lambda Web Adapter
(response_stream mode). This module is only the transport: the turn itself
(budget, session, Claude, saving) is claude_chat.chat_turn, its events
claude_chat.streaming.

Routes:
    POST /api/chat/stream           a stateless turn, streamed
    POST /api/chat/history/stream   a turn of the caller's session, streamed
    POST /api/chat/ui               a turn for the Vercel AI SDK's useChat (claude_chat.ui_stream)
    POST /api/chat/stop             {"turn": "<X-Turn-Id>"}: stop that reply (free, no budget)

And for the adapter alone (never a client; see `_from_the_adapter`):
    GET  /healthz                      readiness (before the first request, and after each restore)
    POST /snapstart/before-checkpoint  SnapStart: just before the snapshot (claude_chat.snapstart)
    POST /snapstart/after-restore      SnapStart: in each restored copy, before its first request
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from claude_chat import services, snapstart, stream_openapi
from claude_chat.caller import Caller, resolve_caller
from claude_chat.chat_turn import Turn, TurnRequest, begin_turn
from claude_chat.deadline import Deadline
from claude_chat.errors import (
    ApiError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
)
from claude_chat.request_body import read_json_body
from claude_chat.settings import get_settings
from claude_chat.streaming import events, stream_headers
from claude_chat.ui_stream import read_ui_request, ui_chunks, ui_stream_headers

logger = Logger()
# Init, which SnapStart snapshots: settings and the DynamoDB client (no secret, no socket). The
# anthropic SDK is already loaded, by claude_chat.chat_turn.
snapstart.warm()

# The Lambda Web Adapter puts the function URL's requestContext here, replacing any copy the client sent,
# and the invocation's context (with its deadline, in epoch milliseconds) in the other.
REQUEST_CONTEXT_HEADER = "x-amzn-request-context"
LAMBDA_CONTEXT_HEADER = "x-amzn-lambda-context"
# Where the adapter POSTs at the snapshot boundary (template.yaml: AWS_LWA_SNAPSTART_*_PATH); outside /api/.
BEFORE_CHECKPOINT_PATH = "/snapstart/before-checkpoint"
AFTER_RESTORE_PATH = "/snapstart/after-restore"

# Each turn holds a thread while it streams (the SDK is synchronous). In AWS one turn runs per
# execution environment; `make dev` runs every stream in this one process, and none may queue.
_turn_threads = ThreadPoolExecutor(max_workers=256, thread_name_prefix="turn")


class ServerSentEvents(StreamingResponse):
    """Sends each event the moment it exists, and stops the turn the moment the client leaves.

    The events are our own (claude_chat.streaming) unless a protocol's are given (claude_chat.ui_stream).
    """

    def __init__(
        self, turn: Turn, chunks: Iterator[bytes] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self._turn = turn
        self._chunks = chunks if chunks is not None else events(turn)  # a generator: runs when read
        # No Content-Length: the body is chunked, event by event.
        headers = headers if headers is not None else stream_headers(turn)
        super().__init__(content=iter(()), status_code=200, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        def produce() -> None:  # in a worker thread: the turn and the SDK are synchronous
            try:
                for chunk in self._chunks:
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        async def watch_for_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self._turn.stop()

        producer = loop.run_in_executor(_turn_threads, produce)
        watcher = asyncio.create_task(watch_for_disconnect())
        try:
            start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            await send(start)
            while (chunk := await queue.get()) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            self._turn.stop()
        finally:
            watcher.cancel()
            # Let the turn end (settled, and what the user saw saved) before the invocation may end.
            await asyncio.shield(producer)


def _headers(request: Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def _caller(request: Request, headers: dict[str, str]) -> Caller:
    try:
        source_ip = str(json.loads(headers[REQUEST_CONTEXT_HEADER])["http"]["sourceIp"])
    except (KeyError, TypeError, ValueError):
        # Only a misconfigured deployment gets here; the TCP peer is then the adapter itself.
        logger.warning("no request context from the web adapter")
        source_ip = request.client.host if request.client else "unknown"
    cookies = [f"{name}={value}" for name, value in request.cookies.items()]
    return resolve_caller(source_ip, headers, cookies)


def _lambda_context(headers: dict[str, str]) -> dict[str, object]:
    try:
        context = json.loads(headers[LAMBDA_CONTEXT_HEADER])
    except (KeyError, TypeError, ValueError):
        return {}
    return context if isinstance(context, dict) else {}


def _deadline(context: dict[str, object]) -> Deadline:
    """Lambda's deadline as the adapter passes it; without one, the configured stream time."""
    deadline_ms = context.get("deadline")
    if isinstance(deadline_ms, int | float) and not isinstance(deadline_ms, bool):
        return Deadline.at_epoch_ms(deadline_ms)
    return Deadline.after(get_settings().stream_time_limit_seconds)


async def _stream_turn(request: Request, with_history: bool, ai_sdk: bool = False) -> Response:
    headers = _headers(request)
    context = _lambda_context(headers)
    # One request at a time per execution environment: each starts with a clean log state.
    logger.clear_state()
    logger.append_keys(function_request_id=context.get("request_id"))
    body = await request.body()
    deadline = _deadline(context)

    def start() -> Turn:  # on a thread: a sign-in check may fetch the issuer's keys, the turn calls AWS
        caller = _caller(request, headers)
        read_body = (lambda: read_ui_request(body)) if ai_sdk else None
        turn_request = TurnRequest(
            caller,
            body,
            with_history=with_history,
            deadline=deadline,
            stoppable=True,
            read_body=read_body,
            replace_same_message_only=ai_sdk,
        )
        return begin_turn(turn_request)

    try:
        turn = await asyncio.get_running_loop().run_in_executor(_turn_threads, start)
    except ApiError as error:
        return _error(error)
    except Exception:
        logger.exception("stream could not start")
        return _error(InternalError())
    if ai_sdk:
        return ServerSentEvents(turn, ui_chunks(turn), ui_stream_headers(turn))
    return ServerSentEvents(turn)


async def chat_stream(request: Request) -> Response:
    return await _stream_turn(request, with_history=False)


async def chat_history_stream(request: Request) -> Response:
    return await _stream_turn(request, with_history=True)


async def chat_ui(request: Request) -> Response:
    """A turn of the conversation the chat `id` names, for AI SDK clients (DefaultChatTransport's body)."""
    return await _stream_turn(request, with_history=True, ai_sdk=True)


async def stop(request: Request) -> Response:
    """Asks a streaming turn to stop: it learns within about a second (claude_chat.stop_requests)."""
    headers = _headers(request)
    loop = asyncio.get_running_loop()
    try:
        caller = await loop.run_in_executor(_turn_threads, _caller, request, headers)  # sign-in on: 401 first
        body = read_json_body(await request.body())
        turn_id = body.data.get("turn")
        if set(body.data) != {"turn"} or not services.turn_ids().genuine(turn_id, caller.owner):
            raise InvalidRequest('The body must be {"turn": "<the X-Turn-Id of the reply to stop>"}.')
    except ApiError as error:
        return _error(error)
    try:
        stops = services.stop_requests()
        await asyncio.get_running_loop().run_in_executor(_turn_threads, lambda: stops.request(turn_id))
    except Exception:
        logger.exception("stop request could not be stored")
        return _error(InternalError())
    return JSONResponse({"ok": True})


async def ready(_: Request) -> Response:
    """The adapter's readiness check: cheap, no AWS calls."""
    return PlainTextResponse("ok")


def _from_the_adapter(request: Request) -> bool:
    """A call the Web Adapter makes itself, not an invocation it forwards from a client.

    Every request the adapter forwards carries its request and Lambda contexts, which it writes
    over any copy a client sent; its own SnapStart POSTs carry neither. The adapter also answers
    403 to a client request for a hook path, before the app sees it; this check holds without it.
    """
    return (
        request.method == "POST"
        and REQUEST_CONTEXT_HEADER not in request.headers
        and LAMBDA_CONTEXT_HEADER not in request.headers
    )


async def before_checkpoint(request: Request) -> Response:
    """The adapter's before-checkpoint hook: a non-2xx answer would fail the function's init."""
    if not _from_the_adapter(request):
        logger.warning("SnapStart hook path requested by a client: refused")
        return _error(NotFound())
    snapstart.before_checkpoint()
    return Response(status_code=204)


async def after_restore(request: Request) -> Response:
    """The adapter's after-restore hook, before the copy serves: a non-2xx answer would fail the restore."""
    if not _from_the_adapter(request):
        logger.warning("SnapStart hook path requested by a client: refused")
        return _error(NotFound())
    snapstart.after_restore()
    return Response(status_code=204)


def _error(error: ApiError) -> Response:
    return Response(
        error.json(), status_code=error.status, headers=error.headers, media_type="application/json"
    )


async def _not_found(request: Request, _: Exception) -> Response:
    return _error(NotFound())


async def _method_not_allowed(request: Request, _: Exception) -> Response:
    return _error(MethodNotAllowed(["POST"]))


def openapi_document() -> dict[str, Any]:
    """This function's routes in OpenAPI (claude_chat.stream_openapi): `make dev` merges it into
    /api/openapi.json with the other functions'."""
    return stream_openapi.document()


ROUTES = [
    Route("/api/chat/stream", chat_stream, methods=["POST"]),
    Route("/api/chat/history/stream", chat_history_stream, methods=["POST"]),
    Route("/api/chat/ui", chat_ui, methods=["POST"]),
    Route("/api/chat/stop", stop, methods=["POST"]),
]
# The adapter's own routes. The hooks take every method, so a client learns nothing from a 405.
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ADAPTER_ROUTES = [
    Route("/healthz", ready, methods=["GET"], include_in_schema=False),
    Route(BEFORE_CHECKPOINT_PATH, before_checkpoint, methods=_ANY_METHOD, include_in_schema=False),
    Route(AFTER_RESTORE_PATH, after_restore, methods=_ANY_METHOD, include_in_schema=False),
]
app = Starlette(
    routes=[*ROUTES, *ADAPTER_ROUTES],
    exception_handlers={404: _not_found, 405: _method_not_allowed},
)

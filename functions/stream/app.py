"""StreamFunction: POST /api/chat/stream and POST /api/chat/history/stream as Server-Sent Events.

Lambda's managed Python runtime cannot stream a response, so this function
runs a small ASGI app under uvicorn behind the Lambda Web Adapter
(response_stream mode). This module is only the transport: the turn itself
(budget, session, Claude, saving) lives in claude_chat.streaming.
"""

from __future__ import annotations

import asyncio
import json
import time

from aws_lambda_powertools import Logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from claude_chat.errors import ApiError, InternalError, MethodNotAllowed, NotFound
from claude_chat.http_api import client_ip_of, session_token_of
from claude_chat.streaming import ChatStream, StreamRequest, start_chat_stream

logger = Logger()

# The Lambda Web Adapter puts the function URL's requestContext here, replacing any copy the client sent,
# and the invocation's context (with its deadline, in epoch milliseconds) in the other.
REQUEST_CONTEXT_HEADER = "x-amzn-request-context"
LAMBDA_CONTEXT_HEADER = "x-amzn-lambda-context"


class ServerSentEvents(StreamingResponse):
    """Sends each event the moment it exists, and stops the turn the moment the client leaves."""

    def __init__(self, stream: ChatStream) -> None:
        self._stream = stream
        # No Content-Length: the body is chunked, event by event.
        super().__init__(content=iter(()), status_code=200, headers=stream.headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        def produce() -> None:  # in a worker thread: the pipeline and the SDK are synchronous
            try:
                for chunk in self._stream.events():
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        async def watch_for_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self._stream.stop()

        producer = loop.run_in_executor(None, produce)
        watcher = asyncio.create_task(watch_for_disconnect())
        try:
            start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            await send(start)
            while (chunk := await queue.get()) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            self._stream.stop()
        finally:
            watcher.cancel()
            # Let the turn finish (and save what the user saw) before the invocation may end.
            await asyncio.shield(producer)


def _caller(request: Request) -> tuple[str, dict[str, str]]:
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        source_ip = str(json.loads(headers[REQUEST_CONTEXT_HEADER])["http"]["sourceIp"])
    except (KeyError, TypeError, ValueError):
        # Only a misconfigured deployment gets here; the TCP peer is then the adapter itself.
        logger.warning("no request context from the web adapter")
        source_ip = request.client.host if request.client else "unknown"
    return client_ip_of(source_ip, headers), headers


def _lambda_context(headers: dict[str, str]) -> dict[str, object]:
    try:
        context = json.loads(headers[LAMBDA_CONTEXT_HEADER])
    except (KeyError, TypeError, ValueError):
        return {}
    return context if isinstance(context, dict) else {}


def _seconds_left(context: dict[str, object]) -> float | None:
    try:
        deadline_ms = float(context["deadline"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return None
    return deadline_ms / 1000 - time.time()


async def _stream_turn(request: Request, with_history: bool) -> Response:
    client_ip, headers = _caller(request)
    context = _lambda_context(headers)
    # One request at a time per execution environment: each starts with a clean log state.
    logger.clear_state()
    logger.append_keys(function_request_id=context.get("request_id"))
    cookies = [f"{name}={value}" for name, value in request.cookies.items()]
    stream_request = StreamRequest(
        body=await request.body(),
        client_ip=client_ip,
        session_token=session_token_of(headers, cookies),
        with_history=with_history,
        seconds_left=_seconds_left(context),
    )
    try:
        stream = await asyncio.get_running_loop().run_in_executor(None, start_chat_stream, stream_request)
    except ApiError as error:
        return _error(error)
    except Exception:
        logger.exception("stream could not start")
        return _error(InternalError())
    return ServerSentEvents(stream)


async def chat_stream(request: Request) -> Response:
    return await _stream_turn(request, with_history=False)


async def chat_history_stream(request: Request) -> Response:
    return await _stream_turn(request, with_history=True)


async def ready(_: Request) -> Response:
    """The adapter's readiness check: cheap, no AWS calls."""
    return PlainTextResponse("ok")


def _error(error: ApiError) -> Response:
    return Response(
        error.json(), status_code=error.status, headers=error.headers, media_type="application/json"
    )


async def _not_found(request: Request, _: Exception) -> Response:
    return _error(NotFound())


async def _method_not_allowed(request: Request, _: Exception) -> Response:
    return _error(MethodNotAllowed(["POST"]))


ROUTES = [
    Route("/api/chat/stream", chat_stream, methods=["POST"]),
    Route("/api/chat/history/stream", chat_history_stream, methods=["POST"]),
]
app = Starlette(
    routes=[*ROUTES, Route("/healthz", ready, methods=["GET"], include_in_schema=False)],
    exception_handlers={404: _not_found, 405: _method_not_allowed},
)

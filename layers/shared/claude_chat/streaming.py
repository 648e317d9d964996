"""A turn's reply as Server-Sent Events, independent of how the bytes travel.

Everything that can refuse the request happens in `chat_turn.begin_turn`,
before the first byte, so refusals are ordinary JSON errors with their status
codes. After that the reply is a `text/event-stream` whose events every
transport forwards unchanged: today an ASGI app behind the Lambda Web Adapter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from claude_chat.caller import SESSION_HEADER
from claude_chat.chat_turn import Turn
from claude_chat.claude_client import ReplyEvent, SearchStarted, Text, Thinking
from claude_chat.errors import ApiError, InternalError
from claude_chat.http_api import session_cookie
from claude_chat.models import StreamDone, StreamFailed

logger = Logger(child=True)

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # Tells proxies such as nginx not to buffer: each event must leave as soon as it exists.
    "X-Accel-Buffering": "no",
}
TURN_HEADER = "X-Turn-Id"
DONE = b"data: [DONE]\n\n"
_CONVERSATION_FIELDS = {"turns", "session", "conversation", "title"}  # a stateless turn has none


def stream_headers(turn: Turn) -> dict[str, str]:
    """The 200 response's headers: rate limits, SSE, the turn id (for a stop request), the session."""
    headers = {**turn.headers, **SSE_HEADERS, TURN_HEADER: turn.id}
    if turn.session is not None:
        headers[SESSION_HEADER] = turn.session.token_string
        headers["Set-Cookie"] = str(session_cookie(turn.session.token_string))
    return headers


def events(turn: Turn) -> Iterator[bytes]:
    """Each piece of the reply as one event (thinking, a search starting, text with its citations), then
    the final metadata event (or an error event), then [DONE]."""
    try:
        for piece in turn.events():
            yield event(reply_event(piece))  # without a model per event: they are many
    except Exception as error:
        if not isinstance(error, ApiError):
            logger.exception("stream failed")
        failure = error if isinstance(error, ApiError) else InternalError()
        yield model_event(StreamFailed(error=failure.message, code=failure.code))
        yield DONE
        return
    outcome = turn.outcome
    if outcome is None:
        return
    final = StreamDone(stop_reason=outcome.reply.stop_reason, usage=outcome.reply.usage)
    if turn.session is not None:
        final.turns = outcome.turns
        final.session = turn.session.token_string
        final.conversation = turn.session.slot.conversation
        final.title = outcome.title or ""
    yield model_event(final, exclude=None if turn.session is not None else _CONVERSATION_FIELDS)
    yield DONE


def reply_event(piece: ReplyEvent) -> dict[str, Any]:
    """A piece of the reply as its event: StreamText, StreamThinking or StreamSearch (claude_chat.models)."""
    if isinstance(piece, Thinking):
        return {"text": "", "thinking": piece.text}
    if isinstance(piece, SearchStarted):
        return {"text": "", "search": {"query": piece.query}}
    data: dict[str, Any] = {"text": piece.text}
    if isinstance(piece, Text) and piece.citations:
        data["citations"] = [cited.as_json() for cited in piece.citations]
    return data


def model_event(data: BaseModel, *, exclude: set[str] | None = None) -> bytes:
    """An event from its model (claude_chat.models), as the OpenAPI description states it."""
    return event(data.model_dump(exclude=exclude))


def event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

"""A streamed chat turn as Server-Sent Events, independent of how the bytes travel.

Everything that can refuse the request (budget, body, Claude accepting the
call) happens in `start_chat_stream`, before the first byte, so refusals are
ordinary JSON errors with their status codes. After that the reply is a
`text/event-stream` whose events every transport forwards unchanged: today
an ASGI app behind the Lambda Web Adapter, tomorrow the managed runtime.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from claude_chat import services
from claude_chat.chat_turn import StreamedTurn
from claude_chat.errors import ApiError, InternalError
from claude_chat.http_api import SESSION_HEADER, read_chat_request, session_cookie
from claude_chat.settings import get_settings

logger = Logger(child=True)

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # Tells proxies such as nginx not to buffer: each event must leave as soon as it exists.
    "X-Accel-Buffering": "no",
}
DONE = b"data: [DONE]\n\n"
_SECONDS_KEPT_FOR_CLOSING = 3.0


@dataclass(frozen=True)
class StreamRequest:
    """What a transport hands over: the raw body and who is asking."""

    body: bytes
    client_ip: str
    session_token: str | None
    with_history: bool
    seconds_left: float | None = None  # until the invocation's deadline, when the transport knows it


@dataclass
class ChatStream:
    """A started turn: the response headers, and the events to send."""

    turn: StreamedTurn
    headers: dict[str, str] = field(default_factory=dict)

    def events(self) -> Iterator[bytes]:
        """Each text delta as one event, then the final metadata event (or an error event), then [DONE]."""
        try:
            for delta in self.turn.deltas():
                yield event({"text": delta})
        except Exception as error:
            if not isinstance(error, ApiError):
                logger.exception("stream failed")
            failure = error if isinstance(error, ApiError) else InternalError()
            yield event({"text": "", "error": failure.message, "code": failure.code})
            yield DONE
            return
        outcome = self.turn.outcome
        if self.turn.stopped or outcome is None:
            return
        final: dict[str, Any] = {
            "text": "",
            "done": True,
            "stop_reason": outcome.reply.stop_reason,
            "usage": outcome.reply.usage.model_dump(),
        }
        if outcome.session is not None:
            final["turns"] = outcome.turns
            final["session"] = outcome.session.token_string
        yield event(final)
        yield DONE

    def stop(self) -> None:
        """The client went away: stop reading from Claude, keep what the user saw."""
        self.turn.stop()


def start_chat_stream(request: StreamRequest) -> ChatStream:
    """Draws on the budget, reads the body, opens the session and starts Claude's reply.

    Raises an ApiError (with the rate-limit headers) if any of these refuses.
    """
    admission = services.rate_limiter().begin(request.client_ip)
    try:
        chat = read_chat_request(request.body)
        pipeline = services.chat_pipeline()
        session = pipeline.open_session(request.session_token) if request.with_history else None
        turn = pipeline.start(
            chat.message,
            session,
            time_limit=_time_limit(request),
            admission=admission,
        )
        headers = admission.wait()
    except ApiError as error:
        headers = admission.wait()  # a spent budget (RateLimited) takes precedence over the error
        error.headers = {**headers, **error.headers}
        raise
    headers.update(SSE_HEADERS)
    if session is not None:
        headers[SESSION_HEADER] = session.token_string
        headers["Set-Cookie"] = session_cookie(session.token_string).__str__()
    return ChatStream(turn, headers)


def _time_limit(request: StreamRequest) -> float:
    """Time for Claude's reply: until a few seconds before the invocation ends, so the stream ends cleanly."""
    if request.seconds_left is None:
        return get_settings().stream_time_limit_seconds
    return max(1.0, request.seconds_left - _SECONDS_KEPT_FOR_CLOSING)


def event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

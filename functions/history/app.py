"""HistoryFunction: GET /api/chat/history (read the session, a page at a time) and DELETE (forget it)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from claude_chat import services, snapstart
from claude_chat.conversation_store import HistoryPage
from claude_chat.history_pages import (
    CURSOR_PATTERN,
    ENVELOPE_BYTES,
    PAGE_BYTES,
    PAGE_TURNS,
    decode_cursor,
    encode_cursor,
)
from claude_chat.http_api import FunctionUrlApi, openapi_responses, session_response
from claude_chat.models import (
    ErrorReply,
    HistoryMessage,
    HistoryReply,
    RequestUsage,
    ResetReply,
    TokenUsage,
    UsageReply,
)
from claude_chat.tracing import tracer

logger = Logger()
snapstart.prepare()
app = FunctionUrlApi()


_NO_STORE = {"Cache-Control": {"description": "Always `no-store`.", "schema": {"type": "string"}}}
_BAD_QUERY: dict[str, Any] = {
    "description": "`limit` or `before` is not valid (`invalid_request`).",
    "content": {"application/json": {"model": ErrorReply}},
}


def _no_store(responses: dict[int, Any]) -> dict[int, Any]:
    """The OpenAPI responses of a route whose 200 says `Cache-Control: no-store`."""
    success = responses[200]
    success["headers"] = {**success.get("headers", {}), **_NO_STORE}
    return responses


@app.get(
    "/api/chat/history",
    summary="The session's conversation, a page at a time",
    responses=_no_store({**openapi_responses(HistoryReply, session=True), 422: _BAD_QUERY}),
)
def read_history(
    limit: Annotated[
        int, Query(ge=1, le=PAGE_TURNS, description=f"Most turns in the page (1 to {PAGE_TURNS}).")
    ] = PAGE_TURNS,
    before: Annotated[
        str | None,
        Query(pattern=CURSOR_PATTERN, description="A previous reply's `before`: the page of older turns."),
    ] = None,
) -> Response[HistoryReply]:
    older_than = decode_cursor(before) if before is not None else None
    caller = app.caller
    session = services.sessions().open(caller.session_token, user=caller.user)
    store = services.sessions().store
    page = HistoryPage((), None)
    if older_than is None or older_than[0] == session.record.generation:
        page = store.history_page(
            session.record,
            limit,
            max_bytes=PAGE_BYTES - ENVELOPE_BYTES,
            before=older_than[1] if older_than else None,
        )
    messages: list[HistoryMessage] = []
    for turn in page.turns:
        messages.append(HistoryMessage(role="user", content=turn.user))
        messages.append(HistoryMessage(role="assistant", content=turn.assistant))
    store.touch(session.record, lasting=caller.user is not None)
    reply = HistoryReply(
        messages=messages,
        turns=session.record.turns,
        session=session.token_string,
        before=None if page.older is None else encode_cursor(session.record.generation, page.older),
    )
    return _uncached(session_response(reply.model_dump(), session.token_string))


@app.delete(
    "/api/chat/history",
    summary="Forget the session's conversation",
    responses=_no_store(openapi_responses(ResetReply, session=True)),
)
def reset_history() -> Response[ResetReply]:
    caller = app.caller
    session = services.sessions().open(caller.session_token, user=caller.user)
    if not session.token.is_new:  # a session issued just now has nothing to forget, nor a turn in flight
        services.sessions().store.reset(session.record, lasting=caller.user is not None)
    return _uncached(session_response(ResetReply().model_dump(), session.token_string))


@app.get(
    "/api/usage",
    summary="The caller's budgets: requests in this window, tokens today (free)",
    responses=_no_store(openapi_responses(UsageReply)),
)
def usage() -> Response[UsageReply]:
    caller = app.caller
    tokens_read = services.pool().submit(
        services.token_budgets().state, caller.client_key, per_key=caller.daily_tokens
    )
    window = services.rate_limiter().peek(caller.client_key)
    tokens = tokens_read.result()
    reply = UsageReply(
        requests=RequestUsage(limit=window.limit, remaining=window.remaining, reset=window.reset_after),
        tokens=TokenUsage(
            limit=tokens.budget or None,
            used=tokens.used,
            remaining=tokens.remaining if tokens.budget else None,
            reset=tokens.reset_after,
        ),
    )
    return _uncached(Response(status_code=200, content_type="application/json", body=reply.model_dump()))


def _uncached(response: Response[Any]) -> Response[Any]:
    """A conversation is private: no browser or proxy cache may keep (or replay) it."""
    response.headers["Cache-Control"] = "no-store"
    return response


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # histories hold message text: never in traces
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.handle(event, context)

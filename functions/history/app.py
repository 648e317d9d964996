"""HistoryFunction: GET /api/chat/history (read the session) and DELETE (forget it)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from claude_chat import services, snapstart
from claude_chat.http_api import FunctionUrlApi, openapi_responses, session_response, session_token
from claude_chat.models import HistoryMessage, HistoryReply, ResetReply
from claude_chat.tracing import tracer

logger = Logger()
snapstart.prepare()
app = FunctionUrlApi()


@app.get(
    "/api/chat/history",
    summary="The session's conversation",
    responses=openapi_responses(HistoryReply, session=True),
)
def read_history() -> Response[HistoryReply]:
    session = services.sessions().open(session_token(app.current_event.raw_event))
    store = services.sessions().store
    messages: list[HistoryMessage] = []
    for turn in store.all_turns(session.record):
        messages.append(HistoryMessage(role="user", content=turn.user))
        messages.append(HistoryMessage(role="assistant", content=turn.assistant))
    store.touch(session.record)
    reply = HistoryReply(messages=messages, turns=len(messages) // 2, session=session.token_string)
    return session_response(reply.model_dump(), session.token_string)


@app.delete(
    "/api/chat/history",
    summary="Forget the session's conversation",
    responses=openapi_responses(ResetReply, session=True),
)
def reset_history() -> Response[ResetReply]:
    session = services.sessions().open(session_token(app.current_event.raw_event))
    services.sessions().store.reset(session.record)
    return session_response(ResetReply().model_dump(), session.token_string)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # histories hold message text: never in traces
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.handle(event, context)

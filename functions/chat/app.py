"""ChatFunction: POST /api/chat (stateless) and POST /api/chat/history (a turn of the session)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

# Imported here so the anthropic SDK (most of this function's cold start) loads in the
# init phase, which SnapStart snapshots, not on the first request.
import claude_chat.claude_client  # noqa: F401
from claude_chat import snapstart
from claude_chat.chat_turn import TurnRequest, run_turn
from claude_chat.claude_client import ClaudeReply
from claude_chat.http_api import FunctionUrlApi, openapi_responses, session_response
from claude_chat.models import ChatReply, ChatRequest, ConversationChatReply, ConversationTurnRequest
from claude_chat.tracing import tracer

logger = Logger()
snapstart.prepare()
app = FunctionUrlApi(
    bodies={"POST /api/chat": ChatRequest, "POST /api/chat/history": ConversationTurnRequest}
)
_ERRORS = (400, 413, 422, 429, 502, 503, 504)


def _turn_request(with_history: bool) -> TurnRequest:
    event = app.current_event
    return TurnRequest(
        caller=app.caller,
        body=event.get("body"),
        is_base64=bool(event.is_base64_encoded),
        with_history=with_history,
        deadline=app.deadline,
    )


@app.post(
    "/api/chat", summary="One stateless turn", responses=openapi_responses(ChatReply, *_ERRORS, limited=True)
)
def chat() -> Response[dict[str, Any]]:
    turn, outcome = run_turn(_turn_request(with_history=False))
    reply = ChatReply(reply=outcome.reply.text, usage=outcome.reply.usage, **_extras(outcome.reply))
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=reply.model_dump(),
        headers=turn.headers,
    )


@app.post(
    "/api/chat/history",
    summary="One turn of one of the caller's conversations (by default, their current one)",
    responses=openapi_responses(ConversationChatReply, *_ERRORS, session=True, limited=True),
)
def chat_with_history() -> Response[ConversationChatReply]:
    turn, outcome = run_turn(_turn_request(with_history=True))
    assert turn.session is not None  # a turn with history always has its session
    token = turn.session.token_string
    reply = ConversationChatReply(
        reply=outcome.reply.text,
        usage=outcome.reply.usage,
        turns=outcome.turns or 0,
        session=token,
        conversation=turn.session.slot.conversation,
        title=outcome.title or "",
        **_extras(outcome.reply),
    )
    return session_response(reply.model_dump(), token, turn.headers)


def _extras(reply: ClaudeReply) -> dict[str, Any]:
    """The reply's thinking and citations, when it has them (a reply without leaves them out)."""
    return {"thinking": reply.thinking or None, "citations": list(reply.citations) or None}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # replies hold message text: never in traces
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.handle(event, context)

"""ChatFunction: POST /api/chat (stateless) and POST /api/chat/history (a turn of the session)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

# Imported here so the anthropic SDK (most of this function's cold start) loads in the
# init phase, which SnapStart snapshots, not on the first request.
import claude_chat.chat_turn  # noqa: F401
from claude_chat import services, snapstart
from claude_chat.http_api import FunctionUrlApi, openapi_responses, session_response, session_token
from claude_chat.models import ChatReply, ChatRequest, SessionChatReply
from claude_chat.tracing import tracer

logger = Logger()
snapstart.prepare()
app = FunctionUrlApi(rate_limiter=services.rate_limiter)
_ERRORS = (400, 413, 422, 429, 502, 503, 504)


@app.post(
    "/api/chat", summary="One stateless turn", responses=openapi_responses(ChatReply, *_ERRORS, limited=True)
)
def chat(request: Annotated[ChatRequest, Body()]) -> ChatReply:
    outcome = services.chat_pipeline().run(request.message, admission=app.context.get("admission"))
    return ChatReply(reply=outcome.reply.text, usage=outcome.reply.usage)


@app.post(
    "/api/chat/history",
    summary="One turn of the caller's session",
    responses=openapi_responses(SessionChatReply, *_ERRORS, session=True, limited=True),
)
def chat_with_history(request: Annotated[ChatRequest, Body()]) -> Response[SessionChatReply]:
    pipeline = services.chat_pipeline()
    session = pipeline.open_session(session_token(app.current_event.raw_event))
    outcome = pipeline.run(request.message, session, admission=app.context.get("admission"))
    reply = SessionChatReply(
        reply=outcome.reply.text,
        usage=outcome.reply.usage,
        turns=outcome.turns or 0,
        session=session.token_string,
    )
    return session_response(reply.model_dump(), session.token_string)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # replies hold message text: never in traces
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.handle(event, context)

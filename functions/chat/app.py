"""ChatFunction: POST /api/chat (stateless), POST /api/chat/history (a turn of the session), and
POST /api/attachments (a presigned upload of a file for a later turn)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

# Imported here so the anthropic SDK (most of this function's cold start) loads in the
# init phase, which SnapStart snapshots, not on the first request.
import claude_chat.claude_client  # noqa: F401
from claude_chat import services, snapstart
from claude_chat.admission import Charge, Limits
from claude_chat.attachments import MAX_BYTES, UPLOAD_SECONDS, AttachmentTooLarge
from claude_chat.chat_turn import TurnRequest, run_turn
from claude_chat.claude_client import ClaudeReply
from claude_chat.errors import ApiError
from claude_chat.http_api import FunctionUrlApi, openapi_responses, session_response
from claude_chat.models import (
    AttachmentRequest,
    AttachmentUpload,
    ChatReply,
    ChatRequest,
    ConversationChatReply,
    ConversationTurnRequest,
    PresignedUpload,
)
from claude_chat.request_body import read_json_body, request_error
from claude_chat.tracing import tracer

logger = Logger()
snapstart.prepare()
app = FunctionUrlApi(
    bodies={
        "POST /api/chat": ChatRequest,
        "POST /api/chat/history": ConversationTurnRequest,
        "POST /api/attachments": AttachmentRequest,
    }
)
_ERRORS = (400, 404, 413, 415, 422, 429, 502, 503, 504)


def _created(responses: dict[int, Any]) -> dict[int, Any]:
    responses[201] = {**responses.pop(200), "description": "Created: upload the file with `upload`."}
    return responses


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


@app.post(
    "/api/attachments",
    summary="Start an upload: a presigned POST straight to the object store, for a turn's `attachments`",
    responses=_created(
        openapi_responses(AttachmentUpload, 400, 413, 422, 429, 503, session=True, limited=True)
    ),
)
def create_attachment() -> Response[AttachmentUpload]:
    """Counts against the request window (not the token budgets: the file costs when a turn sends it).
    Answers 413 for a size past the type's limit before anything is drawn; the upload itself is held
    to the declared type and size by the presigned POST's policy, and checked again by its bytes when
    a turn names it."""
    event = app.current_event
    data = read_json_body(event.get("body"), is_base64=bool(event.is_base64_encoded)).data
    try:
        asked = AttachmentRequest.model_validate(data)
    except ValidationError as error:
        raise request_error([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from error
    if asked.size > MAX_BYTES[asked.type]:
        kind = "PDFs" if asked.type == "application/pdf" else "Images"
        raise AttachmentTooLarge(f"{kind} may be at most {MAX_BYTES[asked.type] // 1024 // 1024} MB.")
    store = services.attachments()  # 503 not_configured when the deployment has no bucket
    caller = app.caller
    session = services.sessions().open(caller.session_token, user=caller.user)
    try:
        services.admission().admit(caller.client_key, Charge(), Limits())  # the request window only
    except ApiError as error:
        error.headers = {**services.rate_limiter().peek(caller.client_key).headers(), **error.headers}
        raise
    upload = store.presign_upload(session.owner, asked.name.strip() or asked.name, asked.type, asked.size)
    reply = AttachmentUpload(
        id=upload.id, upload=PresignedUpload(url=upload.url, fields=upload.fields), expires_in=UPLOAD_SECONDS
    )
    headers = services.rate_limiter().peek(caller.client_key).headers()
    response = session_response(reply.model_dump(), session.token_string, headers)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # replies hold message text: never in traces
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.handle(event, context)

"""HistoryFunction: reading and managing conversations (turns are the chat and stream functions').

GET /api/chat/history (the default conversation, a page at a time) and DELETE (forget it);
GET /api/conversations (the caller's list), GET, PATCH (rename) and DELETE /api/conversations/<id>,
GET /api/conversations/<id>/export; GET /api/usage; GET /api/attachments/<id> (a short-lived link).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from claude_chat import services, snapstart
from claude_chat.attachments import LINK_SECONDS, AttachmentNotFound
from claude_chat.conversation_store import ConversationSummary, HistoryPage
from claude_chat.conversations import (
    LIST_CURSOR_PATTERN,
    LIST_PAGE,
    LIST_PAGE_MAX,
    decode_list_cursor,
    encode_list_cursor,
    export_filename,
    export_json,
    export_markdown,
    fits_one_response,
    messages_of,
    summary_reply,
)
from claude_chat.errors import ConversationNotFound, ExportTooLarge
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
    ATTACHMENT_ID_PATTERN,
    CONVERSATION_ID_PATTERN,
    ConversationList,
    ConversationReply,
    ErrorReply,
    ExportedConversation,
    HistoryReply,
    ModelInfo,
    ModelPrices,
    ModelsReply,
    MoneyUsage,
    RenameRequest,
    RequestUsage,
    ResetReply,
    TokenUsage,
    UsageReply,
)
from claude_chat.models import ConversationSummary as ConversationSummaryReply
from claude_chat.pricing import PRICES_AS_OF, usd
from claude_chat.request_body import read_json_body, request_error
from claude_chat.sessions import OpenSession
from claude_chat.settings import get_settings
from claude_chat.tracing import tracer

logger = Logger()
snapstart.prepare()
app = FunctionUrlApi(bodies={"PATCH /api/conversations/{conversation_id}": RenameRequest})


_NO_STORE = {"Cache-Control": {"description": "Always `no-store`.", "schema": {"type": "string"}}}
_BAD_QUERY: dict[str, Any] = {
    "description": "`limit` or `before` is not valid (`invalid_request`).",
    "content": {"application/json": {"model": ErrorReply}},
}


_TurnLimit = Annotated[
    int, Query(ge=1, le=PAGE_TURNS, description=f"Most turns in the page (1 to {PAGE_TURNS}).")
]
_TurnCursor = Annotated[
    str | None,
    Query(pattern=CURSOR_PATTERN, description="A previous reply's `before`: the page of older turns."),
]


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
    limit: _TurnLimit = PAGE_TURNS,
    before: _TurnCursor = None,
) -> Response[HistoryReply]:
    caller = app.caller
    session = services.sessions().open(caller.session_token, user=caller.user)
    page, older = _page(session, limit, before)
    reply = HistoryReply(
        messages=messages_of(page.turns),
        turns=session.record.turns,
        session=session.token_string,
        before=older,
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
    summary="The caller's budgets: requests in this window, tokens and money today (free)",
    responses=_no_store(openapi_responses(UsageReply)),
)
def usage() -> Response[UsageReply]:
    caller = app.caller
    day_read = services.pool().submit(
        services.admission().day_use, caller.client_key, caller.limits(get_settings())
    )
    window = services.rate_limiter().peek(caller.client_key)
    day = day_read.result()
    tokens, money = day.limits.tokens, day.limits.nanos
    reply = UsageReply(
        requests=RequestUsage(limit=window.limit, remaining=window.remaining, reset=window.reset_after),
        tokens=TokenUsage(
            limit=tokens or None,
            used=day.tokens,
            remaining=max(0, tokens - day.tokens) if tokens else None,
            reset=day.reset_after,
        ),
        money=MoneyUsage(
            limit=usd(money) if money else None,
            spent=usd(day.nanos),
            remaining=usd(max(0, money - day.nanos)) if money else None,
            reset=day.reset_after,
        ),
    )
    return _uncached(Response(status_code=200, content_type="application/json", body=reply.model_dump()))


@app.get(
    "/api/models",
    summary="The models the caller may choose, with their prices (free)",
    responses=openapi_responses(ModelsReply),
)
def models() -> Response[dict[str, Any]]:
    choices = services.catalog().choices(app.caller.groups)
    reply = ModelsReply(
        models=[
            ModelInfo(id=choice.name, default=index == 0, prices=ModelPrices(**choice.prices.as_usd()))
            for index, choice in enumerate(choices)
        ],
        prices_as_of=PRICES_AS_OF,
    )
    response = Response(status_code=200, content_type="application/json", body=reply.model_dump())
    response.headers["Cache-Control"] = "private, max-age=300"  # the caller's choices change with a deploy
    return response


_CONVERSATION_ID = Path(pattern=CONVERSATION_ID_PATTERN, description="The conversation's id.")
_NOT_FOUND: dict[str, Any] = {
    "description": "No such conversation of this caller (`not_found`), another caller's included.",
    "content": {"application/json": {"model": ErrorReply}},
}


@app.get(
    "/api/conversations",
    summary="The caller's conversations, most recently updated first",
    responses=_no_store({**openapi_responses(ConversationList, session=True), 422: _BAD_QUERY}),
)
def list_conversations(
    limit: Annotated[
        int,
        Query(ge=1, le=LIST_PAGE_MAX, description=f"Most conversations in the page (1 to {LIST_PAGE_MAX})."),
    ] = LIST_PAGE,
    before: Annotated[
        str | None,
        Query(pattern=LIST_CURSOR_PATTERN, description="A previous reply's `next`: the page after it."),
    ] = None,
) -> Response[ConversationList]:
    after = decode_list_cursor(before) if before is not None else None
    caller = app.caller
    session = services.sessions().open(caller.session_token, user=caller.user)
    found, more = services.sessions().store.conversations(session.owner, limit, after)
    services.sessions().touch(session, caller.user)
    reply = ConversationList(
        conversations=[summary_reply(summary) for summary in found],
        next=encode_list_cursor(more) if more is not None else None,
    )
    return _uncached(session_response(reply.model_dump(), session.token_string))


@app.get(
    "/api/conversations/<conversation_id>",
    summary="One conversation: its summary and a page of its messages",
    responses=_no_store(
        {**openapi_responses(ConversationReply, session=True), 404: _NOT_FOUND, 422: _BAD_QUERY}
    ),
)
def read_conversation(
    conversation_id: Annotated[str, _CONVERSATION_ID],
    limit: _TurnLimit = PAGE_TURNS,
    before: _TurnCursor = None,
) -> Response[ConversationReply]:
    session, summary = _listed(conversation_id)
    page, older = _page(session, limit, before)
    reply = ConversationReply(
        **summary_reply(summary).model_dump(), messages=messages_of(page.turns), before=older
    )
    return _uncached(session_response(reply.model_dump(), session.token_string))


@app.patch(
    "/api/conversations/<conversation_id>",
    summary="Rename a conversation",
    responses=_no_store({**openapi_responses(ConversationSummaryReply, 400, session=True), 404: _NOT_FOUND}),
)
def rename_conversation(
    conversation_id: Annotated[str, _CONVERSATION_ID],
) -> Response[ConversationSummaryReply]:
    event = app.current_event
    data = read_json_body(event.get("body"), is_base64=bool(event.is_base64_encoded)).data
    try:
        title = RenameRequest.model_validate(data).title.strip()
    except ValidationError as error:
        located = [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        raise request_error(located) from error
    session, _ = _listed(conversation_id)
    renamed = services.sessions().store.rename(session.record, title)
    if renamed is None:  # deleted meanwhile
        raise ConversationNotFound()
    return _uncached(session_response(summary_reply(renamed).model_dump(), session.token_string))


@app.delete(
    "/api/conversations/<conversation_id>",
    summary="Delete a conversation, for good",
    responses=_no_store({**openapi_responses(ResetReply, session=True), 404: _NOT_FOUND}),
)
def delete_conversation(conversation_id: Annotated[str, _CONVERSATION_ID]) -> Response[ResetReply]:
    caller = app.caller
    session = services.sessions().open(caller.session_token, user=caller.user, conversation=conversation_id)
    if session.token.is_new:  # a session issued just now owns nothing
        raise ConversationNotFound()
    store = services.sessions().store
    # Final for a turn in flight even when nothing is saved yet; but only a conversation that
    # was there (listed) is deleted, so a second DELETE answers like an id that never existed.
    if not store.reset(session.record, lasting=caller.user is not None, must_exist=True):
        raise ConversationNotFound()
    return _uncached(session_response(ResetReply().model_dump(), session.token_string))


@app.get(
    "/api/conversations/<conversation_id>/export",
    summary="Download a conversation as Markdown or JSON",
    responses=_no_store(
        {
            200: {
                "description": "The conversation as a file (`Content-Disposition: attachment`).",
                "content": {
                    "text/markdown": {"schema": {"type": "string"}},
                    "application/json": {"model": ExportedConversation},
                },
            },
            404: _NOT_FOUND,
            413: {
                "description": "Too long to export in one response (`export_too_large`).",
                "content": {"application/json": {"model": ErrorReply}},
            },
            422: _BAD_QUERY,
        }
    ),
)
def export_conversation(
    conversation_id: Annotated[str, _CONVERSATION_ID],
    format: Annotated[
        Literal["markdown", "json"], Query(description="`markdown` (the default) or `json`.")
    ] = "markdown",
) -> Response[str]:
    session, summary = _listed(conversation_id)
    turns = services.sessions().store.all_turns(session.record)
    now = int(time.time() * 1000)
    if format == "json":
        text, content_type, extension = export_json(summary, turns, now), "application/json", "json"
    else:
        text, content_type, extension = (
            export_markdown(summary, turns, now),
            "text/markdown; charset=utf-8",
            "md",
        )
    if not fits_one_response(text):
        raise ExportTooLarge()
    filename = export_filename(summary.title, extension)
    response: Response[str] = Response(
        status_code=200,
        content_type=content_type,
        body=text,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
    return _uncached(response)


_NO_LINK: dict[int, Any] = {
    404: {
        "description": "No such attachment of this caller (`not_found`), another caller's included.",
        "content": {"application/json": {"model": ErrorReply}},
    },
    422: _BAD_QUERY,
}


@app.get(
    "/api/attachments/<attachment_id>",
    summary="Download one of the caller's attachments: 302 to a short-lived link, or the link as JSON",
    responses=_NO_LINK
    | {
        200: {
            "description": 'With `Accept: application/json` (alone or among other types): `{"url", '
            '"expires_in"}`, the link and its seconds to live, instead of the 302. For a page on another '
            "origin than this function: a redirect of its credentialed fetch to the object store would "
            "reach it as origin `null`, which CORS refuses, while the link itself can be fetched from the "
            "page's origin.",
            "headers": _NO_STORE,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "url": {"type": "string", "description": "A presigned link to the file."},
                            "expires_in": {
                                "type": "integer",
                                "const": LINK_SECONDS,
                                "description": "Seconds the link works.",
                            },
                        },
                        "required": ["url", "expires_in"],
                        "additionalProperties": False,
                    }
                }
            },
        },
        302: {
            "description": f"`Location`: a presigned link to the file, valid {LINK_SECONDS} seconds.",
            "headers": {"Location": {"description": "The link.", "schema": {"type": "string"}}, **_NO_STORE},
        },
    },
)
def download_attachment(
    attachment_id: Annotated[str, Path(pattern=ATTACHMENT_ID_PATTERN, description="The attachment's id.")],
) -> Response[str]:
    caller = app.caller
    owner = services.sessions().owner(caller.session_token, caller.user)
    store = services.attachments()
    found = store.exists(owner, attachment_id) if owner is not None else None
    if owner is None or found is None:
        raise AttachmentNotFound()
    link = store.link(owner, attachment_id, found.name, found.type)
    # Content negotiation (OpenAPI ignores an `Accept` parameter: the 200's media type says it).
    accept = app.current_event.get_header_value("accept", default_value="", case_sensitive=False) or ""
    if "application/json" in accept.lower():
        body = json.dumps({"url": link, "expires_in": LINK_SECONDS})
        return _uncached(Response(status_code=200, content_type="application/json", body=body))
    return _uncached(Response(status_code=302, body="", headers={"Location": link}))


def _page(session: OpenSession, limit: int, before: str | None) -> tuple[HistoryPage, str | None]:
    """A page of the conversation the session is open on, and the cursor of the page before it.

    Reading slides the session's idle expiry. A cursor from before a reset names turns that are
    gone: its page is empty.
    """
    older_than = decode_cursor(before) if before is not None else None
    record = session.record
    page = HistoryPage((), None)
    if older_than is None or older_than[0] == record.generation:
        page = services.sessions().store.history_page(
            record, limit, max_bytes=PAGE_BYTES - ENVELOPE_BYTES, before=older_than[1] if older_than else None
        )
    services.sessions().touch(session, app.caller.user)
    return page, None if page.older is None else encode_cursor(record.generation, page.older)


def _listed(conversation_id: str) -> tuple[OpenSession, ConversationSummary]:
    """The caller's session on a conversation they have (one with a saved turn), or a 404."""
    caller = app.caller
    session = services.sessions().open(caller.session_token, user=caller.user, conversation=conversation_id)
    record = session.record
    if record.updated_at is None:
        raise ConversationNotFound()
    summary = ConversationSummary(
        conversation_id, record.title or "", record.turns, record.updated_at, record.model
    )
    return session, summary


def _uncached(response: Response[Any]) -> Response[Any]:
    """A conversation is private: no browser or proxy cache may keep (or replay) it."""
    response.headers["Cache-Control"] = "no-store"
    return response


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # histories hold message text: never in traces
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.handle(event, context)

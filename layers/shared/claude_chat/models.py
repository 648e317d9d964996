"""Request and reply bodies of the HTTP contract.

The same models validate requests, shape replies and generate the OpenAPI
description, so the three cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationInfo,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from claude_chat.settings import get_settings

LONE_SURROGATE = "lone_surrogate"  # the pydantic error type of a message that is not Unicode text
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_lone_surrogate(value: Any, info: ValidationInfo) -> Any:
    """JSON can escape half of a UTF-16 pair ("\\ud800"): that is not text, and Claude could not read it."""
    if isinstance(value, str) and _SURROGATE.search(value):
        raise PydanticCustomError(
            LONE_SURROGATE,
            "`{field}` holds a lone surrogate (a \\ud800-\\udfff escape without its pair): not valid text.",
            {"field": info.field_name or "message"},
        )
    return value


# The Messages API refuses text blocks that are empty or only whitespace, so
# such a message is the client's error (422), not Claude's (502).
MessageText = Annotated[
    str,
    # A character that is not white space, the same set in the server's regex engine (Unicode White_Space:
    # U+0085 but not U+FEFF) and in the description's (ECMAScript \s: U+FEFF but not U+0085).
    StringConstraints(
        min_length=1, max_length=get_settings().max_message_chars, pattern=r"[^\s\u0085\ufeff]"
    ),
    BeforeValidator(_no_lone_surrogate),  # after the constraints, so they keep their str error types
]


def _deployment_models() -> list[str]:
    """Every model name this deployment offers anyone (the description's `enum` for `model`)."""
    from claude_chat.model_choice import plain_name

    settings = get_settings()
    configured = [*settings.claude_models, *(m for ms in settings.group_models.values() for m in ms)]
    return list(dict.fromkeys(plain_name(model) for model in configured))


ATTACHMENT_ID_PATTERN = r"^[A-Za-z0-9_-]{22}$"
AttachmentId = Annotated[str, StringConstraints(pattern=ATTACHMENT_ID_PATTERN)]


def _distinct(ids: list[str]) -> list[str]:
    if len(set(ids)) != len(ids):
        raise ValueError("names the same attachment twice")
    return ids


class ChatRequest(BaseModel):
    """What the browser sends: the text, and which of the operator's models answers it (optional).

    The system prompt and the limits are the operator's."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"message": "Hello, Claude!"}]})

    message: MessageText = Field(description="The user's message.")
    model: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="One of the caller's models (GET /api/models); the default model when left out. "
        "Another answers 422 `model_not_allowed` (a group's model for someone outside the group too).",
        json_schema_extra={"enum": [*_deployment_models(), None]},
    )
    attachments: Annotated[list[AttachmentId], AfterValidator(_distinct)] = Field(
        default_factory=list,
        max_length=get_settings().max_attachments,
        json_schema_extra={"uniqueItems": True},
        description="Ids of the caller's uploads (POST /api/attachments), sent to Claude with the message: "
        "at most MAX_ATTACHMENTS, each once. A file belongs to the conversation of the first turn that "
        "uses it.",
    )


CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ConversationId = Annotated[str, StringConstraints(pattern=CONVERSATION_ID_PATTERN)]
TITLE_MAX_CHARS = 120


class ConversationTurnRequest(ChatRequest):
    """A turn of one of the caller's conversations (the routes with history)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"message": "Hello, Claude!", "conversation": "Zq3n0kX9aW1bC2dE3fG4hA"}]
        },
    )

    conversation: ConversationId = Field(
        default="default",
        description="Which of the caller's conversations (1 to 64 of A-Z a-z 0-9 _ -, chosen by the client; "
        "a new id starts a new conversation). `default` is the one the seed routes address.",
    )
    # Files the body carried itself (claude_chat.attachments.InlineFile: the AI SDK's `file` parts,
    # claude_chat.ui_stream), checked and sent with `attachments`; never read from JSON.
    _inline_files: tuple[Any, ...] = PrivateAttr(default=())

    replace_last: bool = Field(
        default=False,
        strict=True,  # true or false, not "yes" or 1
        description="Regenerate or edit and resend: this turn replaces the conversation's last saved turn, "
        "which Claude does not see and which is deleted when this one is saved.",
    )


# One line of text with a visible character: no C0/C1 control characters (tabs and newlines included).
TITLE_PATTERN = (
    r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
)


class RenameRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"title": "Trip to Lisbon"}]})

    title: Annotated[
        str,
        StringConstraints(min_length=1, max_length=TITLE_MAX_CHARS, pattern=TITLE_PATTERN),
        BeforeValidator(_no_lone_surrogate),
    ] = Field(description=f"The new title: one line, 1 to {TITLE_MAX_CHARS} characters, not only spaces.")


class Usage(BaseModel):
    """Token counts of the Claude call, cache reads and writes included, and the web searches it ran."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    web_search_requests: int = Field(default=0, description="Web searches Claude ran (each priced).")


class _LeavesOutUnused(BaseModel):
    """A reply whose optional `thinking` and `citations` are left out when they are None (most replies
    have neither, and clients written before them see the same fields as before)."""

    @model_serializer(mode="wrap")
    def _leave_out_unused(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        for name in ("thinking", "citations"):
            if isinstance(data, dict) and data.get(name, ...) is None:
                del data[name]
        return data


class Citation(BaseModel):
    """A source the reply's text cites: a web page (`url`, `title`) or a page of a PDF the turn
    carried (`document`, `page`); `cited_text` is the passage cited. Fields that do not apply are
    left out."""

    model_config = ConfigDict(extra="forbid")

    cited_text: str
    url: str | None = Field(default=None, description="Web search: the page's address.")
    title: str | None = Field(default=None, description="Web search: the page's title.")
    document: str | None = Field(default=None, description="PDF: the document's title (or attachment id).")
    page: int | None = Field(default=None, description="PDF: the page cited (the first, for a range).")

    @model_serializer(mode="wrap")
    def _only_what_applies(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            web = data.get("url") is not None
            for name in ("url", "title") if not web else ("document", "page"):
                data.pop(name, None)
            if not web and data.get("page") is None:
                data.pop("page", None)
        return data

    def as_json(self) -> dict[str, Any]:
        return dict(self.model_dump())


class ChatReply(_LeavesOutUnused):
    reply: str = Field(description="Claude's answer.")
    usage: Usage
    thinking: str | None = Field(
        default=None, description="THINKING_BUDGET_TOKENS on: what Claude thought before answering."
    )
    citations: list[Citation] | None = Field(
        default=None, description="The sources the reply cites (web search results, PDF pages), in order."
    )


class SessionChatReply(ChatReply):
    turns: int = Field(description="Completed user/assistant exchanges in the session, this one included.")
    session: str = Field(description="The session token; send it back in the X-Session-Id header.")


class ConversationChatReply(SessionChatReply):
    conversation: str = Field(description="The conversation this turn belongs to.")
    title: str = Field(description="The conversation's title (plain text, never markup).")


class AttachmentRef(BaseModel):
    """A file of a message: `GET /api/attachments/<id>` downloads it (its owner only)."""

    id: str
    name: str
    type: str
    size: int = Field(description="Bytes.")


class HistoryMessage(BaseModel):
    """A message of the history; what it does not have (files, thinking, sources) is left out."""

    role: Literal["user", "assistant"]
    content: str
    attachments: list[AttachmentRef] | None = Field(
        default=None,
        exclude_if=lambda files: not files,
        description="The user message's files; left out when it has none.",
    )
    thinking: str | None = Field(
        default=None,
        exclude_if=lambda thinking: thinking is None,
        description="Assistant messages: Claude's thinking, if any.",
    )
    citations: list[Citation] | None = Field(
        default=None,
        exclude_if=lambda citations: citations is None,
        description="Assistant messages: the sources the reply cites, if any.",
    )


def _whole_number(value: Any) -> Any:
    """A JSON integer (2 or 2.0), never a string or a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number of bytes")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number of bytes")
        return int(value)
    return value


ATTACHMENT_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf")


class AttachmentRequest(BaseModel):
    """A file about to be uploaded: its name, type and size (the upload may be no larger)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "receipt.png", "type": "image/png", "size": 183204}],
            # Each type's limit (a larger size is 413 `attachment_too_large`).
            "anyOf": [
                {
                    "properties": {
                        "type": {"enum": ["image/jpeg", "image/png", "image/gif", "image/webp"]},
                        "size": {"maximum": 5 * 1024 * 1024},
                    }
                },
                {"properties": {"type": {"const": "application/pdf"}, "size": {"maximum": 32 * 1024 * 1024}}},
            ],
        },
    )

    name: Annotated[
        str,
        StringConstraints(min_length=1, max_length=255, pattern=r"^[^\u0000-\u001F\u007F/\\]+$"),
        BeforeValidator(_no_lone_surrogate),
    ] = Field(description="The file's name (shown in the history; one line, no slashes).")
    type: Literal["image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"] = Field(
        description="Images at most 5 MB; PDFs at most 32 MB and 100 pages."
    )
    size: Annotated[int, BeforeValidator(_whole_number)] = Field(
        gt=0, description="Bytes; the upload may be no larger."
    )


class PresignedUpload(BaseModel):
    url: str = Field(description="POST a multipart/form-data body here: `fields`, then `file` last.")
    fields: dict[str, str]


class AttachmentUpload(BaseModel):
    id: str = Field(description="Name it in a turn's `attachments` once uploaded.")
    upload: PresignedUpload
    expires_in: int = Field(description="Seconds the upload may start within.")


class HistoryReply(BaseModel):
    messages: list[HistoryMessage] = Field(description="A page of the conversation, oldest first.")
    turns: int = Field(description="Completed exchanges in the whole conversation, not only this page.")
    session: str
    before: str | None = Field(
        description="Cursor of the older turns: send it as `?before=` for the page before; null at the start",
    )


class ConversationSummary(BaseModel):
    id: str
    title: str = Field(description="Plain text, never markup.")
    turns: int
    updated_at: str = Field(description="When a turn was last saved: ISO 8601, UTC, milliseconds.")
    model: str | None = Field(default=None, description="The model of its last turn.")


class ConversationList(BaseModel):
    conversations: list[ConversationSummary] = Field(description="Newest first.")
    next: str | None = Field(description="Cursor of the next page: send it as `?before=`; null at the end.")


class ConversationReply(ConversationSummary):
    messages: list[HistoryMessage] = Field(description="A page of the conversation, oldest first.")
    before: str | None = Field(
        description="Cursor of the older turns: send it as `?before=` for the page before; null at the start",
    )


class ExportedConversation(BaseModel):
    id: str
    title: str
    updated_at: str
    exported_at: str
    messages: list[HistoryMessage]


class ResetReply(BaseModel):
    ok: Literal[True] = True


class StreamText(_LeavesOutUnused):
    """A piece of the reply, in order: append `text` (a client of the seed guide does just that)."""

    model_config = ConfigDict(extra="forbid")

    text: str
    citations: list[Citation] | None = Field(
        default=None, description="The sources this text cites (left out when it cites none)."
    )


class StreamThinking(BaseModel):
    """A piece of Claude's thinking (THINKING_BUDGET_TOKENS on), sent before the reply's text."""

    model_config = ConfigDict(extra="forbid")

    text: Literal[""] = ""
    thinking: str


class SearchQuery(BaseModel):
    query: str


class StreamSearch(BaseModel):
    """Claude starts a web search (WEB_SEARCH_MAX_USES on)."""

    model_config = ConfigDict(extra="forbid")

    text: Literal[""] = ""
    search: SearchQuery


class StreamDone(BaseModel):
    """The last event before `[DONE]` of a reply that ended well (or was stopped: `stop_reason`)."""

    model_config = ConfigDict(extra="forbid")

    text: Literal[""] = ""
    done: Literal[True] = True
    stop_reason: str | None = Field(description="Claude's, or `stopped` when the client stopped the reply.")
    usage: Usage
    turns: int | None = Field(default=None, description="With history: the conversation's saved turns.")
    session: str | None = Field(default=None, description="With history: the session token.")
    conversation: str | None = Field(default=None, description="With history: the conversation's id.")
    title: str | None = Field(default=None, description="With history: the conversation's title.")


class StreamFailed(BaseModel):
    """An error after the stream began, then `[DONE]`; the turn saved nothing."""

    model_config = ConfigDict(extra="forbid")

    text: Literal[""] = ""
    error: str
    code: str


class StopRequest(BaseModel):
    turn: str = Field(description="The `X-Turn-Id` of the streaming reply to stop.")


class ErrorReply(BaseModel):
    """Every error of every route has this shape; 429 adds retryAfter (seconds to wait) and limit."""

    error: str = Field(description="Human-readable message.")
    code: str = Field(description="Stable machine-readable code.")
    retryAfter: int | None = Field(default=None, description="Seconds to wait (429 only).")
    limit: Literal["requests", "tokens", "money"] | None = Field(
        default=None,
        description='429 only: the budget that is spent: "requests" per window, "tokens" or "money" per day.',
    )


class RequestUsage(BaseModel):
    limit: int = Field(description="Requests allowed per window.")
    remaining: int = Field(description="Requests left in this window.")
    reset: int = Field(description="Seconds until the window resets.")


class TokenUsage(BaseModel):
    limit: int | None = Field(description="Tokens allowed per UTC day; null when the daily budget is off.")
    used: int = Field(description="Tokens used today (input, cache and output).")
    remaining: int | None = Field(description="Tokens left today; null when the daily budget is off.")
    reset: int = Field(description="Seconds until the UTC day ends.")


class MoneyUsage(BaseModel):
    limit: float | None = Field(
        description="USD allowed per UTC day; null when the daily money budget is off."
    )
    spent: float = Field(description="USD spent today, priced per model (GET /api/models).")
    remaining: float | None = Field(description="USD left today; null when the money budget is off.")
    reset: int = Field(description="Seconds until the UTC day ends.")
    currency: Literal["USD"] = "USD"


class UsageReply(BaseModel):
    """The caller's budgets, read without drawing on them."""

    requests: RequestUsage
    tokens: TokenUsage
    money: MoneyUsage


class ModelPrices(BaseModel):
    """USD per million tokens; `web_search` per search."""

    input: float
    output: float
    cache_write: float = Field(description="5-minute cache writes.")
    cache_write_1h: float = Field(description="1-hour cache writes.")
    cache_read: float
    web_search: float = Field(description="USD per web search.")


class ModelInfo(BaseModel):
    id: str = Field(description="What a turn's `model` names.")
    default: bool = Field(description="The model of a turn that names none.")
    prices: ModelPrices


class ModelsReply(BaseModel):
    """The models the caller may choose, with their prices (the first is the default)."""

    models: list[ModelInfo]
    prices_as_of: str = Field(description="The date of the price table (ISO 8601).")
    currency: Literal["USD"] = "USD"

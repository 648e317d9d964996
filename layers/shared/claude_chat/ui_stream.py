"""The Vercel AI SDK's UI message stream (`useChat`, `DefaultChatTransport`) on top of the one turn pipeline.

The SDK's clients cannot read our own events, so `POST /api/chat/ui` speaks
their protocol (`x-vercel-ai-ui-message-stream: v1`) for the same turn: the
body is the one `DefaultChatTransport` sends, the reply is its chunks. Only
the transport differs; budgets, sessions, conversations and stop are the turn's
(claude_chat.chat_turn), and errors before the first byte are our JSON errors.

The body. The chat `id` names the caller's conversation; only the text of the
last message (the user's, its text parts joined) is sent to Claude: the
conversation's history is the server's, not what the client holds.
`regenerate-message` replaces the conversation's last saved turn, as
`replace_last` does. Newer SDKs add fields (metadata, part kinds, transport
`body` options), so unknown fields are accepted; what we read is checked.

The chunks, and only chunks every supported client accepts. AI SDK 5.0.0
checks each chunk against a strict schema (no field it does not know; its
`finish` has no `finishReason`), 5.x later, 6 and 7 against loose ones. So:
`start` {messageId, messageMetadata}, `text-start` / `text-delta` / `text-end`
{id, delta}, `finish` {messageMetadata} or `error` {errorText}, then
`data: [DONE]`. Thinking goes as `reasoning-start` / `reasoning-delta` /
`reasoning-end` {id, delta}, each source a reply cites once as `source-url`
{sourceId, url, title} (a web page) or `source-document` {sourceId, mediaType,
title} (a PDF), and a web search as it starts as a transient `data-search`
{data: {query}} (not kept in the message): the same shapes in 5.0.0, 5.x, 6
and 7 (ai's ui-message-chunks). What a client needs beyond the text travels as message
metadata (merged into `message.metadata`): on `start` the `session` (to send
back as X-Session-Id), the `conversation` and the `turn` (the id a
`POST /api/chat/stop` names: in AWS a function never learns that its client
left); on `finish` `usage`, `turns`, `title`, `stop_reason`, and `session`
and `conversation` again. An `error`'s `errorText` is our JSON error body
(`{"error", "code"}`), which is also the text the SDK's error carries when a
request is refused before the stream, so a client reads `code` one way.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from claude_chat.attachments import MAX_BYTES, AttachmentTooLarge, InlineFile, UnsupportedAttachment
from claude_chat.chat_turn import Turn
from claude_chat.claude_client import ReplyEvent, SearchStarted, Thinking
from claude_chat.errors import ApiError, InternalError, InvalidRequest, MessageTooLong
from claude_chat.models import (
    CONVERSATION_ID_PATTERN,
    LONE_SURROGATE,
    Citation,
    ConversationTurnRequest,
    Usage,
)
from claude_chat.request_body import read_json_body
from claude_chat.settings import get_settings
from claude_chat.streaming import DONE, stream_headers

logger = Logger(child=True)

UI_STREAM_HEADERS = {"x-vercel-ai-ui-message-stream": "v1"}
TEXT_PART_ID = "text-1"  # the one text part of the reply (ids only need to be unique within a message)
# What Claude reads with files sent without a word (a message must have text).
_FILES_ONLY_MESSAGE = "(an attached file)"
_FILES_ONLY_MESSAGE_MANY = "(attached files)"


class UIMessagePart(BaseModel):
    """A part of a UIMessage: text and file parts are read; tools and the like are passed over."""

    model_config = ConfigDict(extra="allow")

    type: Annotated[str, Field(strict=True)]
    text: Annotated[str | None, Field(strict=True)] = None

    @model_validator(mode="after")
    def _text_part_has_text(self) -> UIMessagePart:
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs its `text`")
        return self


class UIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # id, metadata, and whatever a newer SDK adds

    role: Literal["system", "user", "assistant"]
    parts: list[UIMessagePart]


class UIChatRequest(BaseModel):
    """The body of AI SDK's DefaultChatTransport (`body` options of the transport arrive as extra fields)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "id": "Zq3n0kX9aW1bC2dE3fG4hA",
                    "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "Hello"}]}],
                    "trigger": "submit-message",
                }
            ]
        },
    )

    id: Annotated[str, StringConstraints(pattern=CONVERSATION_ID_PATTERN)] = Field(
        description="The chat id: which of the caller's conversations (1 to 64 of A-Z a-z 0-9 _ -)."
    )
    messages: list[UIMessage] = Field(
        min_length=1, description="The chat; only its last message is read (and checked)."
    )
    trigger: Literal["submit-message", "regenerate-message"] = Field(
        description="`regenerate-message` replaces the conversation's last saved turn."
    )
    messageId: str | None = Field(default=None, description="Set by the SDK; not used.")


class _Strict(BaseModel):
    """What we send: exactly these fields (AI SDK 5.0.0 refuses any other)."""

    model_config = ConfigDict(extra="forbid")


class StartMetadata(_Strict):
    turn: str = Field(description='The turn\'s id: `POST /api/chat/stop` {"turn"} stops this reply.')
    session: str | None = Field(default=None, description="The session token (send it as X-Session-Id).")
    conversation: str | None = None


class FinishMetadata(_Strict):
    usage: Usage
    stop_reason: str | None = None  # None (Claude named none) leaves the chunk without it
    turns: int | None = None
    title: str | None = None
    session: str | None = None
    conversation: str | None = None


class StartChunk(_Strict):
    type: Literal["start"] = "start"
    messageId: str
    messageMetadata: StartMetadata


class TextStartChunk(_Strict):
    type: Literal["text-start"] = "text-start"
    id: str


class TextDeltaChunk(_Strict):
    type: Literal["text-delta"] = "text-delta"
    id: str
    delta: str


class TextEndChunk(_Strict):
    type: Literal["text-end"] = "text-end"
    id: str


class ReasoningStartChunk(_Strict):
    type: Literal["reasoning-start"] = "reasoning-start"
    id: str


class ReasoningDeltaChunk(_Strict):
    type: Literal["reasoning-delta"] = "reasoning-delta"
    id: str
    delta: str


class ReasoningEndChunk(_Strict):
    type: Literal["reasoning-end"] = "reasoning-end"
    id: str


class SourceUrlChunk(_Strict):
    type: Literal["source-url"] = "source-url"
    sourceId: str
    url: str
    title: str | None = None


class SourceDocumentChunk(_Strict):
    type: Literal["source-document"] = "source-document"
    sourceId: str
    mediaType: str
    title: str


class SearchData(_Strict):
    query: str


class SearchDataChunk(_Strict):
    """A web search starting: transient, so it is not kept in the message."""

    type: Literal["data-search"] = "data-search"
    data: SearchData
    transient: Literal[True] = True


class FinishChunk(_Strict):
    type: Literal["finish"] = "finish"
    messageMetadata: FinishMetadata


class ErrorChunk(_Strict):
    type: Literal["error"] = "error"
    errorText: str = Field(description='Our JSON error body, `{"error", "code"}`, as text.')


CHUNKS = (
    StartChunk,
    TextStartChunk,
    TextDeltaChunk,
    TextEndChunk,
    ReasoningStartChunk,
    ReasoningDeltaChunk,
    ReasoningEndChunk,
    SourceUrlChunk,
    SourceDocumentChunk,
    SearchDataChunk,
    FinishChunk,
    ErrorChunk,
)


def read_ui_request(body: str | bytes | None, *, is_base64: bool = False) -> ConversationTurnRequest:
    """The turn an AI SDK body asks for, or the contract's ApiError (InvalidJson, InvalidRequest, ...)."""
    data = read_json_body(body, is_base64=is_base64).data
    # Only the last message is read, so only it is checked: the transport sends the whole chat on every
    # turn, and walking megabytes of it through the model would cost seconds of CPU for nothing.
    messages = data.get("messages")
    last_index = 0
    if isinstance(messages, list) and len(messages) > 1:
        last_index = len(messages) - 1
        data = {**data, "messages": messages[-1:]}
    try:
        request = UIChatRequest.model_validate(data)
    except ValidationError as error:
        raise _body_error([_at_index(e, last_index) for e in error.errors()]) from error
    last = request.messages[-1]
    if last.role != "user":
        raise InvalidRequest("The last of `messages` must be the user's message to answer.")
    text = "\n".join(part.text for part in last.parts if part.type == "text" and part.text is not None)
    regenerate = request.trigger == "regenerate-message"
    turn: dict[str, Any] = {"message": text, "conversation": request.id, "replace_last": regenerate}
    if request.model_extra and "model" in request.model_extra:  # the transport's `body` option
        turn["model"] = request.model_extra["model"]
    files = _inline_files(last.parts)
    if files and not text.strip():
        turn["message"] = _FILES_ONLY_MESSAGE if len(files) == 1 else _FILES_ONLY_MESSAGE_MANY
    try:
        asked = ConversationTurnRequest.model_validate(turn)
    except ValidationError as error:
        raise _text_error(error.errors()) from error
    asked._inline_files = files
    return asked


def _inline_files(parts: Sequence[UIMessagePart]) -> tuple[InlineFile, ...]:
    """The `file` parts of the message: each must carry its bytes as a base64 data URL (a link is
    refused, never fetched), of a type and size an upload may have; checked by its bytes later, as
    an uploaded file is (claude_chat.turn_files)."""
    files: list[InlineFile] = []
    for part in parts:
        if part.type != "file":
            continue
        extra = part.model_extra or {}
        url, media_type = extra.get("url"), extra.get("mediaType")
        if not isinstance(url, str) or not isinstance(media_type, str):
            raise InvalidRequest("A `file` part needs its `url` and `mediaType`.")
        if not url.startswith("data:"):
            raise InvalidRequest("A `file` part must carry the file as a data: URL: links are never fetched.")
        header, comma, payload = url[len("data:") :].partition(",")
        if not comma or not header.endswith(";base64"):
            raise InvalidRequest("A `file` part's data: URL must be base64.")
        if media_type not in MAX_BYTES:
            raise UnsupportedAttachment()
        too_large = AttachmentTooLarge("This file is larger than its type allows.")
        if len(payload) > (MAX_BYTES[media_type] + 2) // 3 * 4:  # not decoded at all
            raise too_large
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("A `file` part's data: URL is not valid base64.") from None
        if len(data) > MAX_BYTES[media_type]:
            raise too_large
        files.append(InlineFile(_file_name(extra.get("filename"), media_type), media_type, data))
    if len(files) > get_settings().max_attachments:
        raise InvalidRequest(f"A message may carry at most {get_settings().max_attachments} files.")
    return tuple(files)


def _file_name(given: Any, media_type: str) -> str:
    """The part's `filename` as a plain name (its last path segment, no control characters), or one
    made from its type."""
    name = given.replace("\\", "/").rsplit("/", 1)[-1] if isinstance(given, str) else ""
    name = "".join(c for c in name if c.isprintable()).strip()[:255]
    return name or f"attachment.{media_type.rsplit('/', 1)[-1]}"


def _at_index(error: Mapping[str, Any], index: int) -> Mapping[str, Any]:
    """An error in the one message checked, located at its place in the body's `messages`."""
    location = tuple(error.get("loc", ()))
    if location[:2] != ("messages", 0):
        return error
    return {**error, "loc": ("messages", index, *location[2:])}


def _body_error(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    first = errors[0]
    location = [str(step) for step in first.get("loc", ())]
    if location == ["id"]:
        return InvalidRequest("`id` (the chat id) must be 1 to 64 of the characters A-Z a-z 0-9 _ -.")
    where = ".".join(location)
    if first.get("type") == "missing":
        return InvalidRequest(f"`{where}` is required.")
    return InvalidRequest(f"`{where}`: {first.get('msg', 'not valid')}.")


def _text_error(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    if any(error.get("loc") == ("model",) for error in errors):
        return InvalidRequest("`model` must be the id of one of your models (GET /api/models).")
    kind = next((error.get("type") for error in errors if error.get("loc") == ("message",)), None)
    if kind == "string_too_long":
        return MessageTooLong(get_settings().max_message_chars)
    if kind == LONE_SURROGATE:
        return InvalidRequest("The last message holds a lone surrogate (\\ud800-\\udfff): not valid text.")
    return InvalidRequest("The last message must have text: a `text` part that is not only spaces.")


def ui_stream_headers(turn: Turn) -> dict[str, str]:
    """Our stream's headers (rate limits, X-Turn-Id, the session) and the protocol's marker."""
    return {**stream_headers(turn), **UI_STREAM_HEADERS}


def ui_chunks(turn: Turn) -> Iterator[bytes]:
    """The reply as UI message chunks: start, the text part, then finish (or error), then [DONE]."""
    start = StartMetadata(turn=turn.id)
    if turn.session is not None:
        start.session, start.conversation = turn.session.token_string, turn.session.slot.conversation
    yield model_chunk(StartChunk(messageId=f"msg-{secrets.token_urlsafe(16)}", messageMetadata=start))
    parts = _Parts()
    try:
        for piece in turn.events():
            yield from parts.chunks(piece)
    except Exception as error:
        if not isinstance(error, ApiError):
            logger.exception("stream failed")
        failure = error if isinstance(error, ApiError) else InternalError()
        yield model_chunk(ErrorChunk(errorText=failure.json()))
        yield DONE
        return
    outcome = turn.outcome
    if outcome is None:  # the client left: nobody reads on
        return
    yield from parts.end()
    finish = FinishMetadata(usage=outcome.reply.usage, stop_reason=outcome.reply.stop_reason)
    if turn.session is not None:
        finish.turns, finish.title = outcome.turns, outcome.title or ""
        finish.session, finish.conversation = turn.session.token_string, turn.session.slot.conversation
    yield model_chunk(FinishChunk(messageMetadata=finish))
    yield DONE


class _Parts:
    """Which parts of the message are open: a reasoning part closes when something else comes, the
    one text part at the end; each source is sent once."""

    def __init__(self) -> None:
        self.text_started = False
        self.reasoning: str | None = None  # the id of the reasoning part being sent
        self.reasonings = 0
        self.sources: dict[tuple[str, str], str] = {}

    def chunks(self, piece: ReplyEvent) -> Iterator[bytes]:
        if isinstance(piece, Thinking):
            if self.reasoning is None:
                self.reasonings += 1
                self.reasoning = f"reasoning-{self.reasonings}"
                yield model_chunk(ReasoningStartChunk(id=self.reasoning))
            yield chunk({"type": "reasoning-delta", "id": self.reasoning, "delta": piece.text})  # many
            return
        yield from self._end_reasoning()
        if isinstance(piece, SearchStarted):
            yield model_chunk(SearchDataChunk(data=SearchData(query=piece.query)))
            return
        for cited in piece.citations:
            key = (cited.url or "", cited.document or "")
            if key not in self.sources:
                self.sources[key] = f"source-{len(self.sources) + 1}"
                yield model_chunk(_source_chunk(self.sources[key], cited))
        if piece.text:
            if not self.text_started:
                self.text_started = True
                yield model_chunk(TextStartChunk(id=TEXT_PART_ID))
            yield chunk({"type": "text-delta", "id": TEXT_PART_ID, "delta": piece.text})  # TextDeltaChunk

    def end(self) -> Iterator[bytes]:
        yield from self._end_reasoning()
        if self.text_started:
            yield model_chunk(TextEndChunk(id=TEXT_PART_ID))

    def _end_reasoning(self) -> Iterator[bytes]:
        if self.reasoning is not None:
            yield model_chunk(ReasoningEndChunk(id=self.reasoning))
            self.reasoning = None


def _source_chunk(source_id: str, cited: Citation) -> BaseModel:
    if cited.url is not None:
        return SourceUrlChunk(sourceId=source_id, url=cited.url, title=cited.title)
    return SourceDocumentChunk(
        sourceId=source_id, mediaType="application/pdf", title=cited.document or "document"
    )


def model_chunk(data: BaseModel) -> bytes:
    """A chunk from its model, without the metadata a turn has not got (a stateless one has no session)."""
    return chunk(data.model_dump(exclude_none=True))


def chunk(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

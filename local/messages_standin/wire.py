"""The Messages API's wire format, as the stand-in speaks it: what it accepts, and how it answers.

Why apart: the anthropic SDK under test must meet the real API's shapes (its 400s
for a bad body, its error JSON and `request-id` header, its `text/event-stream`
event sequence), whatever the reply says and however the server paces it. So
request validation, error bodies and the SSE framing of Messages-API events live
here, and nothing else does; local/messages_standin/bedrock.py wraps the same
shapes in Bedrock's.

Input tokens are ceil(characters / 4) per block (caching.py); the prompt's blocks
come in the API's order, tools, system, messages, as prompt caching sees them.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from local.messages_standin import caching
from local.messages_standin.caching import Block, InvalidCacheControl

ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Stand-in: invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timeout"),
    529: ("overloaded_error", "Overloaded"),
}


class BadRequest(Exception):
    """A request the real API would refuse with a 400."""


@dataclass(frozen=True)
class Prompt:
    """A request that passed validation, reduced to what the reply depends on."""

    model: str
    max_tokens: int
    stream: bool
    cache_seed: str
    blocks: list[Block]
    last_user_text: str
    assistant_turns: int


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def error(status: int, request_id: str, message: str | None = None, **headers: str) -> JSONResponse:
    """The API's error body for a status (its error type, a default message) with the request id."""
    fallback = ("api_error" if status >= 500 else "invalid_request_error", "")
    error_type, default_message = ERRORS.get(status, fallback)
    return JSONResponse(
        {
            "type": "error",
            "error": {"type": error_type, "message": message or default_message or f"Error {status}"},
            "request_id": request_id,
        },
        status_code=status,
        headers={"request-id": request_id, **headers},
    )


# --------------------------------------------------------------------------- requests


def _content_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise BadRequest(f"{where}: Input should be a valid list")
    for index, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise BadRequest(f"{where}.{index}: Input should be a valid content block")
        if block["type"] == "text":
            if not isinstance(block.get("text"), str):
                raise BadRequest(f"{where}.{index}.text: Input should be a valid string")
            if not block["text"]:
                raise BadRequest(f"{where}: text content blocks must be non-empty")
            if not block["text"].strip():
                raise BadRequest(f"{where}: text content blocks must contain non-whitespace text")
        elif block["type"] in _FILE_TYPES:
            _check_file_block(block, f"{where}.{index}")
    return content


# The file blocks the API takes with a base64 source: images, and PDF documents (with citations or not).
_FILE_TYPES = {
    "image": ("image/jpeg", "image/png", "image/gif", "image/webp"),
    "document": ("application/pdf",),
}


def _check_file_block(block: dict[str, Any], where: str) -> None:
    """An image or document block as the API checks it: a base64 source with a media type it takes and
    data that decodes (a URL source is the API's too, but not Bedrock's: the project sends base64 only);
    a document's `citations`, when present, is {"enabled": bool}."""
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        raise BadRequest(f"{where}.source: Input tag {source and source.get('type')!r} is not 'base64'")
    media_type = source.get("media_type")
    if media_type not in _FILE_TYPES[block["type"]]:
        allowed = ", ".join(repr(t) for t in _FILE_TYPES[block["type"]])
        raise BadRequest(f"{where}.source.media_type: Input should be {allowed}")
    data = source.get("data")
    if not isinstance(data, str) or not data:
        raise BadRequest(f"{where}.source.data: Field required")
    try:
        base64.b64decode(data, validate=True)
    except ValueError:
        raise BadRequest(f"{where}.source.data: invalid base64 data") from None
    citations = block.get("citations")
    if (
        block["type"] == "document"
        and citations is not None
        and (not isinstance(citations, dict) or not isinstance(citations.get("enabled"), bool))
    ):
        raise BadRequest(f"{where}.citations.enabled: Input should be a valid boolean")
    if block["type"] == "document" and not isinstance(block.get("title", ""), str):
        raise BadRequest(f"{where}.title: Input should be a valid string")
    if block["type"] == "image" and "citations" in block:
        raise BadRequest(f"{where}.citations: Extra inputs are not permitted")


def _parse_settings(body: dict[str, Any]) -> tuple[str, int, bool]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise BadRequest("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise BadRequest("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise BadRequest("max_tokens: Input should be greater than or equal to 1")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream: Input should be a valid boolean")
    return model, max_tokens, stream


def parse_prompt(body: dict[str, Any]) -> Prompt:
    """Refuses what the real API refuses, with its wording where it matters."""
    model, max_tokens, stream = _parse_settings(body)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("messages: Field required")
    if not messages:
        raise BadRequest("messages: at least one message is required")
    blocks = _tool_blocks(body.get("tools"))
    blocks += [
        _cache_block("system", block, f"system.{index}")
        for index, block in enumerate(_content_blocks(body.get("system") or [], "system"))
    ]
    last_user_text, assistant_turns = "", 0
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if index == 0 and message["role"] != "user":
            raise BadRequest('messages: first message must use the "user" role')
        content = _content_blocks(message.get("content"), f"messages.{index}.content")
        is_final_assistant = message["role"] == "assistant" and index == len(messages) - 1
        if not content and not is_final_assistant:
            raise BadRequest(
                f"messages.{index}: all messages must have non-empty content"
                " except for the optional final assistant message"
            )
        final_text = content[-1].get("text", "") if is_final_assistant and content else ""
        if final_text != final_text.rstrip():
            raise BadRequest("messages: final assistant content cannot end with trailing whitespace")
        blocks.extend(
            _cache_block(message["role"], block, f"messages.{index}.content.{position}")
            for position, block in enumerate(content)
        )
        if message["role"] == "user":
            last_user_text = " ".join(block["text"] for block in content if block["type"] == "text")
        else:
            assistant_turns += 1
    try:
        blocks = caching.with_automatic_breakpoint(blocks, body.get("cache_control"))
        caching.check_breakpoints(blocks)
    except InvalidCacheControl as invalid:
        raise BadRequest(str(invalid)) from invalid
    cache_seed = json.dumps([model], separators=(",", ":"))  # tools are blocks of the prefix
    return Prompt(model, max_tokens, stream, cache_seed, blocks, last_user_text, assistant_turns)


def _cache_block(role: str, content: dict[str, Any], where: str) -> Block:
    try:
        return caching.block(role, content, where)
    except InvalidCacheControl as invalid:
        raise BadRequest(str(invalid)) from invalid


def _tool_blocks(tools: Any) -> list[Block]:
    """Tool definitions come first in the cached prefix (the API's order: tools, system, messages)."""
    if tools is None:
        return []
    if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
        raise BadRequest("tools: Input should be a valid list")
    return [_cache_block("tool", tool, f"tools.{index}") for index, tool in enumerate(tools)]


# --------------------------------------------------------------------------- replies


def message(model: str, words: list[str], stop_reason: str, usage: dict[str, Any]) -> dict[str, Any]:
    """A Message object: the whole reply as one text block, its stop reason and usage."""
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "".join(words)}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": len(words)},
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event as the API frames it: its name, then its JSON on one `data:` line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def stream_start(message: dict[str, Any]) -> list[bytes]:
    """The events before the first delta: message_start (1 output token so far), the block, a ping."""
    usage = {**message["usage"], "output_tokens": 1}
    start = {**message, "content": [], "stop_reason": None, "usage": usage}
    return [
        sse("message_start", {"type": "message_start", "message": start}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        sse("ping", {"type": "ping"}),
    ]


def text_delta(text: str) -> bytes:
    delta = {"type": "text_delta", "text": text}
    return sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})


def overloaded() -> bytes:
    """The `error` event the API sends when the model fails mid-stream."""
    return sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


def stream_end(message: dict[str, Any]) -> list[bytes]:
    """The events after the last delta: the block's end, the stop reason with the usage, message_stop."""
    return [
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": message["usage"],
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]

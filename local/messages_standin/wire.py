"""The Messages API's wire format, as the stand-in speaks it: what it accepts, and how it answers.

Why apart: the anthropic SDK under test must meet the real API's shapes (its 400s
for a bad body, its error JSON and `request-id` header, its `text/event-stream`
event sequence), whatever the reply says and however the server paces it. So
request validation, error bodies and the SSE framing of Messages-API events live
here, and nothing else does; local/messages_standin/bedrock.py wraps the same
shapes in Bedrock's.

Input tokens are ceil(characters / 4) per block (caching.py); the prompt's blocks
come in the API's order, tools, system, messages, as prompt caching sees them.

Beyond text, a reply may hold what the API sends for thinking (a `thinking` block:
thinking_delta events, then a signature_delta), web search (a `server_tool_use`
block whose input arrives as input_json_delta, then a `web_search_tool_result`
block, whole in its content_block_start) and citations (citations_delta events
before the text they belong to; `usage.server_tool_use.web_search_requests`
counts the searches). `Extras` says which; replies.py decides it.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
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


THINKING_MINIMUM_BUDGET = 1024
WEB_SEARCH_TOOL = "web_search_20250305"
# Models that refuse a thinking budget and take only adaptive thinking (Opus 4.7 on, the 5 families).
_ADAPTIVE_ONLY = re.compile(r"claude-(?:opus-4-[7-9]|[a-z]+-[5-9])")
# Input tokens the stand-in bills for each search's results (the real API bills what they hold).
SEARCH_RESULT_TOKENS = 1000
SIGNATURE = "c3RhbmQtaW4gc2lnbmF0dXJl"  # what a thinking block's signature looks like: opaque base64


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
    thinking: dict[str, Any] | None = None
    web_search: dict[str, Any] | None = None  # the request's web search tool
    documents: tuple[str, ...] = ()  # titles of the last user message's documents that enable citations


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


def _parse_thinking(body: dict[str, Any], model: str, max_tokens: int) -> dict[str, Any] | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive", "disabled"):
        raise BadRequest("thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'")
    if thinking["type"] == "disabled":
        return None
    if thinking["type"] == "enabled":
        if _ADAPTIVE_ONLY.search(model):
            raise BadRequest(
                '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" '
                'and "output_config.effort" to control thinking behavior.'
            )
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise BadRequest("thinking.enabled.budget_tokens: Field required")
        if budget < THINKING_MINIMUM_BUDGET:
            raise BadRequest(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to "
                f"{THINKING_MINIMUM_BUDGET}"
            )
        if max_tokens <= budget:
            raise BadRequest("`max_tokens` must be greater than `thinking.budget_tokens`")
    elif "budget_tokens" in thinking:
        raise BadRequest("thinking.adaptive.budget_tokens: Extra inputs are not permitted")
    if thinking.get("display", "summarized") not in ("summarized", "omitted"):
        raise BadRequest(f"thinking.{thinking['type']}.display: Input should be 'summarized' or 'omitted'")
    if "display" not in thinking:  # the default depends on the model: Opus 4.7 on omit the text
        thinking = {**thinking, "display": "omitted" if _ADAPTIVE_ONLY.search(model) else "summarized"}
    return dict(thinking)


def _web_search_tool(tools: Any) -> dict[str, Any] | None:
    for index, tool in enumerate(tools or []):
        if not isinstance(tool, dict) or tool.get("type") != WEB_SEARCH_TOOL:
            continue
        if tool.get("name") != "web_search":
            raise BadRequest(f"tools.{index}.name: Input should be 'web_search'")
        uses = tool.get("max_uses")
        if uses is not None and (not isinstance(uses, int) or isinstance(uses, bool) or uses < 1):
            raise BadRequest(f"tools.{index}.max_uses: Input should be greater than 0")
        if tool.get("allowed_domains") and tool.get("blocked_domains"):
            raise BadRequest(f"tools.{index}: Only one of allowed_domains or blocked_domains may be provided")
        return dict(tool)
    return None


def _cited_documents(content: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(
        str(block.get("title") or f"document {index + 1}")
        for index, block in enumerate(content)
        if block["type"] == "document" and (block.get("citations") or {}).get("enabled")
    )


def parse_prompt(body: dict[str, Any]) -> Prompt:
    """Refuses what the real API refuses, with its wording where it matters."""
    model, max_tokens, stream = _parse_settings(body)
    thinking = _parse_thinking(body, model, max_tokens)
    web_search = _web_search_tool(body.get("tools"))
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
    documents: tuple[str, ...] = ()
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
            documents = _cited_documents(content)
        else:
            assistant_turns += 1
    try:
        blocks = caching.with_automatic_breakpoint(blocks, body.get("cache_control"))
        caching.check_breakpoints(blocks)
    except InvalidCacheControl as invalid:
        raise BadRequest(str(invalid)) from invalid
    cache_seed = json.dumps([model], separators=(",", ":"))  # tools are blocks of the prefix
    return Prompt(
        model,
        max_tokens,
        stream,
        cache_seed,
        blocks,
        last_user_text,
        assistant_turns,
        thinking,
        web_search,
        documents,
    )


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


@dataclass(frozen=True)
class Search:
    """One web search of a reply: its query, and its results (or the API's error code instead)."""

    query: str
    error: str | None = None  # "max_uses_exceeded" for a search past the tool's max_uses

    @property
    def results(self) -> list[dict[str, Any]]:
        if self.error is not None:
            return []
        slug = re.sub(r"[^a-z0-9]+", "-", self.query.lower()).strip("-") or "search"
        return [
            {
                "type": "web_search_result",
                "url": f"https://standin.example/{slug}/{n}",
                "title": f"Result {n} for {self.query}",
                "encrypted_content": base64.b64encode(f"{self.query} {n}".encode()).decode(),
                "page_age": "December 1, 2026",
            }
            for n in (1, 2)
        ]


@dataclass(frozen=True)
class Extras:
    """What a reply holds besides its text: thinking (as its deltas), web searches, citations."""

    thinking: list[str] = field(default_factory=list)
    searches: list[Search] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)  # of the (one) text block
    # `display: omitted`: the thinking block comes without its text (billed all the same)
    thinking_omitted: bool = False
    redacted: bool = False  # a redacted_thinking block before the thinking

    @property
    def searched(self) -> int:
        return sum(1 for search in self.searches if search.error is None)

    def blocks(self) -> list[dict[str, Any]]:
        """The content blocks before the text, as the final Message holds them."""
        blocks: list[dict[str, Any]] = []
        if self.redacted:
            data = base64.b64encode(b"redacted by the stand-in").decode()
            blocks.append({"type": "redacted_thinking", "data": data})
        if self.thinking:
            shown = "" if self.thinking_omitted else "".join(self.thinking)
            blocks.append({"type": "thinking", "thinking": shown, "signature": SIGNATURE})
        for search in self.searches:
            tool_id = new_id("srvtoolu_")
            blocks.append(
                {
                    "type": "server_tool_use",
                    "id": tool_id,
                    "name": "web_search",
                    "input": {"query": search.query},
                }
            )
            content: Any = search.results
            if search.error is not None:
                content = {"type": "web_search_tool_result_error", "error_code": search.error}
            blocks.append({"type": "web_search_tool_result", "tool_use_id": tool_id, "content": content})
        return blocks


def message(
    model: str, words: list[str], stop_reason: str, usage: dict[str, Any], extras: Extras | None = None
) -> dict[str, Any]:
    """A Message object: its blocks (thinking, searches, then the text), its stop reason and usage.

    Each word, thinking word and search query is one output token; each search's results are
    SEARCH_RESULT_TOKENS more input tokens."""
    extras = extras or Extras()
    text: dict[str, Any] = {"type": "text", "text": "".join(words)}
    if extras.citations:
        text["citations"] = extras.citations
    billed = {**usage, "output_tokens": len(words) + len(extras.thinking) + len(extras.searches)}
    if extras.searches:
        billed["input_tokens"] = usage["input_tokens"] + SEARCH_RESULT_TOKENS * extras.searched
        billed["server_tool_use"] = {"web_search_requests": extras.searched, "web_fetch_requests": 0}
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [*extras.blocks(), text],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": billed,
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event as the API frames it: its name, then its JSON on one `data:` line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def text_index(message: dict[str, Any]) -> int:
    """The index of the reply's text block (the last)."""
    return len(message["content"]) - 1


def stream_start(message: dict[str, Any]) -> list[bytes]:
    """The events before the first text delta: message_start (1 output token so far), every block
    before the text (thinking, searches) whole, the text block's start and its citations; a ping
    after the first block's start, as the API sends it."""
    usage = {key: value for key, value in message["usage"].items() if key != "server_tool_use"}
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events = [sse("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        events.extend(_block_events(index, block))
        if index == 0:
            events.append(sse("ping", {"type": "ping"}))
    return events


def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    """A block's start, its deltas and its stop; for the text block (last), its start and citations."""

    def delta(payload: dict[str, Any]) -> bytes:
        return sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": payload})

    kind = block["type"]
    opened: dict[str, Any]
    if kind == "text":
        opened = {"type": "text", "text": ""}
        starts = [
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opened},
            )
        ]
        return starts + [
            delta({"type": "citations_delta", "citation": c}) for c in block.get("citations", [])
        ]
    if kind == "thinking":
        opened = {"type": "thinking", "thinking": "", "signature": ""}
        pieces = re.findall(r"\S+\s*", block["thinking"])
        body = [delta({"type": "thinking_delta", "thinking": piece}) for piece in pieces]
        body.append(delta({"type": "signature_delta", "signature": block["signature"]}))
    elif kind == "server_tool_use":
        opened = {**block, "input": {}}
        encoded = json.dumps(block["input"], separators=(",", ":"))
        halves = [encoded[: len(encoded) // 2], encoded[len(encoded) // 2 :]]
        body = [delta({"type": "input_json_delta", "partial_json": half}) for half in halves]
    else:  # web_search_tool_result and redacted_thinking: whole in their start
        opened, body = block, []
    start = sse(
        "content_block_start", {"type": "content_block_start", "index": index, "content_block": opened}
    )
    stop = sse("content_block_stop", {"type": "content_block_stop", "index": index})
    return [start, *body, stop]


def text_delta(text: str, index: int = 0) -> bytes:
    delta = {"type": "text_delta", "text": text}
    return sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def overloaded() -> bytes:
    """The `error` event the API sends when the model fails mid-stream."""
    return sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


def stream_end(message: dict[str, Any]) -> list[bytes]:
    """The events after the last delta: the text block's end, the stop reason with the usage, message_stop."""
    return [
        sse("content_block_stop", {"type": "content_block_stop", "index": text_index(message)}),
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

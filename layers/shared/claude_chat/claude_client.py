"""Claude through the anthropic SDK: request building, prompt caching, retries, error mapping.

Only this module knows the Messages API. It turns a history and a new message
into a request, and every SDK failure into one of the contract's upstream
errors, so handlers never see an SDK type.

The same Messages API is reached in one of two ways (CLAUDE_PROVIDER): the
Anthropic API with the operator's key, or Amazon Bedrock through
`anthropic.AnthropicBedrock`, which signs each request (SigV4) with the
function's IAM role and speaks Bedrock's invoke paths and binary event stream.
Requests, streaming, caching and usage are the same; Bedrock's errors carry
their own names (`x-amzn-errortype`, or an exception frame mid-stream), which
_BEDROCK_ERRORS maps onto the same contract errors.

Prompt caching (build_request) follows the API's billing rules, so that every
cache write it asks for can be read by a later request: a prefix cached on the
API costs 1.25x its input price to write and 0.1x to read, lives 5 minutes
after its last use, and is cached at all only when it is at least the model's
minimum cacheable length (_MINIMUM_CACHEABLE_TOKENS; 4,096 tokens for the
default Claude Haiku 4.5). The rule:

- The system prompt gets a breakpoint when it alone reaches the minimum: it is
  shared by every turn of every caller, so the next turn (any conversation's,
  or a stateless one) reads it.
- A conversation's newest message gets a breakpoint when the whole prompt
  (system prompt, history, message) reaches the minimum and the next turn will
  send the same history: the next turn then reads all of it (the API finds the
  previous breakpoint up to 20 blocks back; ours is 2 blocks back) and pays
  full price only for its own new message. When the history window will move
  on at the next turn (claude_chat.conversation_store.turns_to_send moves its
  start in steps, so this is known), no later request can read a write past
  the history, so the breakpoint goes on the previous turn's message instead,
  where the previous turn wrote: a read with nothing new to write (the API
  reads only at breakpoints, so leaving it off would lose the read too).
- A stateless turn marks nothing but a long enough system prompt: nobody sends
  its one-off message again.
- Under the minimum there is no breakpoint: the API would ignore it (no write,
  no read), and the request says what it does. Prompt sizes are estimated low
  (a token per 4 characters, which English text meets and code or non-Latin
  text exceeds), so a breakpoint appears no earlier than the API caches.

Automatic caching (a top-level `cache_control`, which puts the breakpoint on the
last block) is not used: it would write every stateless turn's prompt and the
turn before a window move, which no later request reads, and it cannot keep the
system prompt cached on its own for other conversations. Caching pays when the
next turn comes within 5 minutes; a chat whose turns are further apart pays the
1.25x write for nothing (BENCHMARKS.md, "Prompt caching", measures both).

Thinking and web search (THINKING_BUDGET_TOKENS, WEB_SEARCH_MAX_USES) are request
parameters set here, per model (`thinking_param`): models from Claude Opus 4.6 and
Sonnet 4.6 on think adaptively (`{"type": "adaptive", "display": "summarized"}`: the
4.7+ and 5 families refuse a budget, and omit the thinking's text unless asked), older
Claude 4 and 3.7 models take `{"type": "enabled", "budget_tokens": N}` (at least 1,024,
and less than `max_tokens`), and Claude 3.5 Haiku and 3 Haiku do not
think at all. Either way `max_tokens` is MAX_TOKENS plus the thinking budget, so the
reply keeps its MAX_TOKENS. Earlier turns' thinking is not sent back: a turn without
client tools needs only its text (the API drops earlier turns' thinking blocks from the
context anyway), which also keeps the history cheap. `ClaudeStream.events()` turns the
SDK's stream into `Thinking`, `SearchStarted` and `Text` (with the citations of that text)
events; redacted thinking has no text and is passed over.

Retries are ours, not the SDK's: the SDK would retry with its own timeout and
backoff whatever time the invocation has left, so a 30 s function could start
a third 25 s attempt and be killed mid-call. Here each attempt, and each wait
between attempts, fits before the invocation's deadline (claude_chat.deadline).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
from aws_lambda_powertools import Logger

from claude_chat.conversation_store import Turn
from claude_chat.deadline import Deadline
from claude_chat.errors import ApiError, NotConfigured, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from claude_chat.models import Citation, Usage
from claude_chat.pricing import search_reserve_tokens
from claude_chat.settings import Settings

logger = Logger(child=True)

_DEFAULT_RETRY_AFTER_SECONDS = 5
_CACHE_BREAKPOINT = {"type": "ephemeral"}
# Minimum cacheable prompt length per model family, in tokens: Anthropic's prompt-caching docs
# (https://platform.claude.com/docs/en/build-with-claude/prompt-caching, "Cache limitations"; the
# table is quoted in anthropics/anthropic-sdk-python issue 1194). Bedrock ids contain the same names.
# The first family a model id contains wins, so longer names come first.
_MINIMUM_CACHEABLE_TOKENS: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-6", 4096),
    ("claude-opus-4-5", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-sonnet-4-6", 1024),
    ("claude-sonnet-4-5", 1024),
    ("claude-opus-4-1", 1024),
    ("claude-opus-4", 1024),
    ("claude-sonnet-4", 1024),
    ("claude-3-7-sonnet", 1024),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
)
# A model the table does not know: the largest documented minimum, so a breakpoint is never ignored.
_UNKNOWN_MODEL_MINIMUM_TOKENS = 4096
# A low estimate of tokens per character of text (see the module docstring).
_CHARACTERS_PER_TOKEN = 4
# An attempt with less time than this before the deadline would only time out.
_SHORTEST_ATTEMPT_SECONDS = 1.0
_RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# Token bound: every token of Claude's tokenizer covers at least one byte of UTF-8 text;
# each message and the request itself add a few tokens of framing.
_FRAMING_TOKENS_PER_MESSAGE = 8
_FRAMING_TOKENS = 16
# Bedrock's runtime errors by name (InvokeModel, InvokeModelWithResponseStream, and the SigV4
# front door), as the contract error each becomes: the operator's setup (IAM, model access, the
# model id) is `not_configured`; capacity is `upstream_unavailable`; the rest is Claude's error.
_BEDROCK_UNAVAILABLE = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "ServiceQuotaExceededException",
    }
)
_BEDROCK_NOT_CONFIGURED = frozenset(
    {
        "AccessDeniedException",  # no IAM grant, or the model's access not enabled in the account
        "ResourceNotFoundException",  # no such model or inference profile (in this region)
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
    }
)
_BEDROCK_TIMEOUT = frozenset({"ModelTimeoutException"})
_BEDROCK_ERROR = frozenset(
    {"ValidationException", "ModelErrorException", "ModelStreamErrorException", "InternalServerException"}
)
_BEDROCK_ERRORS = _BEDROCK_UNAVAILABLE | _BEDROCK_NOT_CONFIGURED | _BEDROCK_TIMEOUT | _BEDROCK_ERROR
# Thinking by model (module docstring): families that think adaptively, and those that cannot think.
_ADAPTIVE_THINKING = re.compile(r"claude-(?:opus-4-[6-9]|sonnet-4-[6-9]|mythos|fable|[a-z]+-(?:[5-9]|\d\d))")
_NO_THINKING = re.compile(r"claude-3-(?:5-)?haiku|claude-3-5-sonnet|claude-3-opus|claude-3-sonnet")
WEB_SEARCH_TOOL = "web_search_20250305"
# Tokens the API adds to a request that has tools: its tool-use system prompt (346 tokens on Claude 4
# models, per the tool-use docs' pricing table) and the web search tool's own instructions, which are
# not published: a generous allowance, plus the tool definition's bytes.
_TOOL_FRAMING_TOKENS = 2048


@dataclass(frozen=True, slots=True)
class Text:
    """A piece of the reply's text, with the citations of the text it begins (if any)."""

    text: str
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True, slots=True)
class Thinking:
    text: str


@dataclass(frozen=True, slots=True)
class SearchStarted:
    query: str


ReplyEvent = Text | Thinking | SearchStarted


@dataclass(frozen=True, slots=True)
class ClaudeReply:
    text: str
    stop_reason: str | None
    usage: Usage = field(default_factory=Usage)
    thinking: str = ""
    citations: tuple[Citation, ...] = ()


class ClaudeClient:
    def __init__(self, settings: Settings, api_key: str | None) -> None:
        self._settings = settings
        self.model = settings.claude_model
        self.api_key = api_key
        self._sdk: anthropic.Anthropic | anthropic.AnthropicBedrock
        if settings.on_bedrock:
            # Credentials and region from the environment (the function's role, AWS_REGION), as
            # boto3 resolves them; a base URL only locally, where the stand-in plays Bedrock.
            self._sdk = anthropic.AnthropicBedrock(
                base_url=settings.anthropic_bedrock_base_url,
                timeout=settings.claude_timeout_seconds,
                max_retries=0,
            )
        else:
            self._sdk = anthropic.Anthropic(
                api_key=api_key,
                base_url=settings.anthropic_base_url,
                timeout=settings.claude_timeout_seconds,
                max_retries=0,  # see the module docstring: retries fit the deadline
            )

    def build_request(
        self,
        history: Sequence[Turn],
        message: str,
        *,
        conversation: bool,
        history_kept: bool = True,
        model: str | None = None,
        files: Mapping[str, tuple[dict[str, Any], int]] | None = None,
        attached: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The Messages API request for one turn, with the cache breakpoints that pay (module docstring).

        `history_kept`: the next turn of this conversation will send this turn's history again
        (False when the history window moves on then, so nothing cached now could be read).
        `model`: the provider's id of the model to ask (the default model when None).
        `files`: each attachment's content block (claude_chat.attachments) and a low estimate of its
        tokens, by id; `attached`: the ids of the new message's. A user message with files sends them
        before its text; their low estimates count toward where the breakpoints go.
        """
        files = files or {}
        model = model or self._settings.claude_model
        minimum = minimum_cacheable_tokens(model)
        system = self._settings.system_prompt
        prefix = estimated_tokens(system)
        messages: list[dict[str, Any]] = []
        previous_turn_cached = False  # the prefix up to the previous turn's message reaches the minimum
        for turn in history:
            blocks = [files[a.id] for a in getattr(turn, "attachments", ()) if a.id in files]
            prefix += estimated_tokens(turn.user) + sum(low for _, low in blocks)
            previous_turn_cached = prefix >= minimum
            user: Any = turn.user
            if blocks:
                user = [*(block for block, _ in blocks), {"type": "text", "text": turn.user}]
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": turn.assistant})
            prefix += estimated_tokens(turn.assistant)
        newest: dict[str, Any] = {"type": "text", "text": message}
        new_files = [files[i] for i in attached if i in files]
        prefix += estimated_tokens(message) + sum(low for _, low in new_files)
        if conversation and history_kept and prefix >= minimum:
            newest["cache_control"] = _CACHE_BREAKPOINT
        elif conversation and previous_turn_cached:
            # Read what the previous turn wrote, and write nothing that the next turn cannot read.
            previous = messages[-2]
            if isinstance(previous["content"], str):
                previous["content"] = [{"type": "text", "text": previous["content"]}]
            previous["content"][-1]["cache_control"] = _CACHE_BREAKPOINT
        messages.append({"role": "user", "content": [*(block for block, _ in new_files), newest]})
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": self._settings.max_tokens,
            "messages": messages,
        }
        thinking = thinking_param(model, self._settings.thinking_budget_tokens)
        if thinking is not None:
            request["thinking"] = thinking
            request["max_tokens"] = self._settings.max_tokens + self._settings.thinking_budget_tokens
        if self._settings.web_search_max_uses:
            request["tools"] = [web_search_tool(self._settings)]
        if system:
            block: dict[str, Any] = {"type": "text", "text": system}
            if estimated_tokens(system) >= minimum:
                block["cache_control"] = _CACHE_BREAKPOINT
            request["system"] = [block]
        return request

    def title_request(self, prompt: str, max_tokens: int, model: str | None = None) -> dict[str, Any]:
        """A one-off request (a conversation's title): no system prompt, nothing cached."""
        return {
            "model": model or self._settings.claude_model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }

    def complete(self, request: dict[str, Any], deadline: Deadline) -> ClaudeReply:
        """A whole reply, read to its end (with the same retries and deadline as a turn)."""
        stream = self.open_stream(request, deadline)
        try:
            for _ in stream.events():
                pass
            return stream.final()
        finally:
            stream.close()

    def input_bound(self, request: dict[str, Any], messages: int | None = None) -> int:
        """An upper bound of a request's input tokens, by its text: every token covers at least one
        byte of UTF-8, and each message adds a few tokens of framing. Files are not text: the caller
        adds their bounds (claude_chat.attachments). `messages`: bound only the
        last `messages` messages (the new one), without the system prompt (claude_chat.chat_turn
        adds what Claude billed for the rest when it knows that)."""
        chosen = request["messages"] if messages is None else request["messages"][-messages:]
        texts = [block["text"] for block in request.get("system", [])] if messages is None else []
        for message in chosen:
            content = message["content"]
            texts.extend(
                [content]
                if isinstance(content, str)
                else [block["text"] for block in content if block.get("type") == "text"]
            )
        text_bytes = sum(len(text.encode("utf-8", "surrogatepass")) for text in texts)
        if messages is None and request.get("tools"):
            text_bytes += _TOOL_FRAMING_TOKENS + len(json.dumps(request["tools"]).encode())
        return text_bytes + _FRAMING_TOKENS + _FRAMING_TOKENS_PER_MESSAGE * (len(chosen) + 1)

    def search_allowance(self, request: dict[str, Any]) -> tuple[int, int]:
        """The web searches a request may run and a bound of the input tokens they add.

        The API runs a request with searches as up to one sampling per search after the first,
        each reading the whole context so far (the prompt, the results, what Claude wrote) as
        input, billed again each time; how many tokens a search's results take is not bounded
        by the docs. What bounds each later sampling's input is the model's context window
        (pricing.search_reserve_tokens; WEB_SEARCH_RESERVE_TOKENS may set less).
        """
        tools = request.get("tools") or []
        searches = sum(
            int(tool.get("max_uses") or 0) for tool in tools if tool.get("type") == WEB_SEARCH_TOOL
        )
        return searches, searches * search_reserve_tokens(str(request["model"]), self._settings)

    def open_stream(self, request: dict[str, Any], deadline: Deadline) -> ClaudeStream:
        """Sends the request and waits for Claude to accept it, so a refusal is known before any byte.

        Retries what Claude says is worth retrying (overload, rate limits, 5xx, a lost
        connection) while another attempt still fits before the deadline.
        """
        attempt = 0
        unanswered = 0  # attempts Claude may have run, and billed, without our hearing its answer
        while True:
            budget = min(self._settings.claude_timeout_seconds, deadline.until_cutoff())
            if budget < _SHORTEST_ATTEMPT_SECONDS / 2:
                raise _with_unanswered(UpstreamTimeout(), unanswered)
            manager = self._sdk.messages.stream(**request, timeout=budget)
            try:
                with _upstream_errors():
                    return ClaudeStream(manager, manager.__enter__(), unanswered)
            except ApiError as error:
                if _maybe_billed(error):
                    unanswered += 1
                wait = _retry_wait(error, attempt)
                if wait is None or attempt >= self._settings.claude_max_retries:
                    raise _with_unanswered(error, unanswered) from error.__cause__
                if wait + _SHORTEST_ATTEMPT_SECONDS > deadline.until_cutoff():
                    raise _with_unanswered(error, unanswered) from error.__cause__
                logger.info("retrying Claude", extra={"attempt": attempt + 1, "wait_seconds": round(wait, 2)})
                time.sleep(wait)
                attempt += 1


class ClaudeStream:
    """One streamed reply from Claude; plain turns read it to the end, streamed turns forward it.

    `unanswered`: earlier attempts of the same request that Claude may have run (and billed)
    though we never heard its answer (a timeout, a connection lost after sending).
    """

    def __init__(self, manager: Any, stream: Any, unanswered: int = 0) -> None:
        self._manager = manager
        self._stream = stream
        self.unanswered = unanswered

    def text(self) -> Iterator[str]:
        """The reply's text deltas, as Claude sends them."""
        for event in self.events():
            if isinstance(event, Text) and event.text:
                yield event.text

    def events(self) -> Iterator[ReplyEvent]:
        """The reply as it comes: thinking, each web search as it starts, and text (a citation arrives
        before the text that carries it, and goes out with that text's first piece)."""
        cited: list[Citation] = []
        with _upstream_errors():
            for event in self._stream:
                kind = event.type
                if kind == "thinking" and event.thinking:
                    yield Thinking(event.thinking)
                elif kind == "citation":
                    cited.append(citation(event.citation))
                elif kind == "text" and (event.text or cited):
                    yield Text(event.text, tuple(cited))
                    cited.clear()
                elif kind == "content_block_stop":
                    block = event.content_block
                    if block.type == "server_tool_use" and block.name == "web_search":
                        query = block.input.get("query") if isinstance(block.input, dict) else None
                        yield SearchStarted(str(query or ""))
                    elif block.type == "text" and cited:  # citations with no text after them
                        yield Text("", tuple(cited))
                        cited.clear()

    def final(self) -> ClaudeReply:
        with _upstream_errors():
            message = self._stream.get_final_message()
        return reply_of(message)

    def usage_so_far(self, deltas_received: int) -> Usage | None:
        """What a reply cut short has cost: the input as Claude reported it, and an output estimate;
        None when it was cut before Claude's first event, which reports the input (the caller then
        charges the turn's worst case: Claude may have run it all).

        Claude reports output tokens only at the end. The estimate is the larger of a token per
        delta and a token per 3 characters received, which errs towards the operator: a client
        that stops every reply just before its end pays about what it cost, not less.
        """
        try:
            snapshot = self._stream.current_message_snapshot
            reported = _usage(snapshot.usage)
            received_chars = sum(
                len(block.text) if block.type == "text" else len(block.thinking)
                for block in snapshot.content
                if block.type in ("text", "thinking")
            )
        except (AttributeError, AssertionError, RuntimeError):
            return None
        estimate = max(reported.output_tokens, deltas_received, math.ceil(received_chars / 3))
        return reported.model_copy(update={"output_tokens": estimate})

    def close(self) -> None:
        """Closes the HTTP stream to Claude: nothing more is generated, or billed, for this reply."""
        with contextlib.suppress(Exception):  # an interrupted stream may fail to close cleanly: it is gone
            self._manager.__exit__(None, None, None)

    def interrupt(self) -> None:
        """Cuts the connection now, from any thread, waking a read that waits for the next delta.

        Closing the stream alone would not: a blocked read only notices at the next
        byte, which can be seconds away. Shutting the socket down ends it at once, so
        Claude stops generating (and billing) this reply.
        """
        with contextlib.suppress(Exception):
            network = self._stream.response.extensions["network_stream"]
            network.get_extra_info("socket").shutdown(socket.SHUT_RDWR)


def thinking_param(model: str, budget: int) -> dict[str, Any] | None:
    """The request's `thinking` for this model and THINKING_BUDGET_TOKENS (module docstring); None: off."""
    if budget <= 0 or _NO_THINKING.search(model):
        return None
    if _ADAPTIVE_THINKING.search(model):
        # Opus 4.7 and later omit the thinking's text unless asked (`display`): ask, or nothing shows.
        return {"type": "adaptive", "display": "summarized"}
    return {"type": "enabled", "budget_tokens": budget}


def web_search_tool(settings: Settings) -> dict[str, Any]:
    """The web search tool as the request declares it (WEB_SEARCH_* settings)."""
    tool: dict[str, Any] = {
        "type": WEB_SEARCH_TOOL,
        "name": "web_search",
        "max_uses": settings.web_search_max_uses,
    }
    if settings.web_search_allowed_domains:
        tool["allowed_domains"] = list(settings.web_search_allowed_domains)
    if settings.web_search_blocked_domains:
        tool["blocked_domains"] = list(settings.web_search_blocked_domains)
    return tool


def citation(cited: Any) -> Citation:
    """One Citation for the API's kinds: a web page, or a document's page (PDFs; the other kinds name
    the document too, by character or block range)."""
    if cited.type == "web_search_result_location":
        return Citation(cited_text=cited.cited_text, url=cited.url, title=cited.title)
    document = getattr(cited, "document_title", None) or f"document {getattr(cited, 'document_index', 0) + 1}"
    page = getattr(cited, "start_page_number", None)
    return Citation(cited_text=cited.cited_text, document=document, page=page)


def reply_of(message: Any) -> ClaudeReply:
    """A whole reply from the API's Message: its text blocks joined, its thinking, its citations."""
    text = "".join(block.text for block in message.content if block.type == "text")
    thinking = "".join(block.thinking for block in message.content if block.type == "thinking")
    citations = tuple(
        citation(cited)
        for block in message.content
        if block.type == "text"
        for cited in (block.citations or ())
    )
    return ClaudeReply(text, message.stop_reason, _usage(message.usage), thinking, citations)


def minimum_cacheable_tokens(model: str) -> int:
    """The shortest prefix the model caches, in tokens; unknown models get the largest documented one."""
    return next(
        (tokens for family, tokens in _MINIMUM_CACHEABLE_TOKENS if family in model),
        _UNKNOWN_MODEL_MINIMUM_TOKENS,
    )


def estimated_tokens(text: str) -> int:
    """A low estimate of a text's tokens (module docstring): a breakpoint placed by it is never ignored."""
    return len(text) // _CHARACTERS_PER_TOKEN


@contextmanager
def _upstream_errors() -> Iterator[None]:
    try:
        yield
    except anthropic.AnthropicError as error:
        raise upstream_error(error) from error
    except httpx2.TransportError as error:
        # A connection that breaks mid-stream reaches us from the SDK's HTTP client as is.
        logger.warning("Claude's stream broke off", extra={"upstream_error": type(error).__name__})
        raise UpstreamError() from error


def upstream_error(error: anthropic.AnthropicError) -> ApiError:
    """The contract's error for an SDK failure; logs the upstream request id, never message text."""
    if isinstance(error, anthropic.APITimeoutError):
        logger.warning("Claude timed out")
        return UpstreamTimeout()
    if isinstance(error, anthropic.APIStatusError):
        bedrock_error = _bedrock_error_name(error)
        logger.warning(
            "Claude answered with an error",
            extra={
                "upstream_status": error.status_code,
                "upstream_type": bedrock_error or error.type,
                "upstream_request_id": error.request_id or error.response.headers.get("x-amzn-requestid"),
            },
        )
        if bedrock_error is not None:
            return _bedrock_upstream_error(bedrock_error, error)
        return _anthropic_upstream_error(error)
    logger.warning("Claude could not be reached", extra={"upstream_error": type(error).__name__})
    return UpstreamError()


def _anthropic_upstream_error(error: anthropic.APIStatusError) -> ApiError:
    if error.status_code in (401, 403):
        # The operator's key is wrong or revoked: their problem, not the user's.
        return NotConfigured(key_rejected=True)
    # A mid-stream error arrives on a 200 response: its type says what happened.
    if error.status_code in (429, 503, 529) or error.type in ("rate_limit_error", "overloaded_error"):
        return UpstreamUnavailable(_retry_after(error))
    if error.status_code in (408, 504):
        return UpstreamTimeout()
    return UpstreamError()


def _bedrock_error_name(error: anthropic.APIStatusError) -> str | None:
    """The Bedrock exception an error is, or None for an Anthropic API error.

    A refused request names it in `x-amzn-errortype` ("ThrottlingException:http://..."); an
    exception frame mid-stream reaches the SDK as an `error` event whose type is the frame's
    exception type ("throttlingException").
    """
    header = error.response.headers.get("x-amzn-errortype")
    name = header.split(":", 1)[0].strip() if header else (error.type or "")
    name = name[:1].upper() + name[1:]
    return name if name in _BEDROCK_ERRORS or header else None


def _bedrock_upstream_error(name: str, error: anthropic.APIStatusError) -> ApiError:
    if name in _BEDROCK_UNAVAILABLE:
        return UpstreamUnavailable(_retry_after(error))
    if name in _BEDROCK_NOT_CONFIGURED:
        # IAM, model access or the model id: the operator's to fix; there is no key to read again.
        return NotConfigured()
    if name in _BEDROCK_TIMEOUT:
        return UpstreamTimeout()
    return UpstreamError()


def _maybe_billed(error: ApiError) -> bool:
    """An attempt Claude may have run without our hearing the answer: it timed out, or the connection
    broke after the request went out. An answer with an error status is not billed."""
    cause = error.__cause__
    return isinstance(cause, anthropic.APITimeoutError | httpx2.TransportError) or (
        isinstance(cause, anthropic.APIConnectionError)
        and not isinstance(cause.__cause__, httpx2.ConnectError)
    )


def _with_unanswered(error: ApiError, unanswered: int) -> ApiError:
    """The error, saying how many attempts Claude may have billed (claude_chat.chat_turn charges them)."""
    error.unanswered = unanswered
    return error


def _retry_wait(error: ApiError, attempt: int) -> float | None:
    """Seconds to wait before retrying a refused call, or None when a retry cannot help."""
    cause = error.__cause__
    if isinstance(cause, anthropic.APIStatusError):
        if cause.status_code not in _RETRYABLE_STATUSES:
            return None
        header = cause.response.headers.get("retry-after")
        if header is not None:
            try:
                return max(0.0, float(header))
            except ValueError:
                pass
    elif not isinstance(cause, anthropic.APIConnectionError | httpx2.TransportError):
        return None
    return min(8.0, 0.5 * 2.0**attempt) * random.uniform(0.75, 1.0)  # noqa: S311 - jitter, not crypto


def _retry_after(error: anthropic.APIStatusError) -> float:
    try:
        return float(error.response.headers.get("retry-after", _DEFAULT_RETRY_AFTER_SECONDS))
    except ValueError:
        return _DEFAULT_RETRY_AFTER_SECONDS


def _usage(usage: anthropic.types.Usage) -> Usage:
    server_tools = getattr(usage, "server_tool_use", None)
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        web_search_requests=(server_tools.web_search_requests or 0) if server_tools is not None else 0,
    )

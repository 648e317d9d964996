"""Claude through the anthropic SDK: request building, prompt caching, error mapping.

Only this module knows the Messages API. It turns a history and a new message
into a request, and every SDK failure into one of the contract's upstream
errors, so handlers never see an SDK type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
from aws_lambda_powertools import Logger

from claude_chat.conversation_store import Turn
from claude_chat.errors import ApiError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from claude_chat.models import Usage
from claude_chat.settings import Settings

logger = Logger(child=True)

_DEFAULT_RETRY_AFTER_SECONDS = 5
_CACHE_BREAKPOINT = {"type": "ephemeral"}


@dataclass(frozen=True, slots=True)
class ClaudeReply:
    text: str
    stop_reason: str | None
    usage: Usage = field(default_factory=Usage)


class ClaudeClient:
    def __init__(self, settings: Settings, api_key: str | None) -> None:
        self._settings = settings
        self.model = settings.claude_model
        self._sdk = anthropic.Anthropic(
            api_key=api_key,
            base_url=settings.anthropic_base_url,
            timeout=settings.claude_timeout_seconds,
            max_retries=settings.claude_max_retries,
        )

    def build_request(self, history: Sequence[Turn], message: str, *, conversation: bool) -> dict[str, Any]:
        """The Messages API request for one turn.

        In a conversation, the newest message carries a cache breakpoint, so
        the next turn reads the whole conversation so far from the prompt
        cache instead of paying for it again. A stateless turn marks only the
        system prompt, which every caller shares: marking a one-off message
        would only pay the cache-write premium.
        """
        messages: list[dict[str, Any]] = []
        for turn in history:
            messages.append({"role": "user", "content": turn.user})
            messages.append({"role": "assistant", "content": turn.assistant})
        newest: dict[str, Any] = {"type": "text", "text": message}
        if conversation:
            newest["cache_control"] = _CACHE_BREAKPOINT
        messages.append({"role": "user", "content": [newest]})
        request: dict[str, Any] = {
            "model": self._settings.claude_model,
            "max_tokens": self._settings.max_tokens,
            "messages": messages,
        }
        if self._settings.system_prompt:
            request["system"] = [
                {"type": "text", "text": self._settings.system_prompt, "cache_control": _CACHE_BREAKPOINT}
            ]
        return request

    def open_stream(self, history: Sequence[Turn], message: str, *, conversation: bool) -> ClaudeStream:
        """Sends the request and waits for Claude to accept it, so a refusal is known before any byte."""
        request = self.build_request(history, message, conversation=conversation)
        manager = self._sdk.messages.stream(**request)
        with _upstream_errors():
            return ClaudeStream(manager, manager.__enter__())


class ClaudeStream:
    """One streamed reply from Claude; plain turns read it to the end, streamed turns forward it."""

    def __init__(self, manager: Any, stream: Any) -> None:
        self._manager = manager
        self._stream = stream

    def text(self) -> Iterator[str]:
        """The reply's text deltas, as Claude sends them."""
        with _upstream_errors():
            yield from self._stream.text_stream

    def final(self) -> ClaudeReply:
        with _upstream_errors():
            message = self._stream.get_final_message()
        text = "".join(block.text for block in message.content if block.type == "text")
        return ClaudeReply(text, message.stop_reason, _usage(message.usage))

    def usage_so_far(self, deltas_received: int) -> Usage:
        """What a reply cut short has cost: the input as Claude reported it, about a token per delta."""
        try:
            reported = self._stream.current_message_snapshot.usage
        except (AttributeError, AssertionError, RuntimeError):
            return Usage(output_tokens=deltas_received)
        usage = _usage(reported)
        return usage.model_copy(update={"output_tokens": max(usage.output_tokens, deltas_received)})

    def close(self) -> None:
        """Closes the HTTP stream to Claude: nothing more is generated, or billed, for this reply."""
        self._manager.__exit__(None, None, None)


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
        logger.warning(
            "Claude answered with an error",
            extra={
                "upstream_status": error.status_code,
                "upstream_type": error.type,
                "upstream_request_id": error.request_id,
            },
        )
        # A mid-stream error arrives on a 200 response: its type says what happened.
        if error.status_code in (429, 503, 529) or error.type in ("rate_limit_error", "overloaded_error"):
            return UpstreamUnavailable(_retry_after(error))
        if error.status_code in (408, 504):
            return UpstreamTimeout()
        return UpstreamError()
    logger.warning("Claude could not be reached", extra={"upstream_error": type(error).__name__})
    return UpstreamError()


def _retry_after(error: anthropic.APIStatusError) -> float:
    try:
        return float(error.response.headers.get("retry-after", _DEFAULT_RETRY_AFTER_SECONDS))
    except ValueError:
        return _DEFAULT_RETRY_AFTER_SECONDS


def _usage(usage: anthropic.types.Usage) -> Usage:
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
    )

"""Claude through the anthropic SDK: request building, prompt caching, error mapping.

Only this module knows the Messages API. It turns a history and a new message
into a request, and every SDK failure into one of the contract's upstream
errors, so handlers never see an SDK type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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

    def reply(self, history: Sequence[Turn], message: str, *, conversation: bool) -> ClaudeReply:
        try:
            response = self._sdk.messages.create(
                **self.build_request(history, message, conversation=conversation)
            )
        except anthropic.AnthropicError as error:
            raise upstream_error(error) from error
        text = "".join(block.text for block in response.content if block.type == "text")
        return ClaudeReply(text, response.stop_reason, _usage(response.usage))

    def stream_reply(
        self, history: Sequence[Turn], message: str, *, conversation: bool
    ) -> Iterator[str | ClaudeReply]:
        """Yields each text delta as it arrives, then the final reply.

        Closing the generator closes the HTTP stream to Claude at once, so a
        client that went away stops the tokens being generated and billed.
        """
        try:
            request = self.build_request(history, message, conversation=conversation)
            with self._sdk.messages.stream(**request) as stream:
                yield from stream.text_stream
                final = stream.get_final_message()
        except anthropic.AnthropicError as error:
            raise upstream_error(error) from error
        except httpx2.TransportError as error:
            # A connection that breaks mid-stream reaches us from the SDK's HTTP client as is.
            logger.warning("Claude's stream broke off", extra={"upstream_error": type(error).__name__})
            raise UpstreamError() from error
        text = "".join(block.text for block in final.content if block.type == "text")
        yield ClaudeReply(text, final.stop_reason, _usage(final.usage))


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
        if error.status_code in (429, 503, 529):
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

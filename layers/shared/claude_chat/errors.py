"""Typed errors, one per row of the contract's error table.

Code anywhere in the layer raises these; the HTTP layer turns them into the
contract's `{"error", "code"}` body, so status, code and wording live here only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping


class ApiError(Exception):
    """An error the client sees as `{"error": message, "code": code}` with `status`."""

    status: int = 500
    code: str = "internal"
    message: str = "Internal error."
    # Upstream errors: attempts Claude may have run, and billed, though no answer came (claude_client).
    unanswered: int = 0

    def __init__(self, message: str | None = None, *, headers: Mapping[str, str] | None = None) -> None:
        self.message = message or type(self).message
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.message)

    def body(self) -> dict[str, object]:
        return {"error": self.message, "code": self.code}

    def json(self) -> str:
        return json.dumps(self.body(), separators=(",", ":"))


class InvalidJson(ApiError):
    status, code, message = 400, "invalid_json", "The request body is not valid JSON."


class InvalidRequest(ApiError):
    status, code, message = 422, "invalid_request", "The request body is not valid."


class ModelNotAllowed(ApiError):
    """422: the turn names a model the caller may not use (or none that exists); no turn happens."""

    status, code = 422, "model_not_allowed"

    def __init__(self, requested: str, allowed: list[str]) -> None:
        shown = requested if len(requested) <= 80 else requested[:80] + "…"
        super().__init__(f"The model {shown!r} is not available here; choose one of: {', '.join(allowed)}.")


class MessageTooLong(ApiError):
    status, code = 413, "message_too_long"

    def __init__(self, limit: int) -> None:
        super().__init__(f"`message` is longer than {limit} characters.")


class NotFound(ApiError):
    status, code, message = 404, "not_found", "No such route."


class ConversationNotFound(NotFound):
    """Also what another caller's conversation answers: nothing tells the two apart."""

    message = "No such conversation."


class ExportTooLarge(ApiError):
    status, code = 413, "export_too_large"
    message = "This conversation is too long to export in one file; read it a page at a time instead."


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(
            f"This route accepts {', '.join(allowed)} only.", headers={"Allow": ", ".join(allowed)}
        )


class RateLimited(ApiError):
    """429: `limit` says which budget is spent: "requests" (per window), "tokens" or "money" (per UTC day)."""

    status, code, message = 429, "rate_limited", "Too many requests. Please wait."

    def __init__(self, retry_after_seconds: int, headers: Mapping[str, str], *, limit: str) -> None:
        self.retry_after = retry_after_seconds
        self.limit = limit
        super().__init__(headers={**headers, "Retry-After": str(retry_after_seconds)})

    def body(self) -> dict[str, object]:
        return {**super().body(), "retryAfter": self.retry_after, "limit": self.limit}


class UpstreamError(ApiError):
    status, code, message = 502, "upstream_error", "Claude could not answer this request."


class UpstreamUnavailable(ApiError):
    status, code, message = 503, "upstream_unavailable", "Claude is busy right now. Please retry shortly."

    def __init__(self, retry_after_seconds: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after_seconds))
        super().__init__(headers={"Retry-After": str(self.retry_after)})


class UpstreamTimeout(ApiError):
    status, code, message = 504, "upstream_timeout", "Claude did not answer in time."


class InternalError(ApiError):
    """A defect: never caused by client input, never shows its cause to the client."""


class NotConfigured(ApiError):
    """503 while the operator's Anthropic API key is missing, or Claude rejects it (401/403).

    `key_rejected`: Claude refused the key, so the key is read again before the next call.
    """

    status, code, message = (
        503,
        "not_configured",
        "The chat service is not set up yet. Please try again later.",
    )

    def __init__(self, *, key_rejected: bool = False) -> None:
        self.key_rejected = key_rejected
        super().__init__()


class BudgetExhausted(ApiError):
    """503: the day's global token budget (all callers together) is spent until UTC midnight."""

    status, code, message = (
        503,
        "budget_exhausted",
        "The chat service has used its budget for today. Please come back tomorrow.",
    )

    def __init__(self, retry_after_seconds: int) -> None:
        self.retry_after = retry_after_seconds
        super().__init__(headers={"Retry-After": str(retry_after_seconds)})


class Busy(ApiError):
    """503: the budget counters could not be written just now (DynamoDB throttled the write, or other
    turns held the same counter); nothing was reserved, and a retry after `Retry-After` may pass."""

    status, code, message = 503, "busy", "The chat service is busy right now. Please retry in a moment."

    def __init__(self, retry_after_seconds: int = 1) -> None:
        self.retry_after = retry_after_seconds
        super().__init__(headers={"Retry-After": str(retry_after_seconds)})


class Unauthorized(ApiError):
    """401 when sign-in is on and the request has no valid bearer token (RFC 6750's challenge).

    `token_presented`: a token came and was refused, so the challenge says `error="invalid_token"`
    (the page then signs in again rather than retrying the same token); without one, RFC 6750
    wants the bare challenge.
    """

    status, code, message = 401, "unauthorized", "Sign in to use this chat."

    def __init__(self, *, token_presented: bool = False) -> None:
        self.token_presented = token_presented
        challenge = 'Bearer realm="claude-chat"'
        if token_presented:
            challenge += ', error="invalid_token"'
        super().__init__(
            "Your sign-in has expired or is not valid. Please sign in again." if token_presented else None,
            headers={"WWW-Authenticate": challenge},
        )

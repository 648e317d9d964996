"""The long-lived objects of a warm Lambda container, each built once on first use.

Building lazily keeps a function from paying for what it never uses (the
history function never imports the anthropic SDK), and caching keeps every
warm invocation from paying again for clients, secrets and connections.

The Claude client is the exception that is rebuilt: it holds the operator's
API key, which can be rotated or revoked, so it is rebuilt whenever the key
read from Secrets Manager changes, and dropped (the key read again) as soon as
Claude rejects it. On Amazon Bedrock (CLAUDE_PROVIDER=bedrock) there is no key:
the client signs with the function's role, and is built once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from claude_chat.admission import Admission, Charge, Limits, shard_count
from claude_chat.attachments import AttachmentStore
from claude_chat.conversation_store import ConversationStore
from claude_chat.errors import NotConfigured
from claude_chat.model_choice import ModelCatalog
from claude_chat.pricing import nanos
from claude_chat.rate_limiter import RateLimiter
from claude_chat.session_tokens import SessionTokens
from claude_chat.sessions import Sessions
from claude_chat.settings import get_settings, session_signing_key
from claude_chat.stop_requests import StopRequests, TurnIds

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from claude_chat.claude_client import ClaudeClient
    from claude_chat.sign_in import TokenVerifier

# Fail fast inside a Lambda timeout; standard mode retries throttles with backoff.
_DYNAMODB_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=64,
)
# Side-by-side DynamoDB calls. In Lambda one request runs at a time, so few threads ever
# start; the local server runs many streams in one process, and none may wait for a thread.
_POOL_THREADS = 256


@cache
def pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_POOL_THREADS, thread_name_prefix="io")


@cache
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_DYNAMODB_CONFIG)


@cache
def s3() -> Any:
    """S3 with SigV4 (presigned POSTs and GETs), path-style only where an endpoint is set (locally)."""
    import os

    local = bool(os.environ.get("AWS_ENDPOINT_URL_S3"))
    config = Config(
        signature_version="s3v4",
        connect_timeout=2,
        read_timeout=10,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=64,
        s3={"addressing_style": "path" if local else "virtual"},
    )
    return boto3.client("s3", config=config)


@cache
def attachments() -> AttachmentStore:
    """The attachment store; NotConfigured while ATTACHMENTS_BUCKET is not set."""
    settings = get_settings()
    if not settings.attachments_bucket:
        raise NotConfigured()
    return AttachmentStore(
        s3(), settings.attachments_bucket, settings.table_name, settings.attachment_retention_days * 86_400
    )


@cache
def catalog() -> ModelCatalog:
    """The models callers may choose, priced; a setting that names an unpriced or unallowed model stops
    the start (snapstart.warm builds it at init)."""
    return ModelCatalog(get_settings())


@cache
def admission() -> Admission:
    settings = get_settings()
    global_limits = Limits(settings.global_daily_token_budget, nanos(settings.global_daily_budget_usd))
    # The largest turn the settings allow: the longest message, no history, the dearest model.
    longest = settings.max_message_chars * 4 + settings.max_tokens
    dearest = max(
        (
            model.prices.worst_case(settings.max_message_chars * 4, settings.max_tokens)
            for model in catalog().all
        ),
        default=0,
    )
    shards = shard_count(global_limits, Charge(longest, dearest), settings.global_budget_shards)
    return Admission(
        dynamodb(),
        settings.table_name,
        rate_limiter(),
        global_limits=global_limits,
        shards=shards,
        pool=pool(),
    )


@cache
def rate_limiter() -> RateLimiter:
    settings = get_settings()
    return RateLimiter(
        dynamodb(), settings.table_name, settings.rate_limit_max, settings.rate_limit_window_seconds
    )


@cache
def stop_requests() -> StopRequests:
    return StopRequests(dynamodb(), get_settings().table_name)


def verifier() -> TokenVerifier:
    """The sign-in check, one per process (its key cache lives as long as the process), built on
    first use: with sign-in off, never, and not even jwt is imported."""
    from claude_chat.sign_in import verifier_for

    checker = verifier_for(get_settings())
    if checker is None:
        raise RuntimeError("sign-in is off: set OIDC_ISSUER and OIDC_AUDIENCE to turn it on")
    return checker


@cache
def turn_ids() -> TurnIds:
    return TurnIds(session_signing_key(get_settings()))


@cache
def sessions() -> Sessions:
    settings = get_settings()
    tokens = SessionTokens(session_signing_key(settings), settings.session_max_age_seconds)
    store = ConversationStore(
        dynamodb(),
        settings.table_name,
        settings.session_ttl_seconds,
        settings.session_max_age_seconds,
        pool(),
        forget_files=_forget_files if settings.attachments_bucket else None,
    )
    return Sessions(tokens, store, pool())


def _forget_files(owner: str, attachment_ids: list[str]) -> None:
    attachments().delete(dynamodb(), owner, attachment_ids)


_claude_lock = threading.Lock()
_claude: ClaudeClient | None = None


def claude() -> ClaudeClient:
    """A client with the operator's current API key; raises NotConfigured while none is stored.

    The key comes through Powertools' cache (claude_chat.settings), so a rotated key
    is in use within its cache time, and at once after Claude rejected the old one.
    On Bedrock no secret is read: IAM signs every request.
    """
    from claude_chat.claude_client import ClaudeClient
    from claude_chat.settings import anthropic_api_key

    global _claude  # noqa: PLW0603 - one client per warm environment, replaced when the key changes
    settings = get_settings()
    api_key = anthropic_api_key(settings)
    if api_key is None and not settings.on_bedrock:
        raise NotConfigured()
    with _claude_lock:
        if _claude is None or _claude.api_key != api_key:
            _claude = ClaudeClient(settings, api_key)
        return _claude


def forget_claude() -> None:
    """Claude rejected the key (401/403): the next turn reads it again and builds a new client."""
    from claude_chat.settings import forget_api_key

    global _claude  # noqa: PLW0603
    with _claude_lock:
        _claude = None
    forget_api_key(get_settings())


def close_connections() -> None:
    """Closes the sockets the cached clients pool (SnapStart: none may enter a snapshot or leave one).

    The DynamoDB client stays, with its loaded service model, and reconnects on next use. The
    Claude client is forgotten: it is rebuilt, with the key read then, by the next turn.
    """
    global _claude  # noqa: PLW0603
    if dynamodb.cache_info().currsize:
        dynamodb().close()
    with _claude_lock:
        _claude = None  # its pooled sockets go with it; the next turn builds a client with a fresh pool


def reset() -> None:
    """Forgets every cached object (tests: a fresh container)."""
    global _claude  # noqa: PLW0603
    for cached in (
        dynamodb,
        s3,
        attachments,
        catalog,
        admission,
        rate_limiter,
        stop_requests,
        turn_ids,
        sessions,
    ):
        cached.cache_clear()
    with _claude_lock:
        _claude = None

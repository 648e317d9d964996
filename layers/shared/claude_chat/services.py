"""The long-lived objects of a warm Lambda container, each built once on first use.

Building lazily keeps a function from paying for what it never uses (the
history function never imports the anthropic SDK), and caching keeps every
warm invocation from paying again for clients, secrets and connections.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from claude_chat.conversation_store import ConversationStore
from claude_chat.errors import NotConfigured
from claude_chat.rate_limiter import RateLimiter
from claude_chat.session_tokens import SessionTokens
from claude_chat.sessions import Sessions
from claude_chat.settings import get_settings, session_signing_key
from claude_chat.token_budget import TokenBudget

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from claude_chat.chat_turn import ChatPipeline

# Fail fast inside a Lambda timeout; standard mode retries throttles with backoff.
_DYNAMODB_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})


@cache
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_DYNAMODB_CONFIG)


@cache
def token_budget() -> TokenBudget | None:
    settings = get_settings()
    if settings.daily_token_budget <= 0:
        return None
    return TokenBudget(dynamodb(), settings.table_name, settings.daily_token_budget)


@cache
def rate_limiter() -> RateLimiter:
    settings = get_settings()
    return RateLimiter(
        dynamodb(),
        settings.table_name,
        settings.rate_limit_max,
        settings.rate_limit_window_seconds,
        token_budget(),
    )


@cache
def sessions() -> Sessions:
    settings = get_settings()
    tokens = SessionTokens(session_signing_key(settings), settings.session_max_age_seconds)
    store = ConversationStore(
        dynamodb(), settings.table_name, settings.session_ttl_seconds, settings.session_max_age_seconds
    )
    return Sessions(tokens, store)


@cache
def chat_pipeline() -> ChatPipeline:
    """Built on the first turn: raises NotConfigured (and builds nothing) while no API key is stored."""
    from claude_chat.chat_turn import ChatPipeline
    from claude_chat.claude_client import ClaudeClient
    from claude_chat.settings import anthropic_api_key

    settings = get_settings()
    api_key = anthropic_api_key(settings)
    if api_key is None:
        raise NotConfigured()
    claude = ClaudeClient(settings, api_key)
    return ChatPipeline(
        claude, sessions(), settings.history_max_turns, settings.claude_timeout_seconds, token_budget()
    )

"""Operator settings, read once per cold start from the environment.

In AWS the values come from template.yaml parameters; secrets come from
Secrets Manager by ARN so they never sit in plain environment variables.
Locally (`make dev`, tests) the plain ANTHROPIC_API_KEY / SESSION_SECRET
variables are used instead.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# DynamoDB refuses items over 400 KB; a turn item holds one user message and
# one reply, so their worst-case UTF-8 size must stay well below that.
_MAX_TURN_ITEM_BYTES = 380_000
_WORST_CASE_BYTES_PER_CHAR = 4
_WORST_CASE_BYTES_PER_TOKEN = 16
# A turn item keeps at most this much of the reply's citations (claude_chat.conversation_store).
CITATIONS_MAX_BYTES = 40_000
# The Messages API's smallest thinking budget (`thinking.budget_tokens`).
THINKING_MINIMUM_BUDGET = 1024
# CLAUDE_MODEL when it is not set: an Anthropic API model alias, or on Amazon Bedrock the US
# cross-Region inference profile of the same model (Claude Haiku 4.5); template.yaml's ClaudeModel
# and BedrockModel parameters default to these.
DEFAULT_MODELS = {
    "anthropic": "claude-haiku-4-5",
    "bedrock": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
}


class Settings(BaseSettings):
    """Every knob of ../API.md's settings table, plus the AWS wiring."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    table_name: str = "claude-chat"
    anthropic_api_key: SecretStr | None = None
    anthropic_api_key_secret_arn: str | None = None
    anthropic_base_url: str | None = None
    # anthropic: the Messages API with the operator's key. bedrock: Amazon Bedrock, signed (SigV4)
    # with the function's IAM role in AWS_REGION; no key, no secret.
    claude_provider: Literal["anthropic", "bedrock"] = "anthropic"
    # Where Bedrock's runtime API is (the SDK's own variable): unset in AWS, the stand-in locally.
    anthropic_bedrock_base_url: str | None = None
    claude_model: str = ""  # empty: DEFAULT_MODELS[claude_provider]
    # CLAUDE_MODELS: the models every caller may choose, comma-separated, the first the default (empty:
    # CLAUDE_MODEL alone). GROUP_MODELS: more for sign-in groups, `group=model` pairs (a group may
    # repeat) or JSON {"group": ["model", ...]}. On Bedrock the ids are inference profiles, and
    # BEDROCK_MODELS (when set: the profiles IAM allows) must hold them all. See model_choice.py.
    claude_models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    group_models: Annotated[dict[str, list[str]], NoDecode] = Field(default_factory=dict)
    bedrock_models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # MODEL_PRICES: JSON rows over the dated price table (pricing.py), USD per million tokens.
    model_prices: str = ""
    max_tokens: int = Field(default=1024, ge=1)
    # Thinking (0: off): budget_tokens on models that take a budget, on top of MAX_TOKENS; models
    # that think adaptively get MAX_TOKENS plus this much room (claude_chat.claude_client).
    thinking_budget_tokens: int = Field(default=0, ge=0)
    # Claude's web search tool (0: off): at most this many searches per turn, each priced; at most
    # one of the domain lists (comma-separated, e.g. `example.com,docs.python.org`).
    web_search_max_uses: int = Field(default=0, ge=0, le=100)
    web_search_allowed_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    web_search_blocked_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Input tokens a turn reserves per search (0: the model's context window, a bound that holds;
    # less is the operator's bet on how large search results run: pricing.search_reserve_tokens).
    web_search_reserve_tokens: int = Field(default=0, ge=0)
    system_prompt: str = ""
    claude_titles: bool = False  # Claude writes conversation titles (claude_chat.titles)
    history_max_messages: int = Field(default=20, ge=1)
    max_message_chars: int = Field(default=16_000, ge=1)
    claude_timeout_seconds: float = Field(default=25.0, gt=0)
    claude_max_retries: int = Field(default=2, ge=0)
    stream_time_limit_seconds: float = Field(default=55.0, gt=0)
    session_secret: SecretStr | None = None
    session_secret_arn: str | None = None
    session_ttl_seconds: int = Field(default=3600, ge=1)
    session_max_age_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    rate_limit_max: int = Field(default=20, ge=1)
    rate_limit_window_seconds: int = Field(default=60, ge=1)
    # Bits of an IPv6 address that name one client (express-rate-limit 8's default); see client_key.py.
    rate_limit_ipv6_prefix: int = Field(default=56, ge=1, le=128)
    daily_token_budget: int = Field(default=200_000, ge=0)  # per client key per UTC day; 0 turns it off
    global_daily_token_budget: int = Field(default=10_000_000, ge=0)  # all callers per UTC day; 0: off
    # Budgets in money, USD per UTC day (0: off): per client key, per sign-in group (JSON, like
    # GROUP_TOKEN_BUDGETS), and all callers together (spread over GLOBAL_BUDGET_SHARDS counters; 0:
    # as many as the budget allows, admission.py).
    daily_budget_usd: Decimal = Field(default=Decimal("1.00"), ge=0, allow_inf_nan=False)
    group_budgets_usd: Annotated[
        dict[str, Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]], NoDecode
    ] = Field(default_factory=dict)
    global_daily_budget_usd: Decimal = Field(default=Decimal("50.00"), ge=0, allow_inf_nan=False)
    global_budget_shards: int = Field(default=0, ge=0, le=4096)
    # Sign-in (sign_in.py): unset or empty keeps the chat anonymous; set, it needs the audience too.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None  # `aud`, or Cognito's `client_id` for its access tokens
    oidc_groups_claim: str = "cognito:groups"
    # GROUP_TOKEN_BUDGETS, JSON such as {"pro": 2000000}: a signed-in user's daily token budget is
    # the largest among their mapped groups (0: no daily budget), else DAILY_TOKEN_BUDGET.
    group_token_budgets: Annotated[dict[str, Annotated[int, Field(ge=0, strict=True)]], NoDecode] = Field(
        default_factory=dict
    )
    # Attachments (claude_chat.attachments): the bucket (empty: attachments off), files per turn, and
    # how long a claim and a kept file last (the bucket's lifecycle rule has the same number of days).
    attachments_bucket: str = ""
    max_attachments: int = Field(default=5, ge=0, le=20)
    attachment_retention_days: int = Field(default=9, ge=1)

    @field_validator("oidc_issuer", "oidc_audience", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # A template parameter left empty arrives as "", which means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("claude_provider", mode="before")
    @classmethod
    def _provider_in_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _model_for_the_provider(self) -> Settings:
        # The settings are frozen: this runs once, while they are being built.
        if not self.claude_model.strip():
            object.__setattr__(self, "claude_model", DEFAULT_MODELS[self.claude_provider])
        if not self.claude_models:
            object.__setattr__(self, "claude_models", [self.claude_model])
        else:
            object.__setattr__(self, "claude_model", self.claude_models[0])
        return self

    @property
    def on_bedrock(self) -> bool:
        return self.claude_provider == "bedrock"

    @field_validator("group_token_budgets", "group_budgets_usd", mode="before")
    @classmethod
    def _budgets_from_json(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return {}
        try:
            return json.loads(value, parse_float=Decimal)
        except ValueError:
            raise ValueError('group budgets must be a JSON object such as {"pro": 2000000}') from None

    @field_validator(
        "claude_models",
        "bedrock_models",
        "web_search_allowed_domains",
        "web_search_blocked_domains",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("group_models", mode="before")
    @classmethod
    def _group_models(cls, value: object) -> object:
        """`pro=claude-sonnet-4-5,pro=claude-opus-4-5`, or JSON {"pro": ["claude-sonnet-4-5"]}."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                raise ValueError(
                    'GROUP_MODELS must be `group=model,...` or JSON {"group": ["model"]}'
                ) from None
            if isinstance(parsed, dict):
                return {
                    group: [models] if isinstance(models, str) else models for group, models in parsed.items()
                }
            return parsed
        groups: dict[str, list[str]] = {}
        for pair in filter(None, (part.strip() for part in text.split(","))):
            group, equals, model = (side.strip() for side in pair.partition("="))
            if not equals or not group or not model:
                raise ValueError(f"GROUP_MODELS: {pair!r} is not `group=model`")
            groups.setdefault(group, []).append(model)
        return groups

    @model_validator(mode="after")
    def _issuer_needs_audience(self) -> Settings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError("OIDC_ISSUER is set but OIDC_AUDIENCE is not: tokens for any client would pass")
        return self

    @model_validator(mode="after")
    def _turn_fits_one_item(self) -> Settings:
        worst_case = (
            self.max_message_chars * _WORST_CASE_BYTES_PER_CHAR
            + (self.max_tokens + self.thinking_budget_tokens) * _WORST_CASE_BYTES_PER_TOKEN
            + CITATIONS_MAX_BYTES  # a reply's citations (web pages, PDF pages), as a turn item keeps them
        )
        if worst_case > _MAX_TURN_ITEM_BYTES:
            raise ValueError(
                "MAX_MESSAGE_CHARS, MAX_TOKENS and THINKING_BUDGET_TOKENS allow a turn larger than one "
                "DynamoDB item"
            )
        return self

    @model_validator(mode="after")
    def _thinking_budget(self) -> Settings:
        if 0 < self.thinking_budget_tokens < THINKING_MINIMUM_BUDGET:
            raise ValueError(
                f"THINKING_BUDGET_TOKENS must be 0 (off) or at least {THINKING_MINIMUM_BUDGET} "
                f"(the Messages API's smallest thinking budget), not {self.thinking_budget_tokens}"
            )
        return self

    @model_validator(mode="after")
    def _web_search(self) -> Settings:
        if self.web_search_allowed_domains and self.web_search_blocked_domains:
            raise ValueError(
                "WEB_SEARCH_ALLOWED_DOMAINS and WEB_SEARCH_BLOCKED_DOMAINS are both set: the web search "
                "tool takes one or the other"
            )
        for domain in (*self.web_search_allowed_domains, *self.web_search_blocked_domains):
            if "://" in domain or not domain.strip("/") or any(c.isspace() for c in domain):
                raise ValueError(f"web search domains are names such as example.com (no scheme): {domain!r}")
        lists = self.web_search_allowed_domains or self.web_search_blocked_domains
        if lists and not self.web_search_max_uses:
            raise ValueError(
                "a WEB_SEARCH_*_DOMAINS list is set but WEB_SEARCH_MAX_USES is 0 (search is off)"
            )
        if self.web_search_max_uses and self.on_bedrock:
            # Bedrock's InvokeModel (anthropic.AnthropicBedrock) has no web search tool: refuse, never
            # run a turn that silently cannot search (template.yaml's rule refuses it at deploy too).
            raise ValueError(
                "WEB_SEARCH_MAX_USES is set but CLAUDE_PROVIDER is bedrock, whose InvokeModel API has no "
                "web search tool: set WEB_SEARCH_MAX_USES=0 or use CLAUDE_PROVIDER=anthropic"
            )
        self._search_fits_the_token_budgets()
        return self

    def _search_fits_the_token_budgets(self) -> None:
        """A search turn reserves its searches' bound: more than a budget holds refuses every turn."""
        from claude_chat.pricing import nanos, price_table, prices_for, search_reserve_tokens

        if not self.web_search_max_uses:
            return
        table = price_table(self.model_prices)
        for model in self.claude_models:
            reserved = self.web_search_max_uses * search_reserve_tokens(model, self)
            prices = prices_for(model, table)
            cost = prices.worst_case(reserved, 0, self.web_search_max_uses) if prices is not None else 0
            for name, budget, need in (
                ("DAILY_TOKEN_BUDGET", self.daily_token_budget, reserved),
                ("GLOBAL_DAILY_TOKEN_BUDGET", self.global_daily_token_budget, reserved),
                ("DAILY_BUDGET_USD", nanos(self.daily_budget_usd), cost),
                ("GLOBAL_DAILY_BUDGET_USD", nanos(self.global_daily_budget_usd), cost),
            ):
                if budget and need >= budget:
                    raise ValueError(
                        f"WEB_SEARCH_MAX_USES={self.web_search_max_uses} reserves {reserved:,} input tokens "
                        f"(${cost / 1e9:.2f}) per turn of {model} for search results (its context window per "
                        f"search, or WEB_SEARCH_RESERVE_TOKENS), not less than {name}: every turn would be "
                        "refused. Raise the budget, lower WEB_SEARCH_MAX_USES or set "
                        "WEB_SEARCH_RESERVE_TOKENS"
                    )

    @model_validator(mode="after")
    def _files_outlive_their_turns(self) -> Settings:
        # A kept file must last as long as the turn items that name it: the session's max age, a day's
        # grace, and a day for the lifecycle rule's own rounding.
        if self.attachments_bucket and self.attachment_retention_days * 86_400 < (
            self.session_max_age_seconds + 2 * 86_400
        ):
            raise ValueError(
                "ATTACHMENT_RETENTION_DAYS must be at least SESSION_MAX_AGE_SECONDS in days plus 2"
            )
        return self

    @property
    def history_max_turns(self) -> int:
        """Past turns sent with a new message: the newest message plus whole turns fit the cap."""
        return (self.history_max_messages - 1) // 2


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


_SECRET_CACHE_SECONDS = 300
_refetch: set[str] = set()


def _secret_from_arn(arn: str) -> str:
    from aws_lambda_powertools.utilities.parameters import get_secret

    # Powertools caches the value for 5 minutes: one Secrets Manager call per execution
    # environment while it is warm; a rotated or newly set secret is in use within 5 minutes,
    # and at once after a rejected key (forget_api_key).
    force = arn in _refetch
    _refetch.discard(arn)
    return str(get_secret(arn, max_age=_SECRET_CACHE_SECONDS, force_fetch=force))


def forget_api_key(settings: Settings) -> None:
    """Claude rejected the key: the next read skips the cache and asks Secrets Manager again."""
    if settings.anthropic_api_key_secret_arn and not settings.on_bedrock:
        _refetch.add(settings.anthropic_api_key_secret_arn)


def anthropic_api_key(settings: Settings) -> str | None:
    """The API key, or None while the operator has not stored one (the stack's secret starts empty).

    On Bedrock there is no key: IAM signs each request, and no secret is ever read.
    """
    if settings.on_bedrock:
        return None
    if settings.anthropic_api_key is not None:
        return settings.anthropic_api_key.get_secret_value().strip() or None
    if not settings.anthropic_api_key_secret_arn:
        return None
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        return _secret_from_arn(settings.anthropic_api_key_secret_arn).strip() or None
    except GetParameterError as error:
        # An empty secret has no value yet (ResourceNotFoundException); the cause, never a value, is logged.
        cause = type(error.__cause__).__name__ if error.__cause__ else type(error).__name__
        logging.getLogger(__name__).error("the Anthropic API key secret has no readable value (%s)", cause)
        return None


def session_signing_key(settings: Settings) -> str:
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    if settings.session_secret_arn:
        return _secret_from_arn(settings.session_secret_arn)
    raise RuntimeError("set SESSION_SECRET (local) or SESSION_SECRET_ARN (AWS) to sign session tokens")

"""Who is asking: resolved once per request, by the transport, from what AWS (not the client) says.

Anonymous callers are keyed by the address Lambda saw (claude_chat.client_key)
and name their conversation with a session token. With sign-in on
(`OIDC_ISSUER`), every request must carry a bearer token of that issuer
(claude_chat.sign_in): the caller is then the user, keyed by issuer and
subject on any device and address, with the daily token budget of their
groups, and their conversation is theirs alone (claude_chat.sessions). Both
transports build a Caller here and hand it on, so nothing below resolves
either again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from claude_chat.admission import Limits
from claude_chat.client_key import client_key
from claude_chat.pricing import nanos
from claude_chat.settings import Settings, get_settings

if TYPE_CHECKING:
    from claude_chat.sign_in import User

SESSION_HEADER = "X-Session-Id"
SESSION_COOKIE = "sid"


@dataclass(frozen=True, slots=True)
class Caller:
    client_key: str
    session_token: str | None = None
    user: User | None = None
    daily_tokens: int | None = None  # the caller's daily token budget, when their groups set one
    daily_nanos: int | None = (
        None  # the caller's daily money budget (nano-dollars), when their groups set one
    )

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(self.user.groups) if self.user is not None else ()

    def limits(self, settings: Settings) -> Limits:
        """The caller's budgets per UTC day: their groups', else the settings' (0: off)."""
        return Limits(
            settings.daily_token_budget if self.daily_tokens is None else self.daily_tokens,
            nanos(settings.daily_budget_usd) if self.daily_nanos is None else self.daily_nanos,
        )

    @property
    def owner(self) -> str:
        """What binds the caller's turn ids to them: the user; nothing for an anonymous caller."""
        return self.client_key if self.user is not None else ""


def resolve_caller(source_ip: str, headers: Mapping[str, str], cookies: list[str]) -> Caller:
    """The caller of a request; raises Unauthorized (401) when sign-in is on and the token is no good."""
    settings = get_settings()
    if settings.oidc_issuer:
        from claude_chat import services
        from claude_chat.sign_in import bearer_token, group_budget, group_money_budget

        user = services.verifier().verify(bearer_token(headers))
        return Caller(user.key, None, user, group_budget(user, settings), group_money_budget(user, settings))
    return Caller(client_ip_of(source_ip), session_token_of(headers, cookies))


def caller_of(event: Mapping[str, Any]) -> Caller:
    """The caller of a function URL event (payload 2.0)."""
    return resolve_caller(
        event["requestContext"]["http"]["sourceIp"], event.get("headers") or {}, event.get("cookies") or []
    )


def client_ip(event: Mapping[str, Any]) -> str:
    """The caller's client key (see client_key.py), from the sourceIp Lambda reports and nothing else."""
    return client_ip_of(event["requestContext"]["http"]["sourceIp"])


def client_ip_of(source_ip: str, headers: Mapping[str, str] | None = None) -> str:
    """The client key of a request that came from `source_ip`.

    `headers` is accepted for the callers' convenience and deliberately ignored: the function URLs are
    public, so X-Forwarded-For and every other header are whatever the client chose to send.
    """
    return client_key(source_ip, get_settings().rate_limit_ipv6_prefix)


def session_token(event: Mapping[str, Any]) -> str | None:
    """The token the client presented: the X-Session-Id header, else the `sid` cookie."""
    return session_token_of(event.get("headers") or {}, event.get("cookies") or [])


def session_token_of(headers: Mapping[str, str], cookies: list[str]) -> str | None:
    header = headers.get(SESSION_HEADER.lower())
    if header:
        return str(header).strip()
    for cookie in cookies:
        name, _, value = str(cookie).partition("=")
        if name.strip() == SESSION_COOKIE:
            return value.strip()
    return None

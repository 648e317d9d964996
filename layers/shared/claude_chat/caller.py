"""Who is asking: resolved once per request, by the transport, from what AWS (not the client) says.

The client key (claude_chat.http_api.client_ip_of) keys every budget; the
session token names the conversation. Both transports build a Caller the
same way and hand it to the turn, so no step below resolves either again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from claude_chat.http_api import client_ip, session_token


@dataclass(frozen=True, slots=True)
class Caller:
    client_key: str
    session_token: str | None = None


def caller_of(event: Mapping[str, Any]) -> Caller:
    """The caller of a function URL event (payload 2.0)."""
    return Caller(client_ip(event), session_token(event))

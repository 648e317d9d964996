"""Opening a caller's session: token check, then expiry check against DynamoDB.

A missing, malformed, forged or expired token opens a fresh session (as
express-session does with a bad cookie): never an error, and never a way into
another session's history.

A signed-in user's conversation is named by the user (issuer and subject), not
by a token: it follows them to any device, and no token opens it. The token
handed back names it all the same (the contract's `session` field), but
tokens are only read from anonymous callers, and one naming a user's
conversation is refused like a forged one.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from claude_chat.conversation_store import ConversationStore, SessionRecord, Slot
from claude_chat.observability import log_session
from claude_chat.session_tokens import SessionToken, SessionTokens

if TYPE_CHECKING:
    from claude_chat.sign_in import User

_USER_PREFIX = "u:"  # ":" is not in the alphabet of random session ids (token_urlsafe)


def user_session_id(user: User) -> str:
    """The conversation of a signed-in user: derived from issuer and subject, unguessable without them."""
    digest = hashlib.sha256(f"{user.issuer}\n{user.subject}".encode()).hexdigest()
    return f"{_USER_PREFIX}{digest}"


@dataclass(frozen=True, slots=True)
class OpenSession:
    token: SessionToken
    record: SessionRecord

    @property
    def token_string(self) -> str:
        return self.token.token


@dataclass(frozen=True, slots=True)
class TurnSession:
    """The session a turn belongs to, with the slot the turn took in it."""

    token: SessionToken
    slot: Slot

    @property
    def token_string(self) -> str:
        return self.token.token


class Sessions:
    def __init__(self, tokens: SessionTokens, store: ConversationStore) -> None:
        self.tokens = tokens
        self.store = store

    def open(self, presented: str | None, now: float | None = None, user: User | None = None) -> OpenSession:
        """The caller's session for reading or resetting it (a fresh one if the token is no good)."""
        now = time.time() if now is None else now
        token = self._known(presented, user)
        if token is not None:
            record = self.store.load(token.session_id, token.issued_at)
            if user is not None or self.store.is_alive(record, now):  # a user's conversation lasts
                log_session(token.session_id)
                return OpenSession(token, record)
        fresh = self.tokens.issue()
        log_session(fresh.session_id)
        return OpenSession(fresh, SessionRecord(fresh.session_id, fresh.issued_at))

    def open_for_turn(
        self, presented: str | None, max_history_turns: int, user: User | None = None
    ) -> TurnSession:
        """The caller's live session (or a fresh one) with a slot taken for a new turn: one round trip."""
        token = self._known(presented, user)
        if token is not None:
            lasting = user is not None  # takes its slot unconditionally
            slot = self.store.take_slot(token.session_id, token.issued_at, max_history_turns, lasting=lasting)
            if slot is not None:
                log_session(token.session_id)
                return TurnSession(token, slot)
        fresh = self.tokens.issue()
        log_session(fresh.session_id)
        slot = self.store.take_slot(fresh.session_id, fresh.issued_at, 0)
        if slot is None:  # a session id of 256 fresh random bits has no META to expire
            raise RuntimeError("a fresh session could not take its first slot")
        return TurnSession(fresh, slot)

    def _known(self, presented: str | None, user: User | None) -> SessionToken | None:
        """The session the caller names: a signed-in user's own (no token read), or an anonymous
        caller's genuine token, unless it names a signed-in user's conversation."""
        if user is not None:
            return self.tokens.issue_for(user_session_id(user))
        token = self.tokens.verify(presented)
        if token is None or token.session_id.startswith(_USER_PREFIX):
            return None
        return token

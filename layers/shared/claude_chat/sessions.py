"""Opening a caller's session: token check, then expiry check against DynamoDB.

A missing, malformed, forged or expired token opens a fresh session (as
express-session does with a bad cookie): never an error, and never a way into
another session's history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from claude_chat.conversation_store import ConversationStore, SessionRecord, Slot
from claude_chat.observability import log_session
from claude_chat.session_tokens import SessionToken, SessionTokens


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

    def open(self, presented: str | None, now: float | None = None) -> OpenSession:
        """The caller's session for reading or resetting it (a fresh one if the token is no good)."""
        now = time.time() if now is None else now
        token = self.tokens.verify(presented)
        if token is not None:
            record = self.store.load(token.session_id, token.issued_at)
            if self.store.is_alive(record, now):
                log_session(token.session_id)
                return OpenSession(token, record)
        fresh = self.tokens.issue()
        log_session(fresh.session_id)
        return OpenSession(fresh, SessionRecord(fresh.session_id, fresh.issued_at))

    def open_for_turn(self, presented: str | None, max_history_turns: int) -> TurnSession:
        """The caller's live session (or a fresh one) with a slot taken for a new turn: one round trip."""
        token = self.tokens.verify(presented)
        if token is not None:
            slot = self.store.take_slot(token.session_id, token.issued_at, max_history_turns)
            if slot is not None:
                log_session(token.session_id)
                return TurnSession(token, slot)
        fresh = self.tokens.issue()
        log_session(fresh.session_id)
        slot = self.store.take_slot(fresh.session_id, fresh.issued_at, 0)
        if slot is None:  # a session id of 256 fresh random bits has no META to expire
            raise RuntimeError("a fresh session could not take its first slot")
        return TurnSession(fresh, slot)

"""Opening a caller's session: token check, then expiry check against DynamoDB.

A missing, malformed, forged or expired token opens a fresh session (as
express-session does with a bad cookie): never an error, and never a way into
another session's history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from claude_chat.conversation_store import ConversationStore, SessionRecord
from claude_chat.observability import log_session
from claude_chat.session_tokens import SessionToken, SessionTokens


@dataclass(frozen=True, slots=True)
class OpenSession:
    token: SessionToken
    record: SessionRecord

    @property
    def token_string(self) -> str:
        return self.token.token


class Sessions:
    def __init__(self, tokens: SessionTokens, store: ConversationStore) -> None:
        self.tokens = tokens
        self.store = store

    def open(self, presented: str | None, now: float | None = None, history_turns: int = 0) -> OpenSession:
        """`history_turns`: how many of the newest turns to read along (same round trip) for a turn."""
        now = time.time() if now is None else now
        token = self.tokens.verify(presented)
        if token is not None:
            record = self.store.load(token.session_id, token.issued_at, newest_turns=history_turns)
            if self.store.is_alive(record, now):
                log_session(token.session_id)
                return OpenSession(token, record)
        fresh = self.tokens.issue()
        log_session(fresh.session_id)
        return OpenSession(fresh, SessionRecord(fresh.session_id, fresh.issued_at))

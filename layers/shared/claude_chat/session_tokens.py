"""Session tokens: 256 random bits, issue time, HMAC-SHA256 signature.

The signature makes a token tamper-evident, so a forged or edited token can
never name someone else's session; the issue time bounds a session's absolute
age. A bad token is not an error: the caller just starts a new session.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

_SESSION_ID_BYTES = 32
_MAX_TOKEN_LENGTH = 256


@dataclass(frozen=True, slots=True)
class SessionToken:
    session_id: str
    issued_at: int
    token: str
    is_new: bool


class SessionTokens:
    def __init__(self, signing_key: str, max_age_seconds: int) -> None:
        self._signer = TimestampSigner(signing_key, salt="claude-chat.session", digest_method=hashlib.sha256)
        self._max_age = max_age_seconds

    def issue(self) -> SessionToken:
        session_id = secrets.token_urlsafe(_SESSION_ID_BYTES)
        token = self._signer.sign(session_id).decode()
        return SessionToken(session_id, int(time.time()), token, is_new=True)

    def issue_for(self, session_id: str) -> SessionToken:
        """A token naming a given session (a signed-in user's, whose id is derived from the user)."""
        token = self._signer.sign(session_id).decode()
        return SessionToken(session_id, int(time.time()), token, is_new=False)

    def verify(self, token: str | None) -> SessionToken | None:
        """The session a genuine, unexpired token names, or None for anything else."""
        if not token or len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
            return None
        try:
            session_id, issued = self._signer.unsign(token, max_age=self._max_age, return_timestamp=True)
        except (BadSignature, SignatureExpired):
            return None
        return SessionToken(session_id.decode(), int(issued.timestamp()), token, is_new=False)

    def resolve(self, token: str | None) -> SessionToken:
        return self.verify(token) or self.issue()

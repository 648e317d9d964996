"""Opening a caller's session: token check, then expiry check against DynamoDB.

A missing, malformed, forged or expired token opens a fresh session (as
express-session does with a bad cookie): never an error, and never a way into
another session's history.

A caller owns many conversations (claude_chat.conversation_store): the session
(an anonymous token's, or a signed-in user's) is the owner, and a conversation
id names one of its conversations, never another caller's.

A signed-in user's conversations are named by the user (issuer and subject), not
by a token: it follows them to any device, and no token opens it. The token
handed back names it all the same (the contract's `session` field), but
tokens are only read from anonymous callers, and one naming a user's
conversation is refused like a forged one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from claude_chat.admission import Check
from claude_chat.conversation_store import (
    DEFAULT_CONVERSATION,
    ConversationStore,
    Known,
    SessionRecord,
    Slot,
    known,
    partition_id,
)
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
    """The caller's session, opened on one of its conversations (`record`).

    `session` is the session's own META (its default conversation) when the conversation is
    another one of an anonymous caller: that META holds the session's idle expiry.
    """

    token: SessionToken
    record: SessionRecord
    session: SessionRecord | None = None

    @property
    def token_string(self) -> str:
        return self.token.token

    @property
    def owner(self) -> str:
        return self.token.session_id


@dataclass(frozen=True, slots=True)
class TurnSession:
    """The session a turn belongs to, the slot the turn will take in it, and what the turn's
    admission must find and write there (claude_chat.admission: all in one transaction)."""

    token: SessionToken
    slot: Slot
    checks: tuple[Check, ...] = ()

    @property
    def token_string(self) -> str:
        return self.token.token


# Conversations whose META this container last read or wrote, for admitting their next turn beside
# reading its history, or without reading it (begin_turn): a few hundred bytes each, and their newest
# turns while all of those together stay under _WARM_TURN_CHARS (the least recently used lose theirs).
_WARM_CONVERSATIONS = 1024
_WARM_TURN_CHARS = 4_000_000


class Sessions:
    def __init__(self, tokens: SessionTokens, store: ConversationStore, pool: Executor) -> None:
        self.tokens = tokens
        self.store = store
        self._pool = pool
        self._warm: OrderedDict[str, Known] = OrderedDict()
        self._warm_chars = 0  # of the newest turns the warm conversations keep
        self._warm_lock = threading.Lock()

    def remember(self, partition: str, state: Known | None) -> None:
        """What META holds now (after a read or a save), and the newest turns when known, for the
        conversation's next turn here."""
        with self._warm_lock:
            self._forget(partition)
            if state is None:
                return
            self._warm[partition] = state
            self._warm_chars += _chars(state)
            while len(self._warm) > _WARM_CONVERSATIONS:
                self._forget(next(iter(self._warm)))
            for oldest, kept in list(self._warm.items()):
                if self._warm_chars <= _WARM_TURN_CHARS:
                    break
                if kept.recent is not None:  # keeps what it knows of META, not its turns
                    self._warm_chars -= _chars(kept)
                    self._warm[oldest] = replace(kept, recent=None)

    def _forget(self, partition: str) -> None:
        gone = self._warm.pop(partition, None)
        if gone is not None:
            self._warm_chars -= _chars(gone)

    def guess_turn(
        self,
        presented: str | None,
        max_history_turns: int,
        user: User | None = None,
        conversation: str = DEFAULT_CONVERSATION,
        *,
        replace_last: bool = False,
        replace_only: str | None = None,
    ) -> TurnSession | None:
        """A new turn's slot from what this container last knew of the conversation, before reading
        it; its checks hold only if META is still exactly so. With the newest turns known too (the
        slot's `recent` is set), it is plan_turn's slot, history and all, and nothing needs reading;
        else claude_chat.chat_turn reads the history beside the admission and compares. None when
        nothing is known: read first."""
        token = self._known(presented, user)
        if token is None:
            return None
        partition = partition_id(token.session_id, conversation)
        with self._warm_lock:
            state = self._warm.get(partition)
            if state is not None:
                self._warm.move_to_end(partition)
        if state is None:
            return None
        now = time.time()
        slot = self.store.known_slot(
            partition,
            token.issued_at,
            state,
            now,
            lasting=user is not None,
            max_history_turns=max_history_turns,
            replace_last=replace_last,
            replace_only=replace_only,
        )
        if slot.recent is not None:
            log_session(token.session_id)
        checks = [self.store.check(slot, now, exact=True)]
        if user is None and slot.session_id != token.session_id:
            checks.append(self.store.session_check(token.session_id, token.issued_at, now))
        return TurnSession(token, slot, tuple(checks))

    def open(
        self,
        presented: str | None,
        now: float | None = None,
        user: User | None = None,
        conversation: str = DEFAULT_CONVERSATION,
    ) -> OpenSession:
        """The caller's session on one conversation, for reading, renaming or deleting it (a fresh
        session if the token is no good). An anonymous session's conversations all live as long
        as the session: while its default conversation's META (or, before it has one, its token)
        is younger than the idle timeout."""
        now = time.time() if now is None else now
        token = self._known(presented, user)
        if token is not None:
            partition = partition_id(token.session_id, conversation)
            if user is not None:  # a user's conversations last
                log_session(token.session_id)
                return OpenSession(token, self.store.load(partition, token.issued_at))
            own = None
            if partition != token.session_id:
                own = self._pool.submit(self.store.load, token.session_id, token.issued_at)
            record = self.store.load(partition, token.issued_at)
            session = own.result() if own is not None else record
            if self.store.is_alive(session, now):
                log_session(token.session_id)
                return OpenSession(token, record, session if own is not None else None)
        fresh = self.tokens.issue()
        log_session(fresh.session_id)
        partition = partition_id(fresh.session_id, conversation)
        return OpenSession(fresh, SessionRecord(partition, fresh.issued_at, conversation=conversation))

    def touch(self, session: OpenSession, user: User | None) -> None:
        """Slides the idle expiry of a session that is read but not written."""
        self.store.touch(session.session or session.record, lasting=user is not None)

    def plan_turn(
        self,
        presented: str | None,
        max_history_turns: int,
        user: User | None = None,
        conversation: str = DEFAULT_CONVERSATION,
        *,
        replace_last: bool = False,
        replace_only: str | None = None,
    ) -> TurnSession:
        """The caller's live session (or a fresh one) with a new turn's slot in one of its conversations
        and the history to send: reads only (one round trip; a turn in another than the default
        conversation of an anonymous session reads the session's record beside it). Nothing is
        written until the turn is admitted."""
        now = time.time()
        token = self._known(presented, user)
        if token is not None:
            planned = self._plan(
                token,
                conversation,
                max_history_turns,
                lasting=user is not None,
                now=now,
                replace_last=replace_last,
                replace_only=replace_only,
            )
            if planned is not None:
                log_session(token.session_id)
                return planned
        fresh = self.tokens.issue()
        log_session(fresh.session_id)
        slot = self.store.first_slot(
            partition_id(fresh.session_id, conversation), fresh.issued_at, now, max_history_turns
        )
        return TurnSession(fresh, slot, self._checks(fresh, slot, now))

    def _plan(
        self,
        token: SessionToken,
        conversation: str,
        max_history_turns: int,
        *,
        lasting: bool,
        now: float,
        replace_last: bool,
        replace_only: str | None,
    ) -> TurnSession | None:
        partition = partition_id(token.session_id, conversation)
        session = None
        if not lasting and partition != token.session_id:
            session = self._pool.submit(self.store.load, token.session_id, token.issued_at)
        slot = self.store.plan_turn(
            partition,
            token.issued_at,
            max_history_turns,
            now,
            lasting=lasting,
            replace_last=replace_last,
            replace_only=replace_only,
        )
        alive = session is None or self.store.is_alive(session.result(), now)
        if slot is None or not alive:
            return None
        self.remember(partition, known(slot))
        return TurnSession(token, slot, self._checks(token, slot, now))

    def _checks(self, token: SessionToken, slot: Slot, now: float) -> tuple[Check, ...]:
        checks = [self.store.check(slot, now)]
        if not slot.lasting and slot.session_id != token.session_id:
            checks.append(self.store.session_check(token.session_id, token.issued_at, now))
        return tuple(checks)

    def owner(self, presented: str | None, user: User | None = None) -> str | None:
        """Whose files a request may name: the caller's session (or user) when the token is genuine."""
        token = self._known(presented, user)
        return token.session_id if token is not None else None

    def _known(self, presented: str | None, user: User | None) -> SessionToken | None:
        """The session the caller names: a signed-in user's own (no token read), or an anonymous
        caller's genuine token, unless it names a signed-in user's conversation."""
        if user is not None:
            return self.tokens.issue_for(user_session_id(user))
        token = self.tokens.verify(presented)
        if token is None or token.session_id.startswith(_USER_PREFIX):
            return None
        return token


def _chars(state: Known) -> int:
    return state.recent.chars if state.recent is not None else 0

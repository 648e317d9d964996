"""One chat turn, plain or streamed, through a single pipeline.

history -> Claude -> save. The turn is saved only after Claude has answered,
in one atomic write, so a failed turn leaves the history exactly as it was.
The streaming transport drives `stream()`; the plain one drives `run()`;
both share the history and saving steps below.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from claude_chat.claude_client import ClaudeClient, ClaudeReply
from claude_chat.conversation_store import Turn
from claude_chat.sessions import OpenSession, Sessions


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    reply: ClaudeReply
    session: OpenSession | None = None
    turns: int | None = None


def turns_to_send(completed: int, max_turns: int) -> int:
    """How many of the newest whole turns go to Claude with the next message.

    A window that slid by one turn every turn would change the prompt's
    start every time, and the prompt cache would never hit once a chat is
    long. Here the window's start moves in steps of half a window, so the
    conversation prefix stays the same (and is read from the cache) for
    several turns in a row, while never exceeding `max_turns`.
    """
    if completed <= max_turns:
        return completed
    if max_turns <= 0:
        return 0
    step = (max_turns + 1) // 2
    start = math.ceil((completed - max_turns) / step) * step
    return completed - start


class ChatPipeline:
    def __init__(self, claude: ClaudeClient, sessions: Sessions | None, history_max_turns: int) -> None:
        self._claude = claude
        self._sessions = sessions
        self._history_max_turns = history_max_turns

    def run(self, message: str, session: OpenSession | None = None) -> TurnOutcome:
        reply = self._claude.reply(self._history(session), message, conversation=session is not None)
        return self._save(session, message, reply)

    def stream(self, message: str, session: OpenSession | None = None) -> Iterator[str | TurnOutcome]:
        """Yields text deltas, then the outcome once the turn is saved."""
        history = self._history(session)
        for part in self._claude.stream_reply(history, message, conversation=session is not None):
            if isinstance(part, ClaudeReply):
                yield self._save(session, message, part)
            else:
                yield part

    def _history(self, session: OpenSession | None) -> list[Turn]:
        if session is None or self._sessions is None:
            return []
        keep = turns_to_send(session.record.turns, self._history_max_turns)
        return self._sessions.store.recent_turns(session.record, keep)

    def _save(self, session: OpenSession | None, message: str, reply: ClaudeReply) -> TurnOutcome:
        if session is None or self._sessions is None:
            return TurnOutcome(reply)
        turns = self._sessions.store.append_turn(session.record, Turn(message, reply.text))
        return TurnOutcome(reply, session, turns)

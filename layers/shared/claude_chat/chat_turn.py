"""One chat turn, plain or streamed, through a single pipeline.

history -> Claude -> save. The turn is saved only after Claude has answered,
in one atomic write, so a failed turn leaves the history exactly as it was.
The streaming transport drives `stream()`; the plain one drives `run()`;
both share the history and saving steps below.
"""

from __future__ import annotations

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


class ChatPipeline:
    def __init__(self, claude: ClaudeClient, sessions: Sessions | None, history_max_turns: int) -> None:
        self._claude = claude
        self._sessions = sessions
        self._history_max_turns = history_max_turns

    def run(self, message: str, session: OpenSession | None = None) -> TurnOutcome:
        reply = self._claude.reply(self._history(session), message)
        return self._save(session, message, reply)

    def stream(self, message: str, session: OpenSession | None = None) -> Iterator[str | TurnOutcome]:
        """Yields text deltas, then the outcome once the turn is saved."""
        for part in self._claude.stream_reply(self._history(session), message):
            if isinstance(part, ClaudeReply):
                yield self._save(session, message, part)
            else:
                yield part

    def _history(self, session: OpenSession | None) -> list[Turn]:
        if session is None or self._sessions is None:
            return []
        return self._sessions.store.recent_turns(session.record, self._history_max_turns)

    def _save(self, session: OpenSession | None, message: str, reply: ClaudeReply) -> TurnOutcome:
        if session is None or self._sessions is None:
            return TurnOutcome(reply)
        turns = self._sessions.store.append_turn(session.record, Turn(message, reply.text))
        return TurnOutcome(reply, session, turns)

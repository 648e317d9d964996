"""One chat turn, plain or streamed, through a single pipeline.

history -> Claude -> save. Every turn streams from Claude; a plain turn just
reads the stream to the end, a streamed one forwards each delta as it comes,
so both share every step below. The turn is saved only once Claude has
answered, in one atomic write, so a failed turn leaves the history exactly as
it was. A turn whose client went away stops reading from Claude and keeps
the part of the reply the user already saw.

Every turn that reached Claude is accounted for once, however it ends: its
tokens go to the metrics and to the caller's daily token budget, since Claude
bills them whether or not the reply was complete.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from claude_chat.claude_client import ClaudeClient, ClaudeReply, ClaudeStream
from claude_chat.conversation_store import Turn
from claude_chat.errors import ApiError, InternalError, UpstreamTimeout
from claude_chat.models import Usage
from claude_chat.observability import record_turn, record_upstream_error
from claude_chat.sessions import OpenSession, Sessions
from claude_chat.token_budget import TokenBudget, billed_tokens

if TYPE_CHECKING:
    from claude_chat.rate_limiter import Admission

logger = Logger(child=True)


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


class StreamedTurn:
    """A turn whose reply is on its way: iterate `deltas()`, then read `outcome`."""

    def __init__(
        self,
        pipeline: ChatPipeline,
        message: str,
        session: OpenSession | None,
        upstream: ClaudeStream,
        *,
        time_limit: float,
        admission: Admission | None,
        started: float,
    ) -> None:
        self._pipeline = pipeline
        self._message = message
        self.session = session
        self._upstream = upstream
        self._deadline = time.monotonic() + time_limit
        self._stop = threading.Event()
        self.admission = admission
        self.started = started
        self.outcome: TurnOutcome | None = None

    def stop(self) -> None:
        """The client went away: stop reading from Claude at the next delta. Safe from any thread."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def deltas(self) -> Iterator[str]:
        """Text deltas as Claude sends them; the turn is saved when they end.

        Raises an ApiError if Claude fails or is too slow; then nothing is saved.
        """
        seen: list[str] = []
        try:
            for delta in self._upstream.text():
                if self._stop.is_set():
                    break
                if time.monotonic() > self._deadline:
                    raise UpstreamTimeout()
                seen.append(delta)
                yield delta
        except GeneratorExit:
            self._stop.set()
            raise
        except ApiError as error:
            _settle(self._pipeline.account(self, self._upstream.usage_so_far(len(seen)), failure=error))
            raise
        finally:
            self._upstream.close()
            if self._stop.is_set():
                self._keep_what_was_seen("".join(seen), len(seen))
        if not self._stop.is_set():
            try:
                reply = self._upstream.final()
            except ApiError as error:
                _settle(self._pipeline.account(self, self._upstream.usage_so_far(len(seen)), failure=error))
                raise
            charged = self._pipeline.account(self, reply.usage)  # runs beside the save: one round trip
            self.outcome = self._pipeline.save(self.session, self._message, reply)
            _settle(charged)

    def _keep_what_was_seen(self, partial: str, deltas: int) -> None:
        usage = self._upstream.usage_so_far(deltas)
        charged = self._pipeline.account(self, usage)
        # An empty reply would make the next request invalid (Claude refuses empty turns).
        if partial.strip():
            self.outcome = self._pipeline.save(
                self.session, self._message, ClaudeReply(partial, "client_left", usage)
            )
        _settle(charged)
        logger.info("client left mid-stream", extra={"kept_partial_reply": bool(partial.strip())})


def _settle(charge: Future[int] | None) -> None:
    """Waits for a budget charge: it must land before the invocation ends (and Lambda freezes)."""
    if charge is not None:
        charge.result()


class ChatPipeline:
    def __init__(
        self,
        claude: ClaudeClient,
        sessions: Sessions,
        history_max_turns: int,
        time_limit: float,
        token_budget: TokenBudget | None = None,
    ) -> None:
        self._claude = claude
        self._sessions = sessions
        self._history_max_turns = history_max_turns
        self._time_limit = time_limit
        self._token_budget = token_budget
        self._charges = ThreadPoolExecutor(max_workers=1, thread_name_prefix="token-charge")

    def open_session(self, presented: str | None) -> OpenSession:
        """The caller's session with the newest turns a turn may send: one DynamoDB round trip."""
        return self._sessions.open(presented, history_turns=self._history_max_turns)

    def start(
        self,
        message: str,
        session: OpenSession | None = None,
        time_limit: float | None = None,
        admission: Admission | None = None,
    ) -> StreamedTurn:
        """Sends the turn to Claude; raises an ApiError, before any reply byte, if Claude refuses it.

        `admission` is the caller's budget check, started when the request arrived: it must pass
        before Claude is called (by now it has usually finished), and the turn's tokens are
        charged to its client's daily budget.
        """
        started = time.perf_counter()
        history = self._history(session)
        if admission is not None:
            admission.wait()
        try:
            upstream = self._claude.open_stream(history, message, conversation=session is not None)
        except ApiError as error:
            record_upstream_error(error.code)
            raise
        return StreamedTurn(
            self,
            message,
            session,
            upstream,
            time_limit=time_limit or self._time_limit,
            admission=admission,
            started=started,
        )

    def account(
        self, turn: StreamedTurn, usage: Usage, failure: ApiError | None = None
    ) -> Future[int] | None:
        """Metrics, and the charge to the caller's token budget (under way when this returns),
        for a turn that reached Claude, however it ended."""
        seconds = None if failure else time.perf_counter() - turn.started
        record_turn(self._claude.model, usage, seconds)
        if failure is not None:
            record_upstream_error(failure.code)
        if self._token_budget is None or turn.admission is None:
            return None
        return self._charges.submit(self._token_budget.charge, turn.admission.client_ip, billed_tokens(usage))

    def run(
        self,
        message: str,
        session: OpenSession | None = None,
        admission: Admission | None = None,
    ) -> TurnOutcome:
        """A plain turn: the same streamed turn, read to the end."""
        turn = self.start(message, session, admission=admission)
        for _ in turn.deltas():
            pass
        if turn.outcome is None:  # only a stopped turn ends without one, and nobody stops this one
            raise InternalError()
        return turn.outcome

    def save(self, session: OpenSession | None, message: str, reply: ClaudeReply) -> TurnOutcome:
        if session is None:
            return TurnOutcome(reply)
        turns = self._sessions.store.append_turn(session.record, Turn(message, reply.text))
        return TurnOutcome(reply, session, turns)

    def _history(self, session: OpenSession | None) -> list[Turn]:
        if session is None:
            return []
        keep = turns_to_send(session.record.turns, self._history_max_turns)
        return self._sessions.store.recent_turns(session.record, keep)

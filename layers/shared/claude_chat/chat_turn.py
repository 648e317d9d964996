"""One chat turn, plain or streamed, from the moment it is asked for to its one ending.

`begin_turn` is the only way a turn starts, whatever the transport: it reads
the body and the model asked for (no DynamoDB call yet: a bad request costs
nothing), reads the caller's conversation (the history to send, no write),
prices the turn's worst case, and admits it: the request window, every budget
and the conversation's record in one all-or-nothing transaction
(claude_chat.admission), so a refused turn writes nothing and holds nothing.
Then Claude accepts the request. Everything that can refuse the turn happens
there, before any reply byte, so refusals are ordinary JSON errors.

A turn's worst case is its input bound plus its `max_tokens` of output
(MAX_TOKENS, plus THINKING_BUDGET_TOKENS when it thinks), plus, when it may
search the web, WEB_SEARCH_MAX_USES searches, the input they may add
(ClaudeClient.search_allowance) and `max_tokens` more output per search
(`_quote`), priced on its model (claude_chat.pricing).
The input bound is what Claude billed for the conversation's last prompt,
plus that turn's reply and the new message by their bytes (kept with the
conversation, `Context`); by the bytes of the whole prompt when that is not
known. Never below what Claude bills: a token covers a byte.

`Turn.deltas()` then forwards Claude's reply. A plain turn reads it to the
end (`run_turn`); a streamed one forwards each delta as it comes. However the
turn ends, it ends once, in `_end`: completed (saved and settled), stopped by
its client (the part sent so far saved, and settled), or failed (settled,
nothing saved: the history stays exactly as it was). An attempt that reached
Claude and was cut before Claude's first event (a timeout, a stop), and every
earlier attempt Claude may have run unheard, is charged the worst case. A
watcher thread ends a
turn that would outlive the invocation's deadline, and, for streamed turns,
looks for a stop request (claude_chat.stop_requests); both cut Claude's
connection at once rather than at the next delta.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools import Logger

from claude_chat import services
from claude_chat.admission import Charge, Conflict, Ticket
from claude_chat.attachments import CLAIM_CHECK, check_reused
from claude_chat.caller import Caller
from claude_chat.claude_client import (
    ClaudeClient,
    ClaudeReply,
    ClaudeStream,
    ReplyEvent,
    Text,
    Thinking,
    web_search_tool,
)
from claude_chat.conversation_store import CarefulSaveFailed, Slot, turns_to_send
from claude_chat.conversation_store import Turn as SavedTurn
from claude_chat.deadline import Deadline
from claude_chat.errors import (
    ApiError,
    BudgetExhausted,
    Busy,
    InternalError,
    NotConfigured,
    RateLimited,
    UpstreamTimeout,
)
from claude_chat.model_choice import ModelChoice
from claude_chat.models import ChatRequest, Citation, ConversationTurnRequest, Usage
from claude_chat.observability import record_turn, record_upstream_error
from claude_chat.pricing import billed_tokens
from claude_chat.rate_limiter import RateLimitDecision
from claude_chat.request_body import parse_chat_request
from claude_chat.sessions import TurnSession
from claude_chat.settings import Settings, get_settings
from claude_chat.titles import claude_title, title_from
from claude_chat.turn_files import TurnFiles

logger = Logger(child=True)

# How often a streamed turn looks for a stop request: "within about a second".
STOP_POLL_SECONDS = 1.0
# A turn's admission re-reads the conversation when it changed between the read and the write.
_ADMISSION_ATTEMPTS = 3
# A turn and its reply become messages of the next turn's history: a few tokens of framing.
_HISTORY_FRAMING_TOKENS = 16


@dataclass(frozen=True, slots=True)
class Quote:
    """What a turn may cost on its model: its input bound and `max_tokens` of output, and the web
    searches it may run with the input they may add, priced."""

    model: ModelChoice
    input_tokens: int
    output_tokens: int
    searches: int = 0
    search_input_tokens: int = 0

    @property
    def worst(self) -> Charge:
        inputs = self.input_tokens + self.search_input_tokens
        tokens = inputs + self.output_tokens
        return Charge(tokens, self.model.prices.worst_case(inputs, self.output_tokens, self.searches))

    def cost(self, usage: Usage | None, unanswered: int = 0) -> Charge:
        """The charge for what Claude billed (`usage`), or the worst case when that is unknown (a cut
        before Claude's first event), plus the worst case of each attempt Claude may have run unheard."""
        worst = self.worst
        billed = (
            worst
            if usage is None
            else Charge(billed_tokens(usage), self.model.prices.cost(usage, usage.web_search_requests))
        )
        return billed + Charge(worst.tokens * unanswered, worst.nanos * unanswered)

    def searched_in_full(self, usage: Usage) -> Usage:
        """A reply cut short may have run every search it could, unseen: their worst case."""
        if not self.searches:
            return usage
        return usage.model_copy(
            update={
                "input_tokens": usage.input_tokens + self.search_input_tokens,
                "web_search_requests": self.searches,
            }
        )


def fingerprint(model_id: str, settings: Settings) -> str:
    """What a conversation's billed tokens depend on besides its turns: the model, the system prompt,
    and how many past turns a request may send (a longer window sends turns the bill never held)."""
    sent = f"{model_id}\0{settings.system_prompt}\0{settings.history_max_turns}"
    if settings.web_search_max_uses:  # the tool's definition is billed input too (added only when on)
        sent += f"\0{json.dumps(web_search_tool(settings), sort_keys=True)}"
    return hashlib.sha256(sent.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class TurnRequest:
    caller: Caller
    body: str | bytes | None
    with_history: bool
    deadline: Deadline
    is_base64: bool = False
    stoppable: bool = False  # look for stop requests (streamed turns)
    # A transport with a body of its own (the AI SDK's, claude_chat.ui_stream) reads it here instead of
    # parse_chat_request: still after the request budget is drawn, so refusals match every other route.
    read_body: Callable[[], ConversationTurnRequest] | None = None
    # `replace_last` replaces the last saved turn only if it holds this very message (the AI SDK's
    # regenerate resends the last user message, saved or not: ui_stream).
    replace_same_message_only: bool = False


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    reply: ClaudeReply
    turns: int | None = None  # the conversation's saved turns after this one; None for a stateless turn
    title: str | None = None  # the conversation's title, when the turn has one


@dataclass
class Turn:
    """A turn Claude has accepted: iterate `deltas()` once, then read `outcome`."""

    id: str
    headers: dict[str, str]
    session: TurnSession | None
    message: str
    caller: Caller
    quote: Quote
    _claude: ClaudeClient
    _upstream: ClaudeStream
    _ticket: Ticket
    _deadline: Deadline
    _stoppable: bool
    _started: float
    outcome: TurnOutcome | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _ended: threading.Event = field(default_factory=threading.Event)
    _timed_out: bool = False
    _settling: Future[None] | None = None
    files: TurnFiles = field(default_factory=TurnFiles)

    def stop(self) -> None:
        """The client is gone or said stop: cut Claude's reply now, keep what was sent. Any thread."""
        self._stop.set()
        self._upstream.interrupt()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def deltas(self) -> Iterator[str]:
        """Claude's text deltas as they come (`events` without the thinking, searches and citations)."""
        with contextlib.closing(self.events()) as events:  # a reader that leaves ends the turn at once
            for event in events:
                if isinstance(event, Text) and event.text:
                    yield event.text

    def events(self) -> Generator[ReplyEvent]:
        """Claude's reply as it comes (thinking, searches, text with its citations); the turn ends when
        it does.

        Raises an ApiError if Claude fails or the deadline comes first; then nothing is saved.
        """
        sent = _Sent()
        received = 0  # events read from Claude, the one a stop dropped included
        reply: ClaudeReply | None = None
        failure: ApiError | None = None
        self._watch()
        try:
            for event in self._upstream.events():
                received += 1
                if self._stop.is_set():
                    break
                if self._deadline.until_cutoff() <= 0:
                    self._timed_out = True
                    raise UpstreamTimeout()
                sent.add(event)
                yield event
            if not self._stop.is_set():
                reply = self._upstream.final()
        except GeneratorExit:
            self._stop.set()  # the transport stopped reading: its client left
            raise
        except ApiError as error:
            failure = error
        except Exception:
            logger.exception("the reply failed")
            failure = InternalError()
        finally:
            self._ended.set()
            self._upstream.close()
            failure = self._end(sent, received, reply, failure)
        if failure is not None:
            raise failure

    def _end(
        self, sent: _Sent, received: int, reply: ClaudeReply | None, failure: ApiError | None
    ) -> ApiError | None:
        """The turn's one ending: metrics, settlement, and the save it deserves. Returns what to raise."""
        if reply is None and self._stop.is_set():
            failure = None  # a failure we caused by cutting the stream is no failure
        elif reply is None and self._timed_out:
            failure = UpstreamTimeout()  # however the cut showed itself (a broken read, say)
        usage = reply.usage if reply is not None else self._upstream.usage_so_far(received)
        if reply is None and not sent.any and usage is not None:
            # Cut before any text reached us: Claude may have generated any part of its reply unseen.
            usage = usage.model_copy(update={"output_tokens": self.quote.output_tokens})
        if reply is None and usage is not None:
            usage = self.quote.searched_in_full(usage)
        cost = self.quote.cost(usage, self._upstream.unanswered)
        seconds = None if failure else time.perf_counter() - self._started
        record_turn(self.quote.model.model_id, usage or Usage(), seconds, cost.nanos)
        if failure is not None:
            record_upstream_error(failure.code)
        # An empty reply (Claude does end a turn with no text at times) is not saved: every later
        # request carrying it would be refused (Claude refuses empty turns), and the session stuck.
        kept: ClaudeReply | None = None
        stopped: ClaudeReply | None = None  # what the user saw of a reply they stopped
        if reply is not None:
            kept = reply if reply.text.strip() else None
        elif failure is None:
            stopped = ClaudeReply(
                "".join(sent.text), "stopped", usage or Usage(), "".join(sent.thinking), tuple(sent.citations)
            )
            kept = stopped if stopped.text.strip() else None
        # A turn that is saved settles in the save's own transaction when it can (one write after
        # Claude); any other turn settles beside whatever else it does.
        if kept is None or self.session is None:
            self._settle(cost)
        try:
            if reply is not None:
                self.outcome = self._save(reply, cost) if kept is not None else self._unsaved(reply)
            elif stopped is not None:
                saved = self._save(stopped, cost) if kept is not None else None
                self.outcome = saved or self._unsaved(stopped)
                logger.info("reply stopped by its client", extra={"kept_partial_reply": saved is not None})
        finally:
            try:
                # Must land before the invocation ends (and Lambda freezes): a save that did not
                # carry the settlement, or failed, leaves it to here.
                self._settle(cost).result()
            except Exception:
                # The reply stands; the caller stays charged its reservation, never less than it cost.
                logger.exception("the turn's tokens could not be settled")
        return failure

    def _settle(self, cost: Charge) -> Future[None]:
        """Settles the turn's budgets on the pool, once: a second call returns the first's future."""
        if self._settling is None:
            self._settling = services.pool().submit(self._ticket.settle, cost)
        return self._settling

    def _unsaved(self, reply: ClaudeReply) -> TurnOutcome:
        if self.session is None:
            return TurnOutcome(reply)
        return TurnOutcome(reply, self.session.slot.turns_before, self.session.slot.title)

    def _save(self, reply: ClaudeReply, cost: Charge) -> TurnOutcome:
        """Saves the turn, settling its budgets at `cost` in the same write when the store can."""
        if self.session is None:
            return TurnOutcome(reply)
        slot, store = self.session.slot, services.sessions().store
        # The first exchange names the conversation (or a turn that replaces it renames it).
        first = slot.turns_before == (1 if slot.replaces is not None else 0)
        title = title_from(self.message, reply.text) if first else None
        settings = get_settings()
        billed = None
        if reply.stop_reason != "stopped" and not self.files.noted:
            # The next turn's history is this turn's prompt, which Claude billed exactly, and this reply,
            # bounded by its bytes (its output tokens need not be what the same text costs as input).
            usage = reply.usage
            prompt = usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
            tokens = prompt + len(reply.text.encode("utf-8", "surrogatepass")) + _HISTORY_FRAMING_TOKENS
            billed = (tokens, fingerprint(self.quote.model.model_id, settings))
        turn = SavedTurn(
            self.message,
            reply.text,
            thinking=reply.thinking,
            citations=tuple(cited.as_json() for cited in reply.citations),
            attachments=self.files.new,
        )
        settlement = self._ticket.settlement(cost)
        try:
            saved = store.save_turn(
                slot, turn, title=title, model=self.quote.model.name, billed=billed, also=settlement
            )
        except CarefulSaveFailed as failed:
            # Its item may have been written (or the turn it replaces deleted) with META not counting
            # it: what this container knew of the newest turns may no longer be what a read finds.
            services.sessions().remember(slot.session_id, None)
            raise failed.error from None  # the settlement was not written: _end settles the turn
        except Exception:
            services.sessions().remember(slot.session_id, None)  # it may have landed: read next time
            if settlement:
                # The settlement may have landed with a save whose answer was lost: the caller keeps
                # the reservation (never less than the turn cost) rather than risk a second refund.
                self._ticket.settled_by_them()
            raise
        if saved.also_written:
            self._ticket.settled_by_them()
        else:
            self._settle(cost)  # beside the title, if any; _end waits for it
        services.sessions().remember(slot.session_id, saved.state)
        if saved.state is not None and self.files.new:
            try:
                self.files.keep(self.session.token.session_id)
            except Exception:  # the turn stands; the file goes with the unused uploads within a day
                logger.exception("could not mark a saved turn's attachments kept")
        if first and saved.title == title and settings.claude_titles and not self.stopped:
            written = claude_title(self.caller, self.quote.model, self.message, reply.text, self._deadline)
            if written is not None and store.retitle(slot, title or "", written):
                if saved.state is not None:
                    services.sessions().remember(slot.session_id, replace(saved.state, title=written))
                return TurnOutcome(reply, saved.turns, written)
        return TurnOutcome(reply, saved.turns, saved.title)

    def _watch(self) -> None:
        """Ends the turn at the deadline's cutoff, and on a stop request, without waiting for a delta."""

        def watch() -> None:
            stop_requests = services.stop_requests() if self._stoppable else None
            while True:
                left = self._deadline.until_cutoff()
                if left <= 0:
                    self._timed_out = True
                    self._upstream.interrupt()
                    return
                wait = min(left, STOP_POLL_SECONDS) if stop_requests else left
                if self._ended.wait(wait):
                    return
                try:
                    if stop_requests is not None and stop_requests.requested(self.id):
                        self.stop()
                        return
                except Exception:  # a failed look is retried at the next poll; the reply goes on
                    logger.warning("could not look for a stop request", exc_info=True)

        threading.Thread(target=watch, name="turn-watch", daemon=True).start()


@dataclass
class _Sent:
    """What a turn's client has been sent so far (what a stopped turn keeps)."""

    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)

    def add(self, event: ReplyEvent) -> None:
        if isinstance(event, Text):
            self.text.append(event.text)
            self.citations.extend(event.citations)
        elif isinstance(event, Thinking):
            self.thinking.append(event.text)

    @property
    def any(self) -> bool:
        """Whether any of the reply's output (text or thinking) was sent."""
        return any(self.text) or any(self.thinking)


def begin_turn(request: TurnRequest) -> Turn:
    """Starts a turn, or raises the ApiError that refuses it (with the rate-limit headers)."""
    settings = get_settings()
    started = time.perf_counter()
    caller = request.caller
    window: Future[RateLimitDecision] | None = None
    try:
        turn_body = request.read_body() if request.read_body is not None else None
        if turn_body is None and request.with_history:
            turn_body = parse_chat_request(
                request.body, is_base64=request.is_base64, model=ConversationTurnRequest
            )
        chat: ChatRequest = turn_body or parse_chat_request(request.body, is_base64=request.is_base64)
        model = services.catalog().choose(chat.model, caller.groups)
        claude = services.claude()
        # The new message's files, read and checked by their bytes before anything is written.
        inline = turn_body._inline_files if turn_body is not None else ()
        files = TurnFiles.resolve(caller, chat.attachments, model.model_id, settings.claude_provider, inline)
        asked = _Asked(request, turn_body, chat.message, model, claude, settings, files)
        session, claude_request, quote, ticket = _admit_known(asked) or _admit(asked)
        try:
            files.fill()  # the history's files, read while the turn was admitted
            upstream = claude.open_stream(claude_request, request.deadline)
        except BaseException as error:
            unanswered = error.unanswered if isinstance(error, ApiError) else 0
            ticket.settle(quote.cost(Usage(), unanswered))  # a refusal is not billed; an unheard attempt is
            if isinstance(error, ApiError):
                record_upstream_error(error.code)
            if isinstance(error, NotConfigured) and error.key_rejected:
                services.forget_claude()
            raise
        # The window as the admission left it, for the rate-limit headers: read once Claude took the
        # turn, beside its reply (nothing before Claude waits for it, and a refusal reads it itself).
        window = services.pool().submit(services.rate_limiter().peek, caller.client_key)
        headers = _window_headers(window)
    except ApiError as error:
        raise _with_rate_limit(error, caller, window) from error.__cause__
    return Turn(
        id=services.turn_ids().issue(caller.owner),
        headers=headers,
        session=session,
        message=chat.message,
        caller=caller,
        quote=quote,
        _claude=claude,
        _upstream=upstream,
        _ticket=ticket,
        _deadline=request.deadline,
        _stoppable=request.stoppable,
        _started=started,
        files=files,
    )


Admitted = tuple[TurnSession | None, dict[str, Any], "Quote", Ticket]


@dataclass(frozen=True, slots=True)
class _Asked:
    """What a turn asks for, known from its request before any DynamoDB call."""

    request: TurnRequest
    turn_body: ConversationTurnRequest | None  # None: a stateless turn
    message: str
    model: ModelChoice
    claude: ClaudeClient
    settings: Settings
    files: TurnFiles = field(default_factory=TurnFiles)

    @property
    def caller(self) -> Caller:
        return self.request.caller

    def plan(self) -> TurnSession | None:
        return _plan(self.caller, self.turn_body, self.settings, self.request.replace_same_message_only)

    def plan_and_prefetch(self) -> TurnSession | None:
        """The read beside a guessed admission, which starts reading the history's files at once."""
        session = self.plan()
        self.files.prefetch(session)
        return session

    def priced(self, session: TurnSession | None) -> tuple[dict[str, Any], Quote]:
        self.files.prefetch(session)
        return _priced_request(
            self.claude, self.settings, self.model, self.message, session, files=self.files
        )

    def checks(self, session: TurnSession | None) -> tuple[Any, ...]:
        """What the admission must find and write: the conversation's, and the new files' claims."""
        return (*(session.checks if session is not None else ()), *self.files.claims(session))


def _admit(asked: _Asked, *, drawn: bool = False, read: TurnSession | None = None) -> Admitted:
    """Reads the conversation, then admits the turn (two round trips; a stateless turn's one).
    `drawn`: the request already took its place in the window (a guess that did not hold); `read`:
    the conversation as read beside a guess that did not hold (no need to read it again)."""
    caller = asked.caller
    for attempt in range(_ADMISSION_ATTEMPTS):
        session = read if read is not None and attempt == 0 else asked.plan()
        claude_request, quote = asked.priced(session)
        try:
            ticket = services.admission().admit(
                caller.client_key,
                quote.worst,
                caller.limits(asked.settings),
                request=not drawn,
                checks=asked.checks(session),
            )
        except Conflict as conflict:  # the conversation changed since it was read (a reset, a first turn)
            if conflict.check.name == CLAIM_CHECK:  # a file of another conversation
                raise check_reused() from None
            if attempt == _ADMISSION_ATTEMPTS - 1:
                raise Busy() from None
            continue
        return session, claude_request, quote, ticket
    raise Busy()  # not reached: the last attempt returns or raises


def _admit_known(asked: _Asked) -> Admitted | None:  # noqa: PLR0911 - each way a guess ends
    """One round trip for a turn of a conversation this container knows: the admission, priced on
    what META held when last read or written here (and checked to hold still), beside the read of
    the history. None when nothing is known, META changed since, or a budget refused what was known
    while the turn's own history is less (then read, then admit)."""
    caller = asked.caller
    turn_body = asked.turn_body
    if turn_body is None:
        return None
    guess = services.sessions().guess_turn(
        caller.session_token,
        asked.settings.history_max_turns,
        caller.user,
        turn_body.conversation,
        replace_last=turn_body.replace_last,
        replace_only=turn_body.message if asked.request.replace_same_message_only else None,
    )
    if guess is not None and guess.slot.recent is not None:
        return _admit_warm(asked, guess)
    worst = _known_worst(asked, guess)
    if guess is None or worst is None:
        return None
    reading = services.pool().submit(asked.plan_and_prefetch)
    limits = caller.limits(asked.settings)
    try:
        ticket = services.admission().admit(caller.client_key, worst, limits, checks=asked.checks(guess))
    except Conflict as conflict:  # META changed since this container knew it: admit on the read beside it
        if conflict.check.name == CLAIM_CHECK:  # a file of another conversation
            _quietly(reading)
            raise check_reused() from None
        return _admit(asked, read=_quietly(reading))
    except (RateLimited, BudgetExhausted) as refusal:
        # What was known bounds more than a turn may send (a regenerate leaves the last turn out, a
        # history window that moves on drops part of it): refuse only what its own history refuses.
        session = _quietly(reading)
        if isinstance(refusal, RateLimited) and refusal.limit == "requests":
            raise
        read = asked.priced(session)[1].worst if session is not None else worst
        if read.tokens < worst.tokens or read.nanos < worst.nanos:
            return _admit(asked, read=session)
        raise
    except BaseException:
        _quietly(reading)
        raise
    try:
        session = reading.result()
    except BaseException:
        ticket.settle(Charge())
        raise
    claude_request, quote = asked.priced(session)
    slot = session.slot if session is not None else None
    held = (
        session is not None
        and slot is not None
        and session.token.session_id == guess.token.session_id
        and (slot.generation, slot.turns_before, slot.context, slot.revision)
        == (guess.slot.generation, guess.slot.turns_before, guess.slot.context, guess.slot.revision)
        and quote.worst.tokens <= worst.tokens
        and quote.worst.nanos <= worst.nanos
    )
    if not held:  # a turn was saved, or the session reset, between the admission and the read
        ticket.settle(Charge())
        return _admit(asked, drawn=True, read=session)
    return session, claude_request, quote, ticket


def _admit_warm(asked: _Asked, guess: TurnSession) -> Admitted:
    """One call for a turn of a conversation whose newest turns this container knows too: the
    admission, priced on the very history a read would find, on condition that META is unchanged
    since (no save, reset or deletion elsewhere); if it changed, read, then admit."""
    claude_request, quote = asked.priced(guess)
    caller = asked.caller
    limits, checks = caller.limits(asked.settings), asked.checks(guess)
    try:
        ticket = services.admission().admit(caller.client_key, quote.worst, limits, checks=checks)
    except Conflict as conflict:
        if conflict.check.name == CLAIM_CHECK:  # a file of another conversation
            raise check_reused() from None
        return _admit(asked)  # META changed since this container knew it: read it
    except (RateLimited, BudgetExhausted) as refusal:
        # The caller's budgets rank before the conversation's check, so a history changed elsewhere
        # (a reset, a regenerate) is refused on what this container knew of it: refuse only what
        # the history a read finds refuses.
        if isinstance(refusal, RateLimited) and refusal.limit == "requests":
            raise
        try:
            session = asked.plan()
        except Exception:
            raise refusal from None  # no read to tell: what was known stands
        read = asked.priced(session)[1].worst
        if read.tokens < quote.worst.tokens or read.nanos < quote.worst.nanos:
            return _admit(asked, read=session)
        raise
    return guess, claude_request, quote, ticket


def _known_worst(asked: _Asked, guess: TurnSession | None) -> Charge | None:
    """A guessed turn's worst case without its history: none when the conversation has no saved turn,
    else what Claude billed for it (the context) plus the new message; None when not known."""
    if guess is None:
        return None
    slot, claude, files = guess.slot, asked.claude, asked.files
    bare = claude.build_request(
        (),
        asked.message,
        conversation=True,
        model=asked.model.model_id,
        files=files.blocks,
        attached=files.ids,
    )
    if slot.turns_before == 0:
        bound = claude.input_bound(bare) + files.bound(bare)
    elif slot.context is not None and _context_holds(slot, asked.model, asked.settings):
        bound = slot.context.tokens + claude.input_bound(bare, messages=1) + files.bound(bare)
    else:
        return None
    return _quote(claude, asked.model, bound, bare).worst


def _context_holds(slot: Slot, model: ModelChoice, settings: Settings) -> bool:
    """Whether what Claude billed for the conversation's last turn bounds this turn's history: same
    model, system prompt and history window, and no turn saved beside it."""
    context = slot.context
    return (
        context is not None
        and context.fingerprint == fingerprint(model.model_id, settings)
        and context.turns == slot.turns_before
    )


def _quietly(future: Future[Any]) -> Any:
    try:
        return future.result()
    except Exception:
        return None


def _plan(
    caller: Caller,
    turn_body: ConversationTurnRequest | None,
    settings: Settings,
    replace_same_message_only: bool,
) -> TurnSession | None:
    """The conversation a turn with history goes to, read (not written: the admission writes)."""
    if turn_body is None:
        return None
    return services.sessions().plan_turn(
        caller.session_token,
        settings.history_max_turns,
        caller.user,
        turn_body.conversation,
        replace_last=turn_body.replace_last,
        replace_only=turn_body.message if replace_same_message_only else None,
    )


def _priced_request(
    claude: ClaudeClient,
    settings: Settings,
    model: ModelChoice,
    message: str,
    session: TurnSession | None,
    *,
    files: TurnFiles | None = None,
) -> tuple[dict[str, Any], Quote]:
    """The request for Claude and its worst case: the history's billed tokens, when the conversation
    keeps them for this model and system prompt and no turn was saved beside its last, plus the new
    message by its bytes; else the whole prompt by its bytes."""
    history = session.slot.history if session is not None else ()
    claude_request = claude.build_request(
        history,
        message,
        conversation=session is not None,
        history_kept=session is None or _next_turn_sends_this_history(session, settings.history_max_turns),
        model=model.model_id,
        files=files.blocks if files is not None else None,
        attached=files.ids if files is not None else (),
    )
    # Files count by what Claude bills for them (an image by its pixels, a PDF by its pages).
    bound = claude.input_bound(claude_request) + (files.bound(claude_request) if files else 0)
    if (
        session is not None
        and session.slot.context is not None
        and _context_holds(session.slot, model, settings)
    ):
        newest = claude.input_bound(claude_request, messages=1)
        newest += files.bound(claude_request, messages=1) if files else 0
        bound = min(bound, session.slot.context.tokens + newest)
    return claude_request, _quote(claude, model, bound, claude_request)


def _quote(claude: ClaudeClient, model: ModelChoice, bound: int, claude_request: dict[str, Any]) -> Quote:
    """The request's worst case. With searches, Claude is sampled once more after each, and the docs
    do not say that `max_tokens` bounds the loop's output together (with interleaved thinking a
    thinking budget may even exceed it): each sampling is reserved its `max_tokens`."""
    searches, search_input = claude.search_allowance(claude_request)
    output = int(claude_request["max_tokens"]) * (searches + 1)
    return Quote(model, bound, output, searches, search_input)


def run_turn(request: TurnRequest) -> tuple[Turn, TurnOutcome]:
    """A plain turn: the same turn, read to the end."""
    turn = begin_turn(request)
    for _ in turn.deltas():
        pass
    if turn.outcome is None:  # only a stopped turn ends without one, and nobody stops this one
        raise InternalError()
    return turn, turn.outcome


def _next_turn_sends_this_history(session: TurnSession, max_turns: int) -> bool:
    slot = session.slot
    return next_turn_sends_same_history(slot.turns_before - (slot.replaces is not None), max_turns)


def next_turn_sends_same_history(completed: int, max_turns: int) -> bool:
    """Whether a conversation's next turn starts its history where this one does (so it can read this
    turn's cache write), `completed` turns before this one: turns_to_send moves the window's start in
    steps, so this is known now."""
    start_now = completed - turns_to_send(completed, max_turns)
    start_next = completed + 1 - turns_to_send(completed + 1, max_turns)
    return start_next == start_now


def _window_headers(window: Future[RateLimitDecision]) -> dict[str, str]:
    """The rate-limit headers of an admitted turn (its window read after the admission wrote it)."""
    try:
        return window.result().headers()
    except Exception:  # the reply goes on without them: the turn is admitted and its budget drawn
        logger.warning("could not read the request window for the rate-limit headers", exc_info=True)
        return {}


def _with_rate_limit(error: ApiError, caller: Caller, window: Future[RateLimitDecision] | None) -> ApiError:
    """The error a refused turn answers, with the rate-limit headers every response of a turn route
    carries (a refusal by the window has them already; for others the window is read, not drawn)."""
    if isinstance(error, RateLimited) and error.limit == "requests":
        return error
    try:
        decision = window.result() if window is not None else services.rate_limiter().peek(caller.client_key)
    except Exception:
        logger.warning("could not read the request window for the rate-limit headers", exc_info=True)
        return error
    error.headers = {**decision.headers(), **error.headers}
    return error

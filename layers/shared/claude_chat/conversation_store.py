"""Conversations in DynamoDB: many per caller, one item per turn.

Layout (table keys `pk`, `sk`; TTL attribute `expires_at`; index ByOwnerModel on `owner`, `updated_at`):

    pk = S#<owner>          sk = ~META   the caller's default conversation (the seed routes') and session
    pk = S#<owner>#<id>     sk = ~META   any other conversation of the caller
        META: gen, turns, expires_at; once a turn is saved: owner, cid, updated_at (ms),
              auto_title, title when renamed, model, rev (saves so far), and ctx, ctxfp, ctxn,
              ctxr (`Context`)
    pk = <conversation pk>  sk = T#<gen:010>#<slot>   user, assistant, expires_at (absolute); th
                                                      (thinking), cit (citations, JSON) when any; att
                                                      (the user message's files, JSON:
                                                      claude_chat.attachments)
    pk = S#<owner>#~files   sk = A#<attachment id>  cid: the conversation that claimed the file

`<owner>` is the caller: an anonymous session's id, or a signed-in user's
(claude_chat.sessions). A conversation's id is part of its partition key
after the owner's, so an id names a conversation of the caller who sends it
and no one else's: another caller's id is, to you, one that never existed.

Why this shape:
- `~META` sorts after every turn key and the numbers are zero-padded, so one
  descending Query reads META and the newest turns together.
- Listing a caller's conversations is one Query of the sparse index ByOwnerModel
  (partition `owner`, sort `updated_at`), newest first. Only META items with
  a saved turn carry both attributes, so a conversation appears once its first
  turn is saved and disappears when it is deleted; the index projects only
  `cid`, `turns`, the titles and the model, so reads that slide `expires_at`
  never write it.
- A turn writes nothing before it is admitted. `plan_turn` reads META and
  the history; the slot is the turn's start time (microseconds and three
  random digits), so concurrent turns never compete for a place, and the
  history reads in the order the turns were sent, whichever finished first;
  `check` is what the admission transaction (claude_chat.admission) must find
  on META: the generation read, a live session, and for a first turn META's
  creation, so concurrent first turns agree on its generation. A turn that
  fails leaves no turn item, and `turns` counts the saved ones.
- Saving is single-item writes sent together (one round trip, then META): the
  turn item, whose key no other turn holds (and, for a regenerated or edited
  turn, the deletion of the turn it replaces), then META's `turns`, title and
  `updated_at`, conditional on the generation the slot was taken in. No write
  conflicts with another turn's, and no item ever grows, so talking longer
  never nears the 400 KB item limit. `updated_at` never goes backwards, and
  the automatic title is only written where none is, so a rename racing a
  turn is kept.
- A reset or a delete bumps `gen` and unlists the conversation, so every query
  of the new generation stops seeing the old turns at once, and every turn
  still in flight, a conversation's very first included, fails its save
  condition and deletes what it wrote. The old generation's items are deleted
  before the call answers.
- Turn items expire at the session's absolute deadline (issue time + max age),
  which is never before the sliding expiry of META, so an active session never
  loses old turns to TTL. The default conversation's META carries the
  session's sliding idle expiry, which a turn in any of its conversations
  slides (`session_check`, in its admission); other conversations' METAs
  expire with the turns.
- META keeps a bound of the next turn's history (`Context`): what Claude billed
  for the last turn's prompt, plus its reply's bytes, so the next turn's worst
  case is known before its history is read (claude_chat.chat_turn). It holds
  only while no other turn was saved since the billed turn read META: every
  save adds one to `rev`, and the context keeps the `rev` its own save made (a
  count of turns would not do: a regenerate replaces a turn without changing it).
- The newest turns a read found, and those a save adds to them, are known too (`Recent`): a warm
  container admits a conversation's next turn on them with no read, on condition that `rev` (and
  the title, which the turn's reply answers) is still theirs, so they are what a read would find.
  A careful save that fails after its item (or the deletion of the turn it replaces) may have been
  written adds one to `rev` without a count, so what was known of them holds no more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from claude_chat.admission import Check
from claude_chat.attachments import Attachment, dump, load
from claude_chat.settings import CITATIONS_MAX_BYTES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_META = "~META"  # sorts after every "T#..." key: see the module docstring
BY_OWNER_INDEX = "ByOwnerModel"
DEFAULT_CONVERSATION = "default"  # the conversation the seed routes address: the session's own partition
_BATCH_DELETE_SIZE = 25
_TTL_GRACE_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class Turn:
    user: str
    assistant: str
    attachments: tuple[Attachment, ...] = ()  # the user message's files (references, never bytes)
    thinking: str = ""  # what Claude thought before its reply (THINKING_BUDGET_TOKENS)
    citations: tuple[dict[str, Any], ...] = ()  # claude_chat.models.Citation as JSON, in order


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What META says of a conversation; `stored` is False for one with no META yet.

    `session_id` is the conversation's partition (see `partition_id`); `updated_at`
    (milliseconds) is set once a turn is saved, and only then is the conversation listed.
    """

    session_id: str
    issued_at: int
    generation: int = 0
    turns: int = 0
    expires_at: int | None = None
    stored: bool = False
    conversation: str = DEFAULT_CONVERSATION
    title: str | None = None
    updated_at: int | None = None
    model: str | None = None  # the model of its last saved turn

    @property
    def listed(self) -> bool:
        return self.updated_at is not None


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation as the list shows it; `updated_at` in milliseconds since the epoch."""

    id: str
    title: str
    turns: int
    updated_at: int
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Saved:
    """What a saved turn left: the conversation's saved turns and title, and its META as written
    (None when the turn was not saved: a reset won)."""

    turns: int
    title: str | None = None
    state: Known | None = None
    also_written: bool = False  # the save's transaction wrote the `also` actions too


# A transaction's errors that do not say it wrote nothing (a 5xx, once botocore's retries are spent).
_OUTCOME_UNKNOWN = frozenset({"InternalServerError", "ServiceUnavailable", "InternalFailure"})


class CarefulSaveFailed(Exception):
    """`save_turn` failed the careful way (`error`), so none of its `also` actions were written: the
    one-call save that carries them wrote nothing or was not tried."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class NumberedTurn:
    """A saved turn with its slot number and its item's expiry, as the newest turns are known."""

    number: int
    expires_at: int
    turn: Turn


# At most this many more than the history window are kept in `Recent` (a regenerate's one).
_RECENT_EXTRA = 1
_NEVER = 1 << 62  # the expiry of an item without one
_EVERY = 1 << 30  # the depth of a generation known to hold no turn yet: all of them are known


@dataclass(frozen=True, slots=True)
class Recent:
    """The newest turn items of a conversation's generation, newest first, as a read found them or
    this container's own saves left them: exactly the `depth` newest (all of them, when there are
    fewer). With META's `rev` unchanged since (the admission's exact check), they are what a read
    would find, so a warm conversation's turn is admitted without one (claude_chat.sessions)."""

    depth: int
    turns: tuple[NumberedTurn, ...]
    limit: int  # the most it keeps: the history window and a regenerate's one more

    def serves(self, reads: int, now: float) -> bool:
        """Whether a read of the `reads` newest items would find nothing else, and none has expired
        (DynamoDB's TTL may have removed an expired one; a read tells)."""
        return self.depth >= reads and all(known.expires_at > now for known in self.turns[:reads])

    def after_save(self, saved: NumberedTurn, replaced: int | None) -> Recent | None:
        """What is known once `saved` is saved (replacing the newest, `replaced`) and nothing else was
        since these were known; None when it cannot be said (the replaced turn is not the newest
        known, or the new one would not sort first: another container's clock ran ahead)."""
        kept, depth = self.turns, self.depth
        if replaced is not None:
            if not kept or kept[0].number != replaced:
                return None
            kept, depth = kept[1:], depth - 1
        if kept and kept[0].number >= saved.number:
            return None
        return Recent(min(depth + 1, self.limit), (saved, *kept)[: self.limit], self.limit)

    @property
    def chars(self) -> int:
        """Roughly what it holds (claude_chat.sessions bounds what it keeps by this)."""
        return sum(_held(known.turn) for known in self.turns)


# What an object of a kept turn (a citation, a file's reference) holds besides its strings, in chars.
_OBJECT_CHARS = 200


def _held(turn: Turn) -> int:
    """Roughly what a kept turn holds, in characters: its texts, and its citations and its files'
    references (a turn item keeps up to CITATIONS_MAX_BYTES of those for a reply of a few words)."""
    cited = sum(_OBJECT_CHARS + sum(len(str(value)) for value in cited.values()) for cited in turn.citations)
    files = sum(
        _OBJECT_CHARS + len(file.id) + len(file.name) + len(file.type) + len(file.digest)
        for file in turn.attachments
    )
    return len(turn.user) + len(turn.assistant) + len(turn.thinking) + cited + files


@dataclass(frozen=True, slots=True)
class Known:
    """What a turn's worst case depends on in a conversation's META, and its newest turns when known:
    enough to admit the next turn without reading first (claude_chat.sessions keeps it per
    conversation while warm)."""

    generation: int
    turns: int
    context: Context | None
    revision: int = 0  # META's `rev`: one more with every save
    title: str | None = None  # the conversation's title (None: not listed yet)
    recent: Recent | None = None  # its newest turns, when known


@dataclass(frozen=True, slots=True)
class Slot:
    """A turn's place in its conversation, taken when the turn starts.

    `history` holds the turns to send with it (the newest before it, oldest first).
    """

    session_id: str
    issued_at: int
    generation: int
    number: int
    turns_before: int
    history: tuple[Turn, ...] = ()
    lasting: bool = False  # a signed-in user's conversation: no idle expiry (see take_slot)
    owner: str = ""  # the caller the conversation belongs to (its partition's first part)
    conversation: str = DEFAULT_CONVERSATION
    replaces: int | None = None  # the slot of the turn this one replaces (regenerate, edit)
    title: str | None = None  # the conversation's title when the slot was taken (None: not listed yet)
    stored: bool = False  # META existed when the turn read it
    context: Context | None = None  # what Claude billed for the history, when it is known exactly
    revision: int = 0  # META's `rev` when the turn read it
    recent: Recent | None = None  # the newest turns as the turn found them, when known (`Recent`)


@dataclass(frozen=True, slots=True)
class Context:
    """What Claude billed for a conversation's last prompt plus its reply's bytes: an upper bound of the
    next turn's history in tokens, valid for the model, system prompt and history window it was billed
    under (`fingerprint`) while the conversation has `turns` saved turns and no turn was saved beside
    it (a stale one is never read: `_context`)."""

    tokens: int
    fingerprint: str
    turns: int


class ConversationStore:
    def __init__(  # noqa: PLR0917 - the store's wiring, built in one place (services)
        self,
        client: DynamoDBClient,
        table_name: str,
        ttl_seconds: int,
        max_age_seconds: int,
        pool: Executor,
        forget_files: Callable[[str, list[str]], None] | None = None,
    ) -> None:
        self._db = client
        self._forget_files = forget_files  # deletes an owner's files (a deleted conversation's)
        self._table = table_name
        self._ttl = ttl_seconds
        self._max_age = max_age_seconds
        self._pool = pool

    def load(self, session_id: str, issued_at: int) -> SessionRecord:
        """META, read consistently (the first item of a descending Query)."""
        items = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": _pk(session_id)}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )["Items"]
        meta = items[0] if items and items[0]["sk"]["S"] == _META else None
        return self._record(session_id, issued_at, meta)

    @staticmethod
    def _record(session_id: str, issued_at: int, meta: dict[str, Any] | None) -> SessionRecord:
        conversation = conversation_of(session_id)
        if meta is None:
            return SessionRecord(session_id, issued_at, conversation=conversation)
        return SessionRecord(
            session_id,
            issued_at,
            generation=int(meta["gen"]["N"]),
            turns=int(meta.get("turns", {"N": "0"})["N"]),
            expires_at=int(meta["expires_at"]["N"]),
            stored=True,
            conversation=conversation,
            title=_title(meta) if "updated_at" in meta else None,
            updated_at=int(meta["updated_at"]["N"]) if "updated_at" in meta else None,
            model=meta.get("model", {}).get("S"),
        )

    def is_alive(self, record: SessionRecord, now: float) -> bool:
        """Sliding expiry: META's deadline, or for a session with no META yet, its issue time."""
        if record.expires_at is not None:
            return now < record.expires_at
        return now < record.issued_at + self._ttl

    def plan_turn(
        self,
        session_id: str,
        issued_at: int,
        max_history_turns: int,
        now: float | None = None,
        *,
        lasting: bool = False,
        replace_last: bool = False,
        replace_only: str | None = None,
    ) -> Slot | None:
        """A new turn's place in a live conversation, with the history to send: one Query, no write.

        One descending Query reads META and the newest turns together (META sorts after every
        turn). Nothing is written here: the turn's admission (claude_chat.admission) writes, in
        the same transaction as its budgets, what `check` asks, so a refused turn leaves nothing.
        None when the conversation's session has expired (an anonymous default conversation
        whose META, or token when it has none, is older than the idle timeout).

        The turn's slot is the time it started, in microseconds, with three random digits: turns
        read in the order they were sent, and concurrent turns never compete for a number. With
        `replace_last`, the turn replaces the newest saved turn (regenerate, or edit and resend):
        that turn is left out of the history sent, and `save_turn` deletes it. With `replace_only`
        too, only a newest turn whose message is that one is replaced (AI SDK clients regenerate
        by resending the last user message, which may never have been saved).
        """
        now = time.time() if now is None else now
        reads = max_history_turns + int(replace_last)
        items = self._newest_items(session_id, reads + 1)
        meta = items[0] if items and items[0]["sk"]["S"] == _META else None
        record = self._record(session_id, issued_at, meta)
        idle = not lasting and conversation_of(session_id) == DEFAULT_CONVERSATION
        if idle and not self.is_alive(record, now):
            return None
        generation = record.generation if meta is not None else _fresh_generation(now)
        prefix = _turn_prefix(generation)
        newest = tuple(_numbered(item) for item in items if item["sk"]["S"].startswith(prefix))  # never META
        known = Known(
            generation,
            record.turns,
            _context(meta),
            _revision(meta),
            record.title,
            # The Query read the `reads` newest items below META; a generation never read has none.
            Recent(reads if meta is not None else _EVERY, newest, max_history_turns + _RECENT_EXTRA),
        )
        taken = _take(
            session_id,
            issued_at,
            known,
            newest,
            now,
            max_history_turns=max_history_turns,
            replace_last=replace_last,
            replace_only=replace_only,
        )
        return replace(taken, lasting=lasting, stored=meta is not None)

    def known_slot(
        self,
        session_id: str,
        issued_at: int,
        state: Known,
        now: float,
        *,
        lasting: bool,
        max_history_turns: int,
        replace_last: bool = False,
        replace_only: str | None = None,
    ) -> Slot:
        """A turn's slot from what this container last knew of META, before any read: admitted with an
        `exact` check, so it holds only if META is still so. With its newest turns known too (`Recent`,
        `recent` set on the slot), the slot is the one plan_turn would take, history and all; else its
        history is unknown (empty here: read it beside the admission)."""
        reads = max_history_turns + int(replace_last)
        recent = state.recent
        if recent is None or not recent.serves(reads, now):
            return Slot(
                session_id,
                issued_at,
                state.generation,
                _new_slot_number(now),
                state.turns,
                (),
                lasting,
                owner=owner_of(session_id),
                conversation=conversation_of(session_id),
                stored=True,
                context=state.context,
                revision=state.revision,
            )
        slot = _take(
            session_id,
            issued_at,
            state,
            recent.turns[:reads],
            now,
            max_history_turns=max_history_turns,
            replace_last=replace_last,
            replace_only=replace_only,
        )
        return replace(slot, lasting=lasting, stored=True)

    def first_slot(
        self, session_id: str, issued_at: int, now: float | None = None, max_history_turns: int | None = None
    ) -> Slot:
        """A turn's slot in a conversation of a session issued just now: nothing to read, nothing there
        (so, given the history window, its newest turns are known: none)."""
        now = time.time() if now is None else now
        recent = None
        if max_history_turns is not None:
            recent = Recent(_EVERY, (), max_history_turns + _RECENT_EXTRA)
        return Slot(
            session_id,
            issued_at,
            _fresh_generation(now),
            _new_slot_number(now),
            0,
            owner=owner_of(session_id),
            conversation=conversation_of(session_id),
            recent=recent,
        )

    def check(self, slot: Slot, now: float | None = None, *, exact: bool = False) -> Check:
        """What the turn's admission must find and write on the conversation's META (one action of
        its transaction): the generation the turn read (so a reset since makes it read again), a
        live session with its idle expiry slid; for a conversation's first turn, META itself, so
        that concurrent first turns agree on its generation. `exact`: also the count and billed
        context the turn's worst case was priced on (a turn priced before its history was read)."""
        now = time.time() if now is None else now
        key = _key(_pk(slot.session_id), _META)
        idle = not slot.lasting and slot.conversation == DEFAULT_CONVERSATION
        values: dict[str, Any] = {":gen": {"N": str(slot.generation)}}
        deadline = {"N": str(self._meta_deadline(slot.session_id, slot.issued_at, now, lasting=slot.lasting))}
        if not slot.stored:
            values.update({":zero": {"N": "0"}, ":exp": deadline})
            action = {
                "Update": {
                    "Key": key,
                    "UpdateExpression": "SET gen = :gen, turns = :zero, expires_at = :exp",
                    "ConditionExpression": "attribute_not_exists(gen)",
                }
            }
        elif not idle and not slot.lasting:  # another conversation of an anonymous session: nothing slides
            condition = "gen = :gen" + (_exactly(slot, values) if exact else "")
            action = {"ConditionCheck": {"Key": key, "ConditionExpression": condition}}
        else:
            values[":exp"] = deadline
            condition = "gen = :gen" + (_exactly(slot, values) if exact else "")
            if idle:
                condition += " AND expires_at > :now"
                values[":now"] = {"N": str(int(now))}
            action = {
                "Update": {
                    "Key": key,
                    "UpdateExpression": "SET expires_at = :exp",
                    "ConditionExpression": condition,
                }
            }
        body = next(iter(action.values()))
        body["ExpressionAttributeValues"] = values
        body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return Check("conversation", action)

    def session_check(self, owner: str, issued_at: int, now: float | None = None) -> Check:
        """For a turn in another than the default conversation of an anonymous session: the session
        (its default conversation's META, which holds its idle expiry) is alive, and slides."""
        now = time.time() if now is None else now
        condition = "expires_at > :now"
        if now < issued_at + self._ttl:  # a fresh session may have no META yet
            condition = "attribute_not_exists(pk) OR expires_at > :now"
        return Check(
            "session",
            {
                "Update": {
                    "Key": _key(_pk(owner), _META),
                    "UpdateExpression": "SET gen = if_not_exists(gen, :fresh), "
                    "turns = if_not_exists(turns, :zero), expires_at = :exp",
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": {
                        ":zero": {"N": "0"},
                        ":fresh": {"N": str(_fresh_generation(now))},
                        ":exp": {"N": str(self._sliding_deadline(issued_at, now))},
                        ":now": {"N": str(int(now))},
                    },
                }
            },
        )

    def save_turn(
        self,
        slot: Slot,
        turn: Turn,
        now: float | None = None,
        *,
        title: str | None = None,
        model: str | None = None,
        billed: tuple[int, str] | None = None,
        also: Sequence[dict[str, Any]] = (),
    ) -> Saved:
        """Saves a finished turn in its slot; returns the conversation's saved turns and title.

        In one transaction, when META is still as the turn read it (no reset, rename or other
        save since) and the turn replaces none: the item, META's update, and `also` (another
        module's actions that should land with the save: claude_chat.chat_turn settles the turn's
        budgets so), one call. Otherwise, or when that transaction fails for any reason (having
        written nothing), as follows, and `also` is left to the caller (`Saved.also_written`):
        the item (and the deletion of the turn it replaces) and then META's count,
        title and update time. If a reset or delete won meanwhile, META's condition
        fails and the item is deleted again: the user asked to forget this
        conversation, so the turn must not reappear (the count returned is then
        the new conversation's). `title` is the conversation's automatic title,
        written when it has none yet, or when this turn replaces its first. `model` is
        the model that answered; `billed`, what Claude billed for the whole turn (input
        and output tokens) and under which fingerprint (claude_chat.chat_turn), kept as
        the bound of the next turn's history (`Context`); None forgets the old one.
        """
        now = time.time() if now is None else now
        pk = _pk(slot.session_id)
        key = _key(pk, _turn_sk(slot.generation, slot.number))
        item = {
            **key,
            "user": {"S": turn.user},
            "assistant": {"S": turn.assistant},
            "created_at": {"N": str(int(now))},
            "expires_at": {"N": str(self._absolute_deadline(int(now) if slot.lasting else slot.issued_at))},
            **_extras(turn),
        }
        if turn.attachments:
            item["att"] = {"S": dump(turn.attachments)}
        if slot.replaces is None:
            saved = self._save_at_once(slot, item, now, title=title, model=model, billed=billed, also=also)
            if saved is not None:
                return saved
        try:
            return self._save_carefully(slot, item, now, title=title, model=model, billed=billed)
        except Exception as error:
            raise CarefulSaveFailed(error) from error

    def _save_carefully(
        self,
        slot: Slot,
        item: dict[str, Any],
        now: float,
        *,
        title: str | None,
        model: str | None,
        billed: tuple[int, str] | None,
    ) -> Saved:
        """The item (and the deletion of the turn it replaces), then META's count (`save_turn`)."""
        pk = _pk(slot.session_id)
        key = _key(pk, _turn_sk(slot.generation, slot.number))
        put = self._pool.submit(
            self._db.put_item,
            TableName=self._table,
            Item=item,
            ConditionExpression="attribute_not_exists(sk)",
        )
        try:
            replaced = slot.replaces is not None and self._delete_turn(
                _key(pk, _turn_sk(slot.generation, slot.replaces))
            )
            meta = self._count_turn(
                slot, now, added=0 if replaced else 1, title=title, model=model, billed=billed
            )
        except Exception as error:
            _wait_quietly(put)
            if not isinstance(error, ClientError) or error.response["Error"]["Code"] != (
                "ConditionalCheckFailedException"
            ):
                self._turns_changed(slot)
                raise
            self._db.delete_item(TableName=self._table, Key=key)  # a reset won: forget this turn too
            current: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
            return Saved(int(current.get("turns", {"N": "0"})["N"]))  # not saved: nothing known
        try:
            put.result()
        except Exception:
            # One turn fewer is there than the count says: the new one is not, and a turn it replaced
            # is gone too (its count stood still). Take one back, then fail the turn.
            self._db.update_item(
                TableName=self._table,
                Key=_key(pk, _META),
                UpdateExpression="ADD turns :minus",
                ExpressionAttributeValues={":minus": {"N": "-1"}},
            )
            raise
        revision = _revision(meta)
        recent = None
        alone = revision == slot.revision + 1 and int(meta["gen"]["N"]) == slot.generation
        if slot.recent is not None and alone and (replaced or slot.replaces is None):
            # Nothing but this save since the turn read META: what it knew, and this turn.
            recent = slot.recent.after_save(_numbered(item), slot.replaces)
        title = _title(meta)
        known = Known(int(meta["gen"]["N"]), int(meta["turns"]["N"]), _context(meta), revision, title, recent)
        return Saved(known.turns, title, known)

    def _save_at_once(
        self,
        slot: Slot,
        item: dict[str, Any],
        now: float,
        *,
        title: str | None,
        model: str | None,
        billed: tuple[int, str] | None,
        also: Sequence[dict[str, Any]],
    ) -> Saved | None:
        """The item, META's update and `also` in one transaction, on condition that META is as the
        turn read it; then META's new state is known without reading it. None when it did not
        hold (nothing was written): the caller saves the careful way."""
        update, values, removed = self._turn_update(
            slot, now, added=1, title=title, model=model, billed=billed
        )
        condition = _SAVE_CONDITION
        if slot.revision:
            condition += " AND rev = :rev"
            values[":rev"] = {"N": str(slot.revision)}
        else:
            condition += " AND attribute_not_exists(rev)"
        condition += _titled(slot, values)
        meta = {
            "TableName": self._table,
            "Key": _key(_pk(slot.session_id), _META),
            "UpdateExpression": f"{update}, updated_at = :now{removed}",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": values,
        }
        put = {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(sk)"}
        try:
            self._db.transact_write_items(TransactItems=[{"Put": put}, {"Update": meta}, *also])  # type: ignore[list-item,typeddict-item]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _OUTCOME_UNKNOWN:
                raise  # it may have landed: saved again, the turn would count twice, `also` be redone
            return None  # cancelled or refused as a whole: nothing written
        context = None
        if billed is not None:
            context = Context(billed[0], billed[1], slot.turns_before + 1)
        listed = slot.title or title or _UNTITLED
        recent = slot.recent.after_save(_numbered(item), None) if slot.recent is not None else None
        known = Known(slot.generation, slot.turns_before + 1, context, slot.revision + 1, listed, recent)
        return Saved(known.turns, listed, known, also_written=True)

    def _turns_changed(self, slot: Slot) -> None:
        """A careful save failed after its item (and the deletion of the turn it replaces) may have
        been written, with META not counted: one more `rev` says the turns are not what they were,
        so no container admits a turn on the newest turns it knew (`Recent`), and no billed context
        bounds them any more. At best effort: the save's own failure is what the turn answers."""
        try:
            _unless_condition_fails(
                self._db.update_item,
                TableName=self._table,
                Key=_key(_pk(slot.session_id), _META),
                UpdateExpression="ADD rev :one",
                ConditionExpression="gen = :gen",  # a reset since doomed the turns already
                ExpressionAttributeValues={":one": {"N": "1"}, ":gen": {"N": str(slot.generation)}},
            )
        except Exception:
            logging.getLogger(__name__).exception("could not mark a conversation's turns changed")

    def _delete_turn(self, key: dict[str, Any]) -> bool:
        """Deletes a turn item; False when it was already gone (another turn replaced it first)."""
        deleted = _unless_condition_fails(
            self._db.delete_item, TableName=self._table, Key=key, ConditionExpression="attribute_exists(sk)"
        )
        return deleted is not None

    def _turn_update(
        self,
        slot: Slot,
        now: float,
        *,
        added: int,
        title: str | None,
        model: str | None,
        billed: tuple[int, str] | None,
    ) -> tuple[str, dict[str, Any], str]:
        """META's update expression for a saved turn (without `updated_at`), its values, and what it
        removes (a billed context that no longer holds)."""
        title_update = (
            "auto_title = :title"
            if slot.replaces is not None and slot.turns_before == 1
            else ("auto_title = if_not_exists(auto_title, :title)")
        )
        values = {
            ":added": {"N": str(added)},
            ":gen": {"N": str(slot.generation)},
            ":exp": {
                "N": str(self._meta_deadline(slot.session_id, slot.issued_at, now, lasting=slot.lasting))
            },
            ":owner": {"S": _pk(slot.owner)},
            ":cid": {"S": slot.conversation},
            ":title": {"S": title or _UNTITLED},
            ":now": {"N": str(int(now * 1000))},
            ":one": {"N": "1"},
        }
        update = (
            f"ADD turns :added, rev :one SET expires_at = :exp, #owner = :owner, cid = :cid, {title_update}"
        )
        if model is not None:
            update += ", model = :model"
            values[":model"] = {"S": model}
        if billed is not None:
            update += ", ctx = :ctx, ctxfp = :ctxfp, ctxn = :ctxn, ctxr = :ctxr"
            values[":ctx"] = {"N": str(billed[0])}
            values[":ctxfp"] = {"S": billed[1]}
            values[":ctxn"] = {"N": str(slot.turns_before + added)}
            # The `rev` this save makes if no other turn was saved since this one read META.
            values[":ctxr"] = {"N": str(slot.revision + 1)}
        removed = "" if billed is not None else " REMOVE ctx, ctxfp, ctxn, ctxr"
        return update, values, removed

    def _count_turn(
        self,
        slot: Slot,
        now: float,
        *,
        added: int,
        title: str | None,
        model: str | None = None,
        billed: tuple[int, str] | None = None,
    ) -> dict[str, Any]:
        """META's update for a saved turn: count, listing attributes, title, update time, model and
        what the turn was billed (the next turn's bound, valid at the count this turn leaves).

        `updated_at` never goes backwards: when a later turn already wrote a later time,
        the update is made again without it (the turn still counts).
        """
        update, values, removed = self._turn_update(
            slot, now, added=added, title=title, model=model, billed=billed
        )
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(_pk(slot.session_id), _META),
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            return dict(
                self._db.update_item(
                    **request,
                    UpdateExpression=f"{update}, updated_at = :now{removed}",
                    ConditionExpression=_SAVE_CONDITION,
                )["Attributes"]
            )
        except ClientError as error:
            current: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
            if current.get("gen", {}).get("N") != str(slot.generation):
                raise
        del values[":now"]
        return dict(
            self._db.update_item(
                **request, UpdateExpression=update + removed, ConditionExpression="gen = :gen"
            )["Attributes"]
        )

    def all_turns(self, record: SessionRecord) -> list[Turn]:
        if not record.stored:
            return []
        return [
            _turn(item)
            for item in self._query_generation(record.session_id, record.generation, projection=None)
        ]

    def touch(self, record: SessionRecord, now: float | None = None, *, lasting: bool = False) -> None:
        """Slides the idle expiry of a session that is read but not written."""
        if not record.stored:
            return
        now = time.time() if now is None else now
        _unless_condition_fails(
            self._db.update_item,
            TableName=self._table,
            Key=_key(_pk(record.session_id), _META),
            UpdateExpression="SET expires_at = :exp",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={
                ":exp": {"N": str(self._sliding_deadline(record.issued_at, now, lasting=lasting))}
            },
        )

    def reset(
        self,
        record: SessionRecord,
        now: float | None = None,
        *,
        lasting: bool = False,
        must_exist: bool = False,
    ) -> bool:
        """Forgets a conversation: one write hides it, unlists it and dooms every turn in flight,
        then its items go. Returns whether it was listed (had a saved turn) before; with
        `must_exist`, a conversation with no META is left without one (nothing is written).

        It bumps the generation even for a conversation with no saved turn yet (its first
        turn may be in flight), and deletes the old generation's items before answering.
        """
        now = time.time() if now is None else now
        request: dict[str, Any] = {}
        if must_exist:
            request["ConditionExpression"] = "attribute_exists(pk)"
        answer = _unless_condition_fails(
            self._db.update_item,
            TableName=self._table,
            Key=_key(_pk(record.session_id), _META),
            UpdateExpression="SET gen = if_not_exists(gen, :before_first) + :one, "
            "turns = :zero, expires_at = :exp REMOVE #owner, updated_at, cid, title, auto_title",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":zero": {"N": "0"},
                ":before_first": {"N": str(_fresh_generation(now) - 1)},
                ":exp": {
                    "N": str(self._meta_deadline(record.session_id, record.issued_at, now, lasting=lasting))
                },
            },
            ReturnValues="UPDATED_OLD",
            **request,
        )
        if answer is None:
            return False
        old = answer.get("Attributes", {})
        if "gen" not in old:
            return False
        items = list(
            self._query_generation(record.session_id, int(old["gen"]["N"]), projection="pk, sk, att")
        )
        files = [a.id for item in items for a in load(item.get("att", {}).get("S"))]
        if files and self._forget_files is not None:
            try:
                self._forget_files(owner_of(record.session_id), files)
            except Exception:  # the reset stands; its files go with the bucket's lifecycle rule instead
                logging.getLogger(__name__).exception("could not delete a conversation's attachments")
        self._delete_items([_key_of(item) for item in items])
        return "updated_at" in old

    def retitle(self, slot: Slot, expected: str, title: str) -> bool:
        """Replaces the automatic title the slot's turn wrote (`expected`) with a better one, unless
        the conversation was reset, deleted or retitled since."""
        retitled = _unless_condition_fails(
            self._db.update_item,
            TableName=self._table,
            Key=_key(_pk(slot.session_id), _META),
            UpdateExpression="SET auto_title = :title",
            ConditionExpression="gen = :gen AND auto_title = :expected",
            ExpressionAttributeValues={
                ":title": {"S": title},
                ":expected": {"S": expected},
                ":gen": {"N": str(slot.generation)},
            },
        )
        return retitled is not None

    def rename(self, record: SessionRecord, title: str) -> ConversationSummary | None:
        """Gives a listed conversation the caller's title (kept over the automatic one); None if unlisted."""
        renamed = _unless_condition_fails(
            self._db.update_item,
            TableName=self._table,
            Key=_key(_pk(record.session_id), _META),
            UpdateExpression="SET title = :title",
            ConditionExpression="attribute_exists(updated_at)",
            ExpressionAttributeValues={":title": {"S": title}},
            ReturnValues="ALL_NEW",
        )
        return None if renamed is None else _summary(renamed["Attributes"])

    def conversations(
        self, owner: str, limit: int, after: tuple[int, str] | None = None
    ) -> tuple[list[ConversationSummary], tuple[int, str] | None]:
        """A page of the caller's conversations, most recently updated first: one Query of ByOwnerModel.

        `after` is the (updated_at, id) of the last one of the previous page; the second value
        returned is that of this page's last, or None when no more exist. The index is read
        eventually consistently (a turn saved this instant may list a moment later).
        """
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_OWNER_INDEX,
            "KeyConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": {"S": _pk(owner)}},
            "ScanIndexForward": False,
        }
        if after is not None:
            updated_at, conversation = after
            request["ExclusiveStartKey"] = {
                **_key(_pk(partition_id(owner, conversation)), _META),
                "owner": {"S": _pk(owner)},
                "updated_at": {"N": str(updated_at)},
            }
        found: list[ConversationSummary] = []
        while True:
            page = self._db.query(**request, Limit=limit + 1 - len(found))
            for item in page["Items"]:
                if len(found) == limit:
                    last = found[-1]
                    return found, (last.updated_at, last.id)
                found.append(_summary(item))
            if "LastEvaluatedKey" not in page:
                return found, None
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _newest_items(self, session_id: str, limit: int) -> list[dict[str, Any]]:
        """META (when there is one) and the newest turn items of any generation, newest first."""
        items = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": _pk(session_id)}},
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )["Items"]
        return list(items)

    def _meta_deadline(self, session_id: str, issued_at: int, now: float, *, lasting: bool) -> int:
        """META's expiry: the session's sliding one for the default conversation (or a signed-in
        user's), else the session's absolute deadline, as its turns have (the session's idle
        expiry, kept on the default conversation's META, decides when the caller can reach it)."""
        if lasting or conversation_of(session_id) == DEFAULT_CONVERSATION:
            return self._sliding_deadline(issued_at, now, lasting=lasting)
        return self._absolute_deadline(issued_at)

    def _sliding_deadline(self, issued_at: int, now: float, *, lasting: bool = False) -> int:
        if lasting:
            return math.ceil(now) + self._max_age
        return min(math.ceil(now) + self._ttl, issued_at + self._max_age)

    def _absolute_deadline(self, issued_at: int) -> int:
        return issued_at + self._max_age + _TTL_GRACE_SECONDS

    def _generation_query(self, session_id: str, generation: int) -> dict[str, Any]:
        """A Query for the turns of one generation of the conversation, read consistently."""
        return {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": _pk(session_id)},
                ":prefix": {"S": _turn_prefix(generation)},
            },
            "ConsistentRead": True,
        }

    def _query_generation(
        self, session_id: str, generation: int, projection: str | None
    ) -> Iterator[dict[str, Any]]:
        request = self._generation_query(session_id, generation)
        if projection:
            request["ProjectionExpression"] = projection
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(**request):
            yield from page["Items"]

    def _delete_items(self, keys: list[dict[str, Any]]) -> None:
        for start in range(0, len(keys), _BATCH_DELETE_SIZE):
            batch = keys[start : start + _BATCH_DELETE_SIZE]
            pending: list[Any] = [{"DeleteRequest": {"Key": key}} for key in batch]
            for attempt in range(5):
                unprocessed = self._db.batch_write_item(RequestItems={self._table: pending}).get(
                    "UnprocessedItems", {}
                )
                pending = list(unprocessed.get(self._table, []))
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)

    def history_page(
        self, record: SessionRecord, limit: int, max_bytes: int, before: int | None = None
    ) -> HistoryPage:
        """The newest turns older than turn `before` (all, when None): at most `limit`, about `max_bytes`.

        One descending Query of the current generation, read a turn past the
        page so `older` is None exactly when nothing older exists. Turn numbers
        may have gaps, so the page is whatever items exist below `before`. The
        size is each turn's JSON text with every non-ASCII character escaped,
        the longest any encoder writes; a turn bigger than `max_bytes` still
        makes a page alone, so a reader can always get past it.
        """
        if not record.stored or limit <= 0:
            return HistoryPage((), None)
        request = self._generation_query(record.session_id, record.generation)
        if before is not None:
            request["ExclusiveStartKey"] = _key(_pk(record.session_id), _turn_sk(record.generation, before))
        newest_first: list[tuple[int, Turn]] = []
        size = 0
        while True:
            items = self._db.query(**request, ScanIndexForward=False, Limit=limit + 1 - len(newest_first))
            for item in items["Items"]:
                turn = _turn(item)
                cost = _json_size(turn)
                if len(newest_first) == limit or (newest_first and size + cost > max_bytes):
                    return HistoryPage(tuple(t for _, t in reversed(newest_first)), newest_first[-1][0])
                newest_first.append((_turn_number(item), turn))
                size += cost
            if "LastEvaluatedKey" not in items:
                return HistoryPage(tuple(t for _, t in reversed(newest_first)), None)
            request["ExclusiveStartKey"] = items["LastEvaluatedKey"]


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


def _fresh_generation(now: float) -> int:
    """A new META's generation: the clock, so a META re-created after TTL removed it (a signed-in
    user's conversation is named by the user, so its id comes back) never reuses the keys of turn
    items that may outlive it by a day."""
    return int(now)


def _unless_condition_fails(call: Callable[..., Any], **request: Any) -> dict[str, Any] | None:
    """A conditional write's answer, or None when its condition did not hold (any other error raises)."""
    try:
        return dict(call(**request))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return None


def _wait_quietly(future: Future[Any]) -> None:
    with contextlib.suppress(Exception):
        future.result()


def _exactly(slot: Slot, values: dict[str, Any]) -> str:
    """The condition that META still holds the count and billed context `slot` was priced on: the
    same count, and no save since (every save adds one to `rev`, and only a save writes `ctx`)."""
    values[":turns"] = {"N": str(slot.turns_before)}
    # A slot taken from the newest turns known (`Recent`) was taken with the title known too: the
    # reply answers it, so a rename elsewhere makes the turn read like any other change.
    titled = _titled(slot, values) if slot.recent is not None else ""
    if not slot.revision:
        return " AND turns = :turns AND attribute_not_exists(rev)" + titled
    values[":rev"] = {"N": str(slot.revision)}
    return " AND turns = :turns AND rev = :rev" + titled


def _titled(slot: Slot, values: dict[str, Any]) -> str:
    """The condition that META's title is still the slot's (None: not listed yet, no title of either kind)."""
    if slot.title is None:
        return (
            " AND attribute_not_exists(updated_at) AND attribute_not_exists(title)"
            " AND attribute_not_exists(auto_title)"
        )
    values[":seen"] = {"S": slot.title}
    return " AND (title = :seen OR (attribute_not_exists(title) AND auto_title = :seen))"


def known(slot: Slot) -> Known | None:
    """What a read of META told of the conversation (None: no META, nothing to know)."""
    if not slot.stored:
        return None
    return Known(slot.generation, slot.turns_before, slot.context, slot.revision, slot.title, slot.recent)


def _take(
    session_id: str,
    issued_at: int,
    state: Known,
    newest: Sequence[NumberedTurn],
    now: float,
    *,
    max_history_turns: int,
    replace_last: bool,
    replace_only: str | None,
) -> Slot:
    """A new turn's slot in a conversation whose META is `state` and whose newest turns (as many as
    plan_turn reads) are `newest`, newest first: the history to send, and the turn it replaces."""
    earlier = list(newest)
    replaces = None
    if replace_last and earlier and state.turns > 0 and replace_only in (None, earlier[0].turn.user):
        replaces, earlier = earlier[0].number, earlier[1:]
    keep = turns_to_send(state.turns - (replaces is not None), max_history_turns)
    return Slot(
        session_id,
        issued_at,
        state.generation,
        _new_slot_number(now),
        state.turns,
        tuple(known.turn for known in reversed(earlier[:keep])),
        owner=owner_of(session_id),
        conversation=conversation_of(session_id),
        replaces=replaces,
        title=state.title,
        context=state.context,
        revision=state.revision,
        recent=state.recent,
    )


def _numbered(item: dict[str, Any]) -> NumberedTurn:
    expires_at = int(item["expires_at"]["N"]) if "expires_at" in item else _NEVER  # written before TTL
    return NumberedTurn(_slot_number(item["sk"]["S"]), expires_at, _turn(item))


def _new_slot_number(now: float) -> int:
    """A turn's slot: its start in microseconds and three random digits (sorts after every slot
    numbered before slots were times, which were small counts)."""
    return int(now * 1_000_000) * 1000 + secrets.randbelow(1000)


def _context(meta: dict[str, Any] | None) -> Context | None:
    """What META says Claude billed for the last whole turn, unless another turn was saved since that
    turn read META (then its history is not the billed turn's: `rev` moved past the one it made)."""
    if meta is None or "ctx" not in meta or meta.get("ctxr", {}).get("N") != str(_revision(meta)):
        return None
    return Context(int(meta["ctx"]["N"]), meta["ctxfp"]["S"], int(meta["ctxn"]["N"]))


def _revision(meta: dict[str, Any] | None) -> int:
    return int(meta["rev"]["N"]) if meta is not None and "rev" in meta else 0


def _slot_number(sk: str) -> int:
    return int(sk.rsplit("#", 1)[1])


def _pk(session_id: str) -> str:
    return f"S#{session_id}"


def partition_id(owner: str, conversation: str) -> str:
    """The partition of a caller's conversation: the owner's own for the default one, else owner#id.

    Neither an owner (a token_urlsafe id, or "u:" and hex) nor a conversation id holds "#".
    """
    return owner if conversation == DEFAULT_CONVERSATION else f"{owner}#{conversation}"


def owner_of(session_id: str) -> str:
    return session_id.partition("#")[0]


def conversation_of(session_id: str) -> str:
    return session_id.partition("#")[2] or DEFAULT_CONVERSATION


_UNTITLED = "New chat"
# A save lands in its own generation, and never moves `updated_at` back (see _count_turn).
_SAVE_CONDITION = "gen = :gen AND (attribute_not_exists(updated_at) OR updated_at <= :now)"


def _title(meta: dict[str, Any]) -> str:
    """The caller's title if they gave one, else the automatic one."""
    for name in ("title", "auto_title"):
        if name in meta:
            return str(meta[name]["S"])
    return _UNTITLED


def _summary(meta: dict[str, Any]) -> ConversationSummary:
    return ConversationSummary(
        id=conversation_of(meta["pk"]["S"].removeprefix("S#")),  # what `cid` repeats, for the index's readers
        title=_title(meta),
        turns=int(meta.get("turns", {"N": "0"})["N"]),
        updated_at=int(meta["updated_at"]["N"]),
        model=meta.get("model", {}).get("S"),
    )


def _turn_prefix(generation: int) -> str:
    return f"T#{generation:010d}#"


def _turn_sk(generation: int, number: int) -> str:
    return f"{_turn_prefix(generation)}{number:010d}"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _key_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


def _turn(item: dict[str, Any]) -> Turn:
    citations = json.loads(item["cit"]["S"]) if "cit" in item else []
    files = load(item["att"]["S"]) if "att" in item else ()
    return Turn(
        user=item["user"]["S"],
        assistant=item["assistant"]["S"],
        thinking=item.get("th", {}).get("S", ""),
        citations=tuple(citations),
        attachments=files,
    )


def _extras(turn: Turn) -> dict[str, Any]:
    """A turn item's thinking and citations, when it has them; the citations as many as fit
    CITATIONS_MAX_BYTES (settings.py counts that much into a turn item's size)."""
    extras: dict[str, Any] = {}
    if turn.thinking:
        extras["th"] = {"S": turn.thinking}
    kept: list[dict[str, Any]] = []
    size = 2
    for cited in turn.citations:
        size += len(json.dumps(cited, ensure_ascii=False).encode()) + 1
        if size > CITATIONS_MAX_BYTES:
            break
        kept.append(cited)
    if kept:
        extras["cit"] = {"S": json.dumps(kept, ensure_ascii=False, separators=(",", ":"))}
    return extras


# `{"role":"assistant","content":}` and the user's twin, with commas and spaces: an upper bound.
_MESSAGE_PAIR_OVERHEAD = 80
# `, "attachments": ` (the longest of a message's other fields' keys), with its comma and spaces.
_FIELD_OVERHEAD = 20


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of a conversation, oldest first; `older` is the turn number to read before, or None."""

    turns: tuple[Turn, ...]
    older: int | None


def _turn_number(item: dict[str, Any]) -> int:
    return int(item["sk"]["S"].rpartition("#")[2])


def _json_size(turn: Turn) -> int:
    """Bytes of a turn as two history messages in JSON, at worst (ASCII-escaped and spaced), with their
    keys: its thinking, citations and files as the messages carry them (a message without is without;
    a citation's non-ASCII text takes 6 or 12 bytes a character, not the 1 its stored JSON has)."""
    size = len(json.dumps(turn.user)) + len(json.dumps(turn.assistant)) + _MESSAGE_PAIR_OVERHEAD
    for field in (turn.thinking, list(turn.citations), [a.ref() for a in turn.attachments]):
        if field:
            size += len(json.dumps(field)) + _FIELD_OVERHEAD
    return size

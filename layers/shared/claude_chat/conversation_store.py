"""Session histories in DynamoDB, one item per turn.

Layout (table keys `pk`, `sk`; TTL attribute `expires_at`):

    pk = S#<session id>   sk = ~META                      gen, next, turns, expires_at (sliding)
    pk = S#<session id>   sk = T#<gen:010>#<slot:010>     user, assistant, expires_at (absolute)

Why this shape:
- `~META` sorts after every turn key and the numbers are zero-padded, so one
  descending Query reads META and the newest turns together.
- A turn takes its slot when it starts (`take_slot`: one atomic ADD on META's
  `next`), so concurrent turns never compete for a place and never retry
  against each other, and the history reads in the order the turns were sent,
  whichever finished first. A turn that fails leaves its slot empty: slot
  numbers may have gaps, and `turns` counts the saved ones.
- Saving is two single-item writes sent together (one round trip): the turn
  item, whose key no other turn holds, and META's `turns` count, conditional
  on the generation the slot was taken in. Neither can conflict with another
  turn's writes. No item ever grows, so talking longer never nears the 400 KB
  item limit.
- A reset bumps `gen` (creating META if the session has none yet), so every
  query of the new generation stops seeing the old turns at once, and every
  turn still in flight, a session's very first included, fails its save
  condition and deletes what it wrote. The reset deletes the old generation's
  items before it answers.
- Turn items expire at the session's absolute deadline (issue time + max age),
  which is never before the sliding expiry of META, so an active session never
  loses old turns to TTL; META's own `expires_at` is the sliding idle timeout.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_META = "~META"  # sorts after every "T#..." key: see the module docstring
_BATCH_DELETE_SIZE = 25
_TTL_GRACE_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class Turn:
    user: str
    assistant: str


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What META says of a session; `stored` is False for a session with no META yet."""

    session_id: str
    issued_at: int
    generation: int = 0
    turns: int = 0
    expires_at: int | None = None
    stored: bool = False


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


class ConversationStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        ttl_seconds: int,
        max_age_seconds: int,
        pool: Executor,
    ) -> None:
        self._db = client
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
        if not items or items[0]["sk"]["S"] != _META:
            return SessionRecord(session_id, issued_at)
        meta = items[0]
        return SessionRecord(
            session_id,
            issued_at,
            generation=int(meta["gen"]["N"]),
            turns=int(meta.get("turns", {"N": "0"})["N"]),
            expires_at=int(meta["expires_at"]["N"]),
            stored=True,
        )

    def is_alive(self, record: SessionRecord, now: float) -> bool:
        """Sliding expiry: META's deadline, or for a session with no META yet, its issue time."""
        if record.expires_at is not None:
            return now < record.expires_at
        return now < record.issued_at + self._ttl

    def take_slot(
        self,
        session_id: str,
        issued_at: int,
        max_history_turns: int,
        now: float | None = None,
        *,
        lasting: bool = False,
    ) -> Slot | None:
        """The next slot of a live session, with the history to send: one round trip.

        The slot (an atomic ADD on META, which also slides the idle expiry) and the
        Query of the newest turns run side by side. None when the session has expired.
        A `lasting` session (a signed-in user's, named by the user, not a token) never
        expires while used: its idle expiry slides by the maximum age instead.
        """
        now = time.time() if now is None else now
        newest = self._pool.submit(self._newest_items, session_id, max_history_turns)
        values = {
            ":one": {"N": "1"},
            ":zero": {"N": "0"},
            ":fresh": {"N": str(_fresh_generation(now))},
            ":exp": {"N": str(self._sliding_deadline(issued_at, now, lasting=lasting))},
        }
        request: dict[str, Any] = {}
        if not lasting:
            request["ConditionExpression"] = "expires_at > :now"
            if now < issued_at + self._ttl:  # a fresh session's first turn
                request["ConditionExpression"] = "attribute_not_exists(pk) OR expires_at > :now"
            values[":now"] = {"N": str(int(now))}
        try:
            meta = self._db.update_item(
                TableName=self._table,
                Key=_key(_pk(session_id), _META),
                UpdateExpression="ADD #next :one SET gen = if_not_exists(gen, :fresh), "
                "turns = if_not_exists(turns, :zero), expires_at = :exp",
                ExpressionAttributeNames={"#next": "next"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                **request,
            )["Attributes"]
        except ClientError as error:
            _wait_quietly(newest)
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return None
        generation, number, turns = (int(meta[name]["N"]) for name in ("gen", "next", "turns"))
        if number <= turns:
            number = self._skip_unslotted_turns(session_id, turns)
        prefix = _turn_prefix(generation)
        earlier = [
            item
            for item in newest.result()
            if item["sk"]["S"].startswith(prefix) and _slot_number(item["sk"]["S"]) < number
        ]
        keep = turns_to_send(turns, max_history_turns)
        history = tuple(_turn(item) for item in reversed(earlier[:keep]))
        return Slot(session_id, issued_at, generation, number, turns, history, lasting)

    def save_turn(self, slot: Slot, turn: Turn, now: float | None = None) -> int:
        """Saves a finished turn in its slot; returns the session's count of saved turns.

        The item and the count are written side by side. If a reset won meanwhile,
        the count's condition fails and the item is deleted again: the user asked to
        forget this conversation, so the turn must not reappear (the count returned
        is then the new conversation's).
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
        }
        put = self._pool.submit(
            self._db.put_item,
            TableName=self._table,
            Item=item,
            ConditionExpression="attribute_not_exists(sk)",
        )
        try:
            counted = self._db.update_item(
                TableName=self._table,
                Key=_key(pk, _META),
                UpdateExpression="ADD turns :one SET expires_at = :exp",
                ConditionExpression="gen = :gen",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":gen": {"N": str(slot.generation)},
                    ":exp": {"N": str(self._sliding_deadline(slot.issued_at, now, lasting=slot.lasting))},
                },
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as error:
            _wait_quietly(put)
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            self._db.delete_item(TableName=self._table, Key=key)  # a reset won: forget this turn too
            current: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
            return int(current.get("turns", {"N": "0"})["N"])
        try:
            put.result()
        except Exception:
            # The count went up for an item that is not there: take it back, then fail the turn.
            self._db.update_item(
                TableName=self._table,
                Key=_key(pk, _META),
                UpdateExpression="ADD turns :minus",
                ExpressionAttributeValues={":minus": {"N": "-1"}},
            )
            raise
        return int(counted["turns"]["N"])

    def all_turns(self, record: SessionRecord) -> list[Turn]:
        if not record.stored:
            return []
        return [_turn(item) for item in self._query_generation(record, projection=None)]

    def touch(self, record: SessionRecord, now: float | None = None, *, lasting: bool = False) -> None:
        """Slides the idle expiry of a session that is read but not written."""
        if not record.stored:
            return
        now = time.time() if now is None else now
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(_pk(record.session_id), _META),
                UpdateExpression="SET expires_at = :exp",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={
                    ":exp": {"N": str(self._sliding_deadline(record.issued_at, now, lasting=lasting))}
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def reset(self, record: SessionRecord, now: float | None = None, *, lasting: bool = False) -> None:
        """Forgets the history: one write hides it and dooms every turn in flight, then its items go.

        It bumps the generation even for a session with no META yet (its first turn
        may be in flight), and deletes the old generation's items before answering.
        """
        now = time.time() if now is None else now
        old = self._db.update_item(
            TableName=self._table,
            Key=_key(_pk(record.session_id), _META),
            UpdateExpression="SET gen = if_not_exists(gen, :before_first) + :one, "
            "turns = :zero, expires_at = :exp",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":zero": {"N": "0"},
                ":before_first": {"N": str(_fresh_generation(now) - 1)},
                ":exp": {"N": str(self._sliding_deadline(record.issued_at, now, lasting=lasting))},
            },
            ReturnValues="UPDATED_OLD",
        ).get("Attributes", {})
        if "gen" not in old:
            return
        stale = SessionRecord(record.session_id, record.issued_at, int(old["gen"]["N"]), stored=True)
        self._delete_items([_key_of(item) for item in self._query_generation(stale, projection="pk, sk")])

    def _newest_items(self, session_id: str, limit: int) -> list[dict[str, Any]]:
        """The newest turn items of any generation, newest first (META left out)."""
        if limit <= 0:
            return []
        items = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk < :meta",
            ExpressionAttributeValues={":pk": {"S": _pk(session_id)}, ":meta": {"S": _META}},
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )["Items"]
        return list(items)

    def _skip_unslotted_turns(self, session_id: str, turns: int) -> int:
        """META written before slots existed numbers its turns 1..turns: the next slot goes past them."""
        attributes = self._db.update_item(
            TableName=self._table,
            Key=_key(_pk(session_id), _META),
            UpdateExpression="ADD #next :gap",
            ExpressionAttributeNames={"#next": "next"},
            ExpressionAttributeValues={":gap": {"N": str(turns)}},
            ReturnValues="UPDATED_NEW",
        )["Attributes"]
        return int(attributes["next"]["N"])

    def _sliding_deadline(self, issued_at: int, now: float, *, lasting: bool = False) -> int:
        if lasting:
            return math.ceil(now) + self._max_age
        return min(math.ceil(now) + self._ttl, issued_at + self._max_age)

    def _absolute_deadline(self, issued_at: int) -> int:
        return issued_at + self._max_age + _TTL_GRACE_SECONDS

    def _generation_query(self, record: SessionRecord) -> dict[str, Any]:
        """A Query for the turns of the session's current generation, read consistently."""
        return {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": _pk(record.session_id)},
                ":prefix": {"S": _turn_prefix(record.generation)},
            },
            "ConsistentRead": True,
        }

    def _query_generation(self, record: SessionRecord, projection: str | None) -> Iterator[dict[str, Any]]:
        request = self._generation_query(record)
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
        request = self._generation_query(record)
        if before is not None:
            request["ExclusiveStartKey"] = _key(_pk(record.session_id), _turn_sk(record.generation, before))
        newest_first: list[tuple[int, Turn]] = []
        size = 0
        while True:
            items = self._db.query(**request, ScanIndexForward=False, Limit=limit + 1 - len(newest_first))
            for item in items["Items"]:
                turn, cost = _turn(item), _json_size(item)
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


def _wait_quietly(future: Future[Any]) -> None:
    with contextlib.suppress(Exception):
        future.result()


def _slot_number(sk: str) -> int:
    return int(sk.rsplit("#", 1)[1])


def _pk(session_id: str) -> str:
    return f"S#{session_id}"


def _turn_prefix(generation: int) -> str:
    return f"T#{generation:010d}#"


def _turn_sk(generation: int, number: int) -> str:
    return f"{_turn_prefix(generation)}{number:010d}"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _key_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


def _turn(item: dict[str, Any]) -> Turn:
    return Turn(user=item["user"]["S"], assistant=item["assistant"]["S"])


# `{"role":"assistant","content":}` and the user's twin, with commas and spaces: an upper bound.
_MESSAGE_PAIR_OVERHEAD = 80


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of a conversation, oldest first; `older` is the turn number to read before, or None."""

    turns: tuple[Turn, ...]
    older: int | None


def _turn_number(item: dict[str, Any]) -> int:
    return int(item["sk"]["S"].rpartition("#")[2])


def _json_size(item: dict[str, Any]) -> int:
    """Bytes of a turn as two history messages in JSON, at worst (ASCII-escaped), with their keys."""
    return (
        len(json.dumps(item["user"]["S"])) + len(json.dumps(item["assistant"]["S"])) + _MESSAGE_PAIR_OVERHEAD
    )

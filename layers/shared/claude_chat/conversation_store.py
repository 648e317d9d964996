"""Session histories in DynamoDB, one item per completed turn.

Layout (table keys `pk`, `sk`; TTL attribute `expires_at`):

    pk = S#<session id>   sk = ~META                      turns, gen, expires_at (sliding)
    pk = S#<session id>   sk = T#<gen:010>#<turn:010>     user, assistant, expires_at (absolute)

Why this shape:
- `~META` sorts after every turn key and the numbers are zero-padded, so one
  descending Query reads META and the newest turns together: opening a session
  with the history a turn needs is a single round trip.
- A turn writes one small item plus the META counter, whatever the length of
  the conversation, and no item ever grows, so the 400 KB item limit cannot be
  reached by talking longer.
- The turn item and the META update go in one transaction, conditional on the
  turn count read before: a failed turn writes nothing, and two concurrent
  turns cannot take the same slot. The loser re-reads the count and retries,
  so no message is lost.
- A reset bumps `gen`, so the old turns drop out of every query at once; they
  are then deleted in the background of the same request.
- Turn items expire at the session's absolute deadline (issue time + max age),
  which is never before the sliding expiry of META, so an active session never
  loses old turns to TTL; META's own `expires_at` is the sliding idle timeout.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_META = "~META"  # sorts after every "T#..." key: see the module docstring
_MAX_APPEND_ATTEMPTS = 8
_BATCH_DELETE_SIZE = 25
_TTL_GRACE_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class Turn:
    user: str
    assistant: str


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What META says of a session; `stored` is False for a session with no completed turn yet."""

    session_id: str
    issued_at: int
    generation: int = 0
    turns: int = 0
    expires_at: int | None = None
    stored: bool = False
    newest: tuple[Turn, ...] = ()  # the newest turns, read with META when asked for; oldest first


class ConversationStore:
    def __init__(
        self, client: DynamoDBClient, table_name: str, ttl_seconds: int, max_age_seconds: int
    ) -> None:
        self._db = client
        self._table = table_name
        self._ttl = ttl_seconds
        self._max_age = max_age_seconds

    def load(self, session_id: str, issued_at: int, newest_turns: int = 0) -> SessionRecord:
        """META, and up to `newest_turns` of the newest turns with it, in one consistent Query."""
        items = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": _pk(session_id)}},
            ScanIndexForward=False,
            Limit=1 + max(0, newest_turns),
            ConsistentRead=True,
        )["Items"]
        if not items or items[0]["sk"]["S"] != _META:
            return SessionRecord(session_id, issued_at)
        meta = items[0]
        generation = int(meta["gen"]["N"])
        prefix = _turn_prefix(generation)
        # Turns of an older generation (a reset whose deletes were cut short) are not this conversation's.
        newest = [_turn(item) for item in items[1:] if item["sk"]["S"].startswith(prefix)]
        return SessionRecord(
            session_id,
            issued_at,
            generation=generation,
            turns=int(meta["turns"]["N"]),
            expires_at=int(meta["expires_at"]["N"]),
            stored=True,
            newest=tuple(reversed(newest)),
        )

    def is_alive(self, record: SessionRecord, now: float) -> bool:
        """Sliding expiry: META's deadline, or for a session with no turn yet, its issue time."""
        if record.expires_at is not None:
            return now < record.expires_at
        return now < record.issued_at + self._ttl

    def recent_turns(self, record: SessionRecord, limit: int) -> list[Turn]:
        """The newest `limit` turns: those read with META when there are enough, else one Query."""
        if not record.stored or limit <= 0:
            return []
        if limit <= len(record.newest):
            return list(record.newest[len(record.newest) - limit :])
        items = self._db.query(**self._generation_query(record), ScanIndexForward=False, Limit=limit)["Items"]
        return [_turn(item) for item in reversed(items)]

    def all_turns(self, record: SessionRecord) -> list[Turn]:
        if not record.stored:
            return []
        return [_turn(item) for item in self._query_generation(record, projection=None)]

    def append_turn(self, record: SessionRecord, turn: Turn, now: float | None = None) -> int:
        """Saves a completed turn atomically; returns the session's turn count including it.

        A turn that loses a race to another turn takes the slot after it. A turn
        that loses to a reset is dropped with the conversation it answered: the
        user asked to forget it, so it must not reappear as the new chat's first turn.
        """
        now = time.time() if now is None else now
        pk = _pk(record.session_id)
        generation = record.generation
        for _ in range(_MAX_APPEND_ATTEMPTS):
            if record.generation != generation:
                return record.turns
            number = record.turns + 1
            try:
                self._db.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": {
                                    **_key(pk, _turn_sk(record.generation, number)),
                                    "user": {"S": turn.user},
                                    "assistant": {"S": turn.assistant},
                                    "created_at": {"N": str(int(now))},
                                    "expires_at": {"N": str(self._absolute_deadline(record))},
                                },
                                "ConditionExpression": "attribute_not_exists(sk)",
                            }
                        },
                        {"Update": self._meta_update(record, number, now)},  # type: ignore[typeddict-item]
                    ]
                )
            except ClientError as error:
                if not _lost_a_race(error):
                    raise
                # Another turn or a reset landed first: look again.
                time.sleep(random.uniform(0, 0.02))  # noqa: S311 - jitter, not crypto
                record = self.load(record.session_id, record.issued_at)
                continue
            return number
        raise RuntimeError("too much contention on one session to save the turn")

    def touch(self, record: SessionRecord, now: float | None = None) -> None:
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
                ExpressionAttributeValues={":exp": {"N": str(self._sliding_deadline(record, now))}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def reset(self, record: SessionRecord, now: float | None = None) -> None:
        """Forgets the history: one write hides it at once, then its items are deleted."""
        if not record.stored:
            return
        now = time.time() if now is None else now
        try:
            old = self._db.update_item(
                TableName=self._table,
                Key=_key(_pk(record.session_id), _META),
                UpdateExpression="SET gen = gen + :one, turns = :zero, expires_at = :exp",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":zero": {"N": "0"},
                    ":exp": {"N": str(self._sliding_deadline(record, now))},
                },
                ReturnValues="UPDATED_OLD",
            )["Attributes"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return
            raise
        stale = SessionRecord(record.session_id, record.issued_at, int(old["gen"]["N"]), stored=True)
        self._delete_items([_key_of(item) for item in self._query_generation(stale, projection="pk, sk")])

    def _meta_update(self, record: SessionRecord, number: int, now: float) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":turns": {"N": str(number)},
            ":gen": {"N": str(record.generation)},
            ":exp": {"N": str(self._sliding_deadline(record, now))},
        }
        if record.stored:
            condition = "gen = :gen AND turns = :prev"
            values[":prev"] = {"N": str(record.turns)}
        else:
            condition = "attribute_not_exists(pk)"
        return {
            "TableName": self._table,
            "Key": _key(_pk(record.session_id), _META),
            "UpdateExpression": "SET turns = :turns, gen = :gen, expires_at = :exp",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }

    def _sliding_deadline(self, record: SessionRecord, now: float) -> int:
        return min(math.ceil(now) + self._ttl, record.issued_at + self._max_age)

    def _absolute_deadline(self, record: SessionRecord) -> int:
        return record.issued_at + self._max_age + _TTL_GRACE_SECONDS

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


def _lost_a_race(error: ClientError) -> bool:
    """True when a transaction was cancelled only by a condition or a concurrent write."""
    if error.response["Error"]["Code"] != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons", [])
    codes = {reason.get("Code", "None") for reason in reasons}
    return not reasons or codes <= {"None", "ConditionalCheckFailed", "TransactionConflict"}


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

"""Stop requests: how a page tells a streaming turn in AWS that its reader is gone.

Lambda tells a streaming function nothing when its client leaves (the Web
Adapter has no disconnect path), so a reply nobody reads would run, and bill,
to its end. Each streamed turn has an unguessable id, sent to its client only
(the `X-Turn-Id` header); `POST /api/chat/stop` with that id writes one small
item, and the turn, which looks for it about once a second while it streams
(one strongly consistent GetItem), stops Claude and keeps what was sent.

Items: pk = SP#<turn id>, sk = STOP, expiring by TTL after a quarter of an hour.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import TYPE_CHECKING, TypeGuard

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_TURN_ID_BYTES = 16  # 128 random bits
_TURN_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_KEEP_SECONDS = 900


def new_turn_id() -> str:
    return secrets.token_urlsafe(_TURN_ID_BYTES)


def is_turn_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _TURN_ID.fullmatch(value) is not None


class StopRequests:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def request(self, turn_id: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._db.put_item(
            TableName=self._table,
            Item={**_key(turn_id), "expires_at": {"N": str(int(now) + _KEEP_SECONDS)}},
        )

    def requested(self, turn_id: str) -> bool:
        item = self._db.get_item(
            TableName=self._table, Key=_key(turn_id), ProjectionExpression="pk", ConsistentRead=True
        )
        return "Item" in item


def _key(turn_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"SP#{turn_id}"}, "sk": {"S": "STOP"}}

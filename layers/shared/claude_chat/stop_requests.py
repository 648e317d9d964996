"""Stop requests: how a page tells a streaming turn in AWS that its reader is gone.

Lambda tells a streaming function nothing when its client leaves (the Web
Adapter has no disconnect path), so a reply nobody reads would run, and bill,
to its end. Each turn has an id, sent to its client only (the `X-Turn-Id`
header); `POST /api/chat/stop` with that id writes one small item, and the
turn, which looks for it about once a second while it streams (one strongly
consistent GetItem), stops Claude and keeps what was sent.

A turn id is 128 random bits and an HMAC of them under the session-signing
key, so a stop request for an id the server never issued is refused before it
costs a write: the route is free of the rate limit, yet cannot be used to
fill the table. A signed-in user's turn ids are signed for that user, so no
other user can stop their replies even with a leaked id (an anonymous
caller's are not bound: its address may change mid-reply).

Items: pk = SP#<turn id>, sk = STOP, expiring by TTL after a quarter of an hour.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from typing import TYPE_CHECKING, TypeGuard

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_NONCE_BYTES = 16  # 128 random bits
_MAC_BYTES = 16
_TURN_ID = re.compile(r"([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})")
_KEEP_SECONDS = 900


class TurnIds:
    def __init__(self, signing_key: str) -> None:
        self._key = hashlib.sha256(b"claude-chat.turn-id:" + signing_key.encode()).digest()

    def issue(self, owner: str = "") -> str:
        """A new turn id; `owner` (a signed-in user's client key) binds it to them."""
        nonce = secrets.token_urlsafe(_NONCE_BYTES)
        return f"{nonce}.{self._mac(nonce, owner)}"

    def genuine(self, value: object, owner: str = "") -> TypeGuard[str]:
        """True for an id this deployment issued to `owner` (whatever its age)."""
        if not isinstance(value, str) or (match := _TURN_ID.fullmatch(value)) is None:
            return False
        return hmac.compare_digest(match[2], self._mac(match[1], owner))

    def _mac(self, nonce: str, owner: str) -> str:
        message = f"{nonce}\n{owner}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


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

"""Per-client-key fixed-window request limit: one conditional counter update per request.

The counter for (client key, window) is incremented only while it is below the
limit, so DynamoDB's per-item atomicity makes the limit exact under any
concurrency: N simultaneous requests with R left admit min(N, R). The update is
one action of a turn's admission transaction (claude_chat.admission), so a
request that any budget refuses does not count against its window either.
Counters expire by TTL shortly after their window ends.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

POLICY_NAME = "chat"
_COUNTER_TTL_GRACE_SECONDS = 60
_SPENT_WINDOWS_KEPT = 4096  # client keys whose window this container saw spent (a few dozen bytes each)


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    window_seconds: int
    reset_after: int

    def headers(self) -> dict[str, str]:
        """IETF draft-10 fields, plus express-rate-limit's standard ones for clients of the seed guide."""
        return {
            "RateLimit-Policy": f'"{POLICY_NAME}";q={self.limit};w={self.window_seconds}',
            "RateLimit": f'"{POLICY_NAME}";r={self.remaining};t={self.reset_after}',
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }


class RateLimiter:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        limit: int,
        window_seconds: int,
    ) -> None:
        self._db = client
        self._table = table_name
        self._limit = limit
        self._window = window_seconds
        # Windows this container saw refuse a request: a window only fills up, so until it ends every
        # further request of that key is refused here, without touching DynamoDB (a flood from one key
        # then costs no write, and holds no counter other callers' transactions would conflict with).
        self._spent: OrderedDict[str, int] = OrderedDict()
        self._spent_lock = threading.Lock()

    def known_spent(self, client_key: str, now: float) -> bool:
        """Whether this container saw the key's current window spent."""
        with self._spent_lock:
            return self._spent.get(client_key) == self._window_start(now)

    def saw_spent(self, client_key: str, now: float) -> None:
        with self._spent_lock:
            self._spent[client_key] = self._window_start(now)
            self._spent.move_to_end(client_key)
            while len(self._spent) > _SPENT_WINDOWS_KEPT:
                self._spent.popitem(last=False)

    def draw(self, client_key: str, now: float) -> dict[str, Any]:
        """The conditional update that takes one request from the caller's window (without TableName):
        one action of the turn's admission transaction (claude_chat.admission)."""
        window_start = self._window_start(now)
        return {
            "Key": self._key(client_key, window_start),
            "UpdateExpression": "ADD hits :one SET expires_at = :exp",
            "ConditionExpression": "attribute_not_exists(hits) OR hits < :limit",
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":limit": {"N": str(self._limit)},
                ":exp": {"N": str(window_start + self._window + _COUNTER_TTL_GRACE_SECONDS)},
            },
        }

    def spent(self, now: float) -> RateLimitDecision:
        """The decision for a request its window refused: nothing left until the window ends."""
        return RateLimitDecision(False, self._limit, 0, self._window, self._reset_after(now))

    def peek(self, client_key: str, now: float | None = None) -> RateLimitDecision:
        """The caller's window as it stands, without drawing on it (GET /api/usage is free)."""
        now = time.time() if now is None else now
        item = self._db.get_item(
            TableName=self._table,
            Key=self._key(client_key, self._window_start(now)),
            ProjectionExpression="hits",
            ConsistentRead=True,
        ).get("Item")
        hits = int(item["hits"]["N"]) if item else 0
        remaining = max(0, self._limit - hits)
        return RateLimitDecision(remaining > 0, self._limit, remaining, self._window, self._reset_after(now))

    def _window_start(self, now: float) -> int:
        return int(now // self._window) * self._window

    def _reset_after(self, now: float) -> int:
        return max(1, math.ceil(self._window_start(now) + self._window - now))

    @staticmethod
    def _key(client_key: str, window_start: int) -> dict[str, Any]:
        return {"pk": {"S": f"RL#{client_key}"}, "sk": {"S": f"W#{window_start}"}}

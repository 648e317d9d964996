"""Per-IP fixed-window rate limit: one conditional DynamoDB update per request.

The counter for (ip, window) is incremented only while it is below the limit,
in a single UpdateItem, so DynamoDB's per-item atomicity makes the limit exact
under any concurrency: N simultaneous requests with R left admit min(N, R).
Counters expire by TTL shortly after their window ends.

The caller's daily token budget (claude_chat.token_budget) is read at the same
time. Both run on background threads from the moment a request arrives
(`begin`), while the handler reads the body and opens the session, and the
turn waits for them only just before calling Claude: the whole check costs no
round trip of its own on the critical path.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from claude_chat.errors import RateLimited
from claude_chat.observability import record_rate_limited
from claude_chat.token_budget import TokenBudget, TokenBudgetState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

POLICY_NAME = "chat"
_COUNTER_TTL_GRACE_SECONDS = 60


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


class Admission:
    """A budget check under way for `client_ip`. `wait()` gives the rate-limit headers or raises RateLimited.

    The turn it admits charges its tokens to the same `client_ip`.
    """

    def __init__(
        self,
        client_ip: str,
        requests: Future[RateLimitDecision],
        tokens: Future[TokenBudgetState] | None,
    ) -> None:
        self.client_ip = client_ip
        self._requests = requests
        self._tokens = tokens
        self._outcome: dict[str, str] | RateLimited | None = None

    def wait(self) -> dict[str, str]:
        if self._outcome is None:
            self._outcome = self._decide()
        if isinstance(self._outcome, RateLimited):
            raise self._outcome
        return self._outcome

    def _decide(self) -> dict[str, str] | RateLimited:
        decision = self._requests.result()
        headers = decision.headers()
        if not decision.allowed:
            record_rate_limited("requests")
            return RateLimited(decision.reset_after, headers, limit="requests")
        if self._tokens is not None and (today := self._tokens.result()).spent:
            record_rate_limited("tokens")
            return RateLimited(today.reset_after, headers, limit="tokens")
        return headers


class RateLimiter:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        limit: int,
        window_seconds: int,
        token_budget: TokenBudget | None = None,
    ) -> None:
        self._db = client
        self._table = table_name
        self._limit = limit
        self._window = window_seconds
        self._token_budget = token_budget
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="budget")

    def begin(self, client_ip: str) -> Admission:
        """Starts drawing one request from the caller's budgets; the answer waits in the Admission."""
        tokens = self._workers.submit(self._token_budget.state, client_ip) if self._token_budget else None
        return Admission(client_ip, self._workers.submit(self.consume, client_ip), tokens)

    def admit(self, client_ip: str) -> dict[str, str]:
        """Draws one request from the caller's budgets at once: its headers, or RateLimited (429)."""
        return self.begin(client_ip).wait()

    def consume(self, client_ip: str, now: float | None = None) -> RateLimitDecision:
        now = time.time() if now is None else now
        window_start = int(now // self._window) * self._window
        window_end = window_start + self._window
        reset_after = max(1, math.ceil(window_end - now))
        try:
            attributes = self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"RL#{client_ip}"}, "sk": {"S": f"W#{window_start}"}},
                UpdateExpression="ADD hits :one SET expires_at = :exp",
                ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(self._limit)},
                    ":exp": {"N": str(window_end + _COUNTER_TTL_GRACE_SECONDS)},
                },
                ReturnValues="UPDATED_NEW",
            )["Attributes"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return RateLimitDecision(False, self._limit, 0, self._window, reset_after)
        hits = int(attributes["hits"]["N"])
        return RateLimitDecision(True, self._limit, max(0, self._limit - hits), self._window, reset_after)

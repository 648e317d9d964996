"""Daily token budgets: each client key's, and the whole deployment's.

Requests are cheap to count and a poor measure of cost: one turn with a long
history can cost a hundred short ones. So each client key (claude_chat.client_key)
has a budget of tokens per UTC day (input, cache writes, cache reads and output:
everything Claude processes), and all callers together have a global one, so no
crowd of addresses can run up an unbounded bill.

A turn reserves what it can cost before Claude is called (its input is known,
its output is at most MAX_TOKENS: ClaudeClient.most_tokens) and is admitted
only if that fits both budgets; when it ends, however it ends, the reservation
is settled to the real usage. Each step is one conditional ADD on one counter,
which DynamoDB applies atomically, so parallel turns cannot overspend a budget:
every admitted turn's worst case fitted when it was admitted.

Counters live in the rate-limit counters' table, `TB#<client key>` and `GB#all`
with sort key `D#<day>`, and expire by TTL a day after their day ends. The
global counter is one item: DynamoDB takes about 1,000 writes a second on one
item, two per turn, far above what a chat sees.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from claude_chat.errors import ApiError, BudgetExhausted, RateLimited
from claude_chat.models import Usage
from claude_chat.observability import record_rate_limited

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

DAY_SECONDS = 86_400
GLOBAL_KEY = "GB#all"


def billed_tokens(usage: Usage) -> int:
    """Every token Claude processed for a turn: what the budgets count."""
    return (
        usage.input_tokens
        + usage.cache_creation_input_tokens
        + usage.cache_read_input_tokens
        + usage.output_tokens
    )


@dataclass(frozen=True, slots=True)
class TokenBudgetState:
    used: int
    budget: int
    reset_after: int  # seconds until the UTC day ends

    @property
    def remaining(self) -> int:
        return max(0, self.budget - self.used)


@dataclass
class Reservation:
    """Tokens set aside for one turn on each counter that has a budget; settled once, when it ends."""

    budgets: TokenBudgets | None
    tokens: int
    counters: list[dict[str, Any]] = field(default_factory=list)
    _settled: bool = False

    def settle(self, usage: Usage) -> None:
        """Replaces the reservation by the real usage (a second call does nothing)."""
        if self._settled or self.budgets is None:
            return
        self.budgets.adjust(self.counters, billed_tokens(usage) - self.tokens)
        self._settled = True


class TokenBudgets:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        per_key: int,
        global_daily: int,
        pool: Executor,
    ) -> None:
        self._db = client
        self._table = table_name
        self.per_key = per_key  # 0: off
        self.global_daily = global_daily  # 0: off
        self._pool = pool

    def reserve(
        self, client_key: str, tokens: int, now: float | None = None, *, per_key: int | None = None
    ) -> Reservation:
        """Sets `tokens` aside on the caller's and the global counter, or refuses the turn.

        `per_key`: the caller's own daily budget when it is not the default (a group's quota).

        Raises RateLimited (429, limit "tokens") when the caller's budget cannot take
        them, BudgetExhausted (503) when the global one cannot; nothing stays reserved then.
        """
        now = time.time() if now is None else now
        wanted = [
            (self._key(f"TB#{client_key}", now), self.per_key if per_key is None else per_key, RateLimited),
            (self._key(GLOBAL_KEY, now), self.global_daily, BudgetExhausted),
        ]
        wanted = [entry for entry in wanted if entry[1] > 0]
        reservation = Reservation(self, tokens)
        if not wanted:
            return reservation
        futures = [
            (key, refusal, self._pool.submit(self._take, key, tokens, budget, now))
            for key, budget, refusal in wanted
        ]
        refused: Exception | None = None
        for key, refusal, future in futures:
            try:
                if future.result():
                    reservation.counters.append(key)
                    continue
                failure: Exception = _refusal(refusal, now)
            except Exception as error:  # a throttle or a timeout: the turn cannot run either
                failure = error
            if refused is None or isinstance(refused, RateLimited):
                refused = failure
        if refused is not None:
            self.adjust(reservation.counters, -tokens)  # give back what the other counter took
            raise refused
        return reservation

    def adjust(self, counters: list[dict[str, Any]], tokens: int) -> None:
        """Adds `tokens` (may be negative) to each counter, in parallel."""
        if not counters or tokens == 0:
            return
        for future in [self._pool.submit(self._add, key, tokens) for key in counters]:
            future.result()

    def state(
        self, client_key: str, now: float | None = None, *, per_key: int | None = None
    ) -> TokenBudgetState:
        """The caller's use today, read consistently (`per_key`: their budget, when not the default)."""
        now = time.time() if now is None else now
        item = self._db.get_item(
            TableName=self._table,
            Key=self._key(f"TB#{client_key}", now),
            ProjectionExpression="used",
            ConsistentRead=True,
        ).get("Item")
        used = int(item["used"]["N"]) if item else 0
        return TokenBudgetState(used, self.per_key if per_key is None else per_key, until_day_ends(now))

    def _take(self, key: dict[str, Any], tokens: int, budget: int, now: float) -> bool:
        room = budget - tokens
        if room < 0:
            return False
        try:
            self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="ADD used :tokens SET expires_at = :exp",
                ConditionExpression="attribute_not_exists(used) OR used <= :room",
                ExpressionAttributeValues={
                    ":tokens": {"N": str(tokens)},
                    ":room": {"N": str(room)},
                    ":exp": {"N": str(_day_ends(now) + DAY_SECONDS)},
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _add(self, key: dict[str, Any], tokens: int) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=key,
            UpdateExpression="ADD used :tokens",
            ExpressionAttributeValues={":tokens": {"N": str(tokens)}},
        )

    @staticmethod
    def _key(pk: str, now: float) -> dict[str, Any]:
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        return {"pk": {"S": pk}, "sk": {"S": f"D#{day}"}}


def _refusal(kind: type[ApiError], now: float) -> ApiError:
    if kind is BudgetExhausted:
        record_rate_limited("global_tokens")
        return BudgetExhausted(until_day_ends(now))
    record_rate_limited("tokens")
    return RateLimited(until_day_ends(now), {}, limit="tokens")


def _day_ends(now: float) -> int:
    return int(now // DAY_SECONDS) * DAY_SECONDS + DAY_SECONDS


def until_day_ends(now: float) -> int:
    return max(1, int(DAY_SECONDS - now % DAY_SECONDS))

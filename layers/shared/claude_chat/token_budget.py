"""Per-IP daily token budget: what a caller's turns may cost, not just how many there are.

Requests are cheap to count and a poor measure of cost: one turn with a long
history can cost a hundred short ones. So each IP also has a budget of tokens
per UTC day (input, cache writes, cache reads and output: everything Claude
processes). A turn is admitted while the day's total is below the budget, and
its real usage is added when it ends, with one atomic ADD, so the total is
exact under any concurrency. Turns already running when the budget runs out
finish: the overshoot is at most one turn per request in flight.

The counter lives in the rate-limit counters' table, keyed TB#<ip> / D#<day>,
and expires by TTL a day after its day ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from claude_chat.models import Usage

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

DAY_SECONDS = 86_400


def billed_tokens(usage: Usage) -> int:
    """Every token Claude processed for a turn: what the budget counts."""
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
    def spent(self) -> bool:
        return self.used >= self.budget


class TokenBudget:
    def __init__(self, client: DynamoDBClient, table_name: str, daily_tokens: int) -> None:
        self._db = client
        self._table = table_name
        self.daily_tokens = daily_tokens

    def state(self, client_ip: str, now: float | None = None) -> TokenBudgetState:
        """The caller's use today, read consistently so a charge just made is seen."""
        now = time.time() if now is None else now
        item = self._db.get_item(
            TableName=self._table,
            Key=self._key(client_ip, now),
            ProjectionExpression="used",
            ConsistentRead=True,
        ).get("Item")
        used = int(item["used"]["N"]) if item else 0
        return TokenBudgetState(used, self.daily_tokens, _until_day_ends(now))

    def charge(self, client_ip: str, tokens: int, now: float | None = None) -> int:
        """Adds a finished turn's tokens to the caller's day; returns the day's total."""
        now = time.time() if now is None else now
        day_ends = int(now // DAY_SECONDS) * DAY_SECONDS + DAY_SECONDS
        attributes = self._db.update_item(
            TableName=self._table,
            Key=self._key(client_ip, now),
            UpdateExpression="ADD used :tokens SET expires_at = :exp",
            ExpressionAttributeValues={
                ":tokens": {"N": str(max(0, tokens))},
                ":exp": {"N": str(day_ends + DAY_SECONDS)},
            },
            ReturnValues="UPDATED_NEW",
        )["Attributes"]
        return int(attributes["used"]["N"])

    @staticmethod
    def _key(client_ip: str, now: float) -> dict[str, dict[str, str]]:
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        return {"pk": {"S": f"TB#{client_ip}"}, "sk": {"S": f"D#{day}"}}


def _until_day_ends(now: float) -> int:
    return max(1, int(DAY_SECONDS - now % DAY_SECONDS))

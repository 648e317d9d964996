"""Admitting a turn: the request window and every budget, in one all-or-nothing DynamoDB write.

A turn may run only if it fits the caller's request window (RATE_LIMIT_MAX per
window), the caller's daily budgets (tokens and money), and the deployment's
global daily budgets. `Admission.admit` draws on all of them in one
TransactWriteItems: one conditional update per counter, plus whatever the
conversation's store asks to check in the same breath (claude_chat.sessions).
DynamoDB applies all of them or none, so

- a refused request holds no part of any budget at any moment, and writes
  nothing at all: a flood of refused requests changes nobody else's answer;
- parallel turns cannot overspend: each counter's condition leaves room for
  this turn's worst case, and DynamoDB applies them one at a time.

What the transaction reserves is the turn's worst case (claude_chat.pricing).
When the turn ends, however it ends, `Ticket.settle` replaces it by what the
turn really cost, with one plain ADD on each budget counter.

Counters (the table's `pk`, `sk`; TTL `expires_at`):

    RL#<client key>     W#<window start>   hits                 the request window
    TB#<client key>     D#<UTC day>        used (tokens), nusd   the caller's day
    GB#all[#<shard>]    D#<UTC day>        used (tokens), nusd   a share of the global day

The global budget is spread over `shards` counters so no item takes every
turn's writes (never more than a budget that is on has units, so each share is
at least one). Each counter may hold at most its share (the budget / shards),
so admitted worst cases never add up to more than the budget: the global cap
is never overshot by admission. A turn its shard cannot take reads every
shard and tries the one with the most room; it is refused (503) only when no
shard can take its worst case, so at most `shards` x (that worst case) of the
day goes unspent. `shard_count` picks as many shards as the budget holds fifty
worst cases of a one-message turn each, so that is a fiftieth of the budget for
such turns (more for turns with a long history); the README's DynamoDB design
gives the arithmetic. A key whose request window this container saw spent is
refused here until the window ends, with no call at all (claude_chat.rate_limiter).

A write that DynamoDB throttles, or that conflicts with another transaction on
the same counter, is retried on another shard; if it still fails the turn is
refused with 503 `busy` and `Retry-After`, never a 500.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from claude_chat.errors import ApiError, BudgetExhausted, Busy, RateLimited
from claude_chat.observability import record_rate_limited
from claude_chat.rate_limiter import RateLimiter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

DAY_SECONDS = 86_400
GLOBAL_KEY = "GB#all"
MAX_SHARDS = 256
TURNS_PER_SHARD = 50  # worst-case turns each global shard can hold (shard_count)
_ATTEMPTS = 3  # a transaction refused by a full shard or a conflict tries again on another shard
_THROTTLED = frozenset(
    {
        "ThrottlingError",
        "ThrottlingException",
        "ProvisionedThroughputExceeded",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflict",
        "TransactionConflictException",
        "TransactionInProgressException",
        "InternalServerError",
    }
)


@dataclass(frozen=True, slots=True)
class Charge:
    """Tokens and nano-dollars: a turn's worst case when reserved, its cost when settled."""

    tokens: int = 0
    nanos: int = 0

    def __sub__(self, other: Charge) -> Charge:
        return Charge(self.tokens - other.tokens, self.nanos - other.nanos)

    def __add__(self, other: Charge) -> Charge:
        return Charge(self.tokens + other.tokens, self.nanos + other.nanos)


@dataclass(frozen=True, slots=True)
class Limits:
    """Budgets per UTC day (0: off) for one dimension pair: tokens and nano-dollars."""

    tokens: int = 0
    nanos: int = 0

    @property
    def on(self) -> bool:
        return self.tokens > 0 or self.nanos > 0


@dataclass(frozen=True, slots=True)
class Check:
    """A write of the caller's own (a conversation's record) that must hold for the turn to run.

    `item` is one TransactWriteItems action ({"Update": ...} or {"ConditionCheck": ...}) without
    TableName; if its condition fails, `admit` raises `Conflict` carrying this check and the item
    as it was, and nothing of the transaction is written.
    """

    name: str
    item: dict[str, Any]


class Conflict(Exception):
    """A Check's condition failed: `current` is the item as it was (None if it did not exist)."""

    def __init__(self, check: Check, current: dict[str, Any] | None) -> None:
        super().__init__(check.name)
        self.check = check
        self.current = current


@dataclass
class Ticket:
    """An admitted turn's reservation: `settle` it once, when the turn ends."""

    admission: Admission | None
    reserved: Charge
    counters: list[dict[str, Any]] = field(default_factory=list)
    _settled: bool = False

    def settle(self, cost: Charge) -> None:
        """Replaces the reservation by the turn's real cost on every counter (a second call does nothing)."""
        if self._settled or self.admission is None:
            return
        self.admission.adjust(self.counters, cost - self.reserved)
        self._settled = True

    def settlement(self, cost: Charge) -> list[dict[str, Any]]:
        """What `settle` would write, as transaction actions for another write to carry (the turn's
        save: claude_chat.conversation_store); call `settled_by_them` once that write succeeded."""
        if self._settled or self.admission is None:
            return []
        return self.admission.additions(self.counters, cost - self.reserved)

    def settled_by_them(self) -> None:
        """The actions of `settlement` were written: a later `settle` does nothing."""
        self._settled = True


@dataclass(frozen=True, slots=True)
class DayUse:
    """A caller's day so far, read consistently (GET /api/usage)."""

    tokens: int
    nanos: int
    limits: Limits
    reset_after: int  # seconds until the UTC day ends


class Admission:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        limiter: RateLimiter,
        *,
        global_limits: Limits,
        shards: int,
        pool: Executor,
    ) -> None:
        self._db = client
        self._table = table_name
        self.limiter = limiter
        self.global_limits = global_limits
        # Never more shards than a budget that is on has units: a share of nothing would be no
        # condition at all (that budget unenforced, or an empty ConditionExpression DynamoDB refuses).
        on = [limit for limit in (global_limits.tokens, global_limits.nanos) if limit > 0]
        self.shards = max(1, min(shards, *on) if on else shards)
        self.share = Limits(global_limits.tokens // self.shards, global_limits.nanos // self.shards)
        self._pool = pool

    def admit(
        self,
        client_key: str,
        charge: Charge,
        limits: Limits,
        *,
        request: bool = True,
        checks: Sequence[Check] = (),
        now: float | None = None,
    ) -> Ticket:
        """Reserves `charge` on the caller's and a global counter, and draws one request from the
        caller's window (unless `request` is False: a second call of one turn, such as its title).

        Raises RateLimited (429: requests, tokens or money), BudgetExhausted (503), Busy (503) or
        Conflict (a check failed). Whatever it raises, nothing was written.
        """
        now = time.time() if now is None else now
        if request and self.limiter.known_spent(client_key, now):
            record_rate_limited("requests")
            decision = self.limiter.spent(now)
            raise RateLimited(decision.reset_after, decision.headers(), limit="requests")
        shard = random.randrange(self.shards)  # noqa: S311 - spreading load, not a secret
        for attempt in range(_ATTEMPTS):
            actions = self._actions(client_key, charge, limits, request=request, shard=shard, now=now)
            items = [action for _, action in actions] + [_with_table(c.item, self._table) for c in checks]
            if not items:
                return Ticket(None, charge)
            try:
                self._db.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            except ClientError as error:
                names = [name for name, _ in actions]
                refusal, retry = self._refusal(error, names, checks, charge=charge, limits=limits, now=now)
                if isinstance(refusal, RateLimited) and refusal.limit == "requests":
                    self.limiter.saw_spent(client_key, now)
                if isinstance(refusal, BudgetExhausted) and retry and attempt < _ATTEMPTS - 1:
                    roomiest = self._roomiest_shard(charge, now)
                    retry, shard = roomiest is not None, roomiest or 0
                if not retry or attempt == _ATTEMPTS - 1:
                    if isinstance(refusal, BudgetExhausted):
                        record_rate_limited("global_tokens")
                    raise refusal from error
                if not isinstance(refusal, BudgetExhausted):
                    shard = (shard + 1 + random.randrange(max(1, self.shards - 1))) % self.shards  # noqa: S311
                time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # noqa: S311
                continue
            counters = [action["Update"]["Key"] for name, action in actions if name in ("caller", "global")]
            return Ticket(self, charge, counters)
        raise Busy()  # not reached: the last attempt returns or raises

    def adjust(self, counters: list[dict[str, Any]], charge: Charge) -> None:
        """Adds `charge` (may be negative) to each counter: one call for all of them (a transaction,
        retried while other transactions hold a counter), or, if that keeps failing, one ADD each."""
        if not counters or charge == Charge():
            return
        if len(counters) > 1:
            for attempt in range(3):
                try:
                    self._db.transact_write_items(
                        TransactItems=[{"Update": self._addition(key, charge)} for key in counters]  # type: ignore[typeddict-item]
                    )
                    return
                except ClientError as error:
                    if not _conflicted(error):
                        raise
                    time.sleep(0.01 * 2**attempt * random.uniform(0.5, 1.0))  # noqa: S311
        for future in [self._pool.submit(self._add, key, charge) for key in counters]:
            future.result()

    def additions(self, counters: list[dict[str, Any]], charge: Charge) -> list[dict[str, Any]]:
        """`adjust`'s writes as transaction actions ([] when there is nothing to add)."""
        if not counters or charge == Charge():
            return []
        return [{"Update": self._addition(key, charge)} for key in counters]

    def _addition(self, key: dict[str, Any], charge: Charge) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Key": key,
            "UpdateExpression": "ADD used :tokens, nusd :nanos",
            "ExpressionAttributeValues": {
                ":tokens": {"N": str(charge.tokens)},
                ":nanos": {"N": str(charge.nanos)},
            },
        }

    def _roomiest_shard(self, charge: Charge, now: float) -> int | None:
        """The global shard with the most room for `charge` (read, consistently, when the one drawn was
        too full), or None when none can take it: only then is a turn refused for the global budget."""
        keys = [day_key(shard_key(shard), now) for shard in range(self.shards)]
        used: dict[str, tuple[int, int]] = {}
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {
                self._table: {"Keys": keys[start : start + 100], "ConsistentRead": True}
            }
            while pending:
                answer = self._db.batch_get_item(RequestItems=pending)
                for item in answer["Responses"].get(self._table, []):
                    used[item["pk"]["S"]] = (_number(item, "used"), _number(item, "nusd"))
                pending = dict(answer.get("UnprocessedKeys") or {})
        best, best_room = None, -1
        for shard in range(self.shards):
            tokens, nanos = used.get(shard_key(shard), (0, 0))
            rooms = [
                limit - spent - amount
                for limit, spent, amount in (
                    (self.share.tokens, tokens, charge.tokens),
                    (self.share.nanos, nanos, charge.nanos),
                )
                if limit > 0  # one at least: the global budget is on, and every share of it is 1 or more
            ]
            room = min(rooms)
            if room >= 0 and room > best_room:
                best, best_room = shard, room
        return best

    def day_use(self, client_key: str, limits: Limits, now: float | None = None) -> DayUse:
        """The caller's spend today, read consistently."""
        now = time.time() if now is None else now
        item = self._db.get_item(
            TableName=self._table,
            Key=day_key(f"TB#{client_key}", now),
            ProjectionExpression="used, nusd",
            ConsistentRead=True,
        ).get("Item", {})
        return DayUse(_number(item, "used"), _number(item, "nusd"), limits, until_day_ends(now))

    def _actions(
        self, client_key: str, charge: Charge, limits: Limits, *, request: bool, shard: int, now: float
    ) -> list[tuple[str, dict[str, Any]]]:
        actions: list[tuple[str, dict[str, Any]]] = []
        if request:
            actions.append(
                ("requests", {"Update": {**self.limiter.draw(client_key, now), "TableName": self._table}})
            )
        if limits.on:
            actions.append(("caller", self._take(day_key(f"TB#{client_key}", now), charge, limits, now)))
        if self.global_limits.on:
            actions.append(("global", self._take(day_key(shard_key(shard), now), charge, self.share, now)))
        return actions

    def _take(self, key: dict[str, Any], charge: Charge, limits: Limits, now: float) -> dict[str, Any]:
        """A conditional ADD that leaves room for `charge` under each limit that is on."""
        conditions, values = (
            [],
            {
                ":tokens": {"N": str(charge.tokens)},
                ":nanos": {"N": str(charge.nanos)},
                ":exp": {"N": str(_day_ends(now) + DAY_SECONDS)},
            },
        )
        for attribute, limit, amount in (
            ("used", limits.tokens, charge.tokens),
            ("nusd", limits.nanos, charge.nanos),
        ):
            if limit <= 0:
                continue
            room = limit - amount
            values[f":{attribute}_room"] = {"N": str(room)}
            # A charge larger than the whole limit never fits, not even on a counter not yet written.
            fits = f"{attribute} <= :{attribute}_room"
            conditions.append(fits if room < 0 else f"(attribute_not_exists({attribute}) OR {fits})")
        return {
            "Update": {
                "TableName": self._table,
                "Key": key,
                "UpdateExpression": "ADD used :tokens, nusd :nanos SET expires_at = :exp",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                "ConditionExpression": " AND ".join(conditions),
                "ExpressionAttributeValues": values,
            }
        }

    def _refusal(
        self,
        error: ClientError,
        names: list[str],
        checks: Sequence[Check],
        *,
        charge: Charge,
        limits: Limits,
        now: float,
    ) -> tuple[ApiError, bool]:
        """What a failed transaction means: the error to answer, and whether another shard may pass.

        Refusals are ranked as the contract ranks them: a spent request window first, then the
        caller's budgets, then a failed check (raised as Conflict), then the global budget; a
        throttled or conflicting write is `busy`. Anything else is a defect and raises as it is.
        """
        code = _code(error)
        if code in _THROTTLED:
            return Busy(), True
        if code != "TransactionCanceledException":
            raise error
        reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
        failed = {
            (names[i] if i < len(names) else checks[i - len(names)].name): reason
            for i, reason in enumerate(reasons)
            if reason.get("Code") not in (None, "None")
        }
        refused = {name for name, reason in failed.items() if reason.get("Code") == "ConditionalCheckFailed"}
        if "requests" in refused:
            record_rate_limited("requests")
            decision = self.limiter.spent(now)
            return RateLimited(decision.reset_after, decision.headers(), limit="requests"), False
        if "caller" in refused:
            spent = failed["caller"].get("Item", {})
            money = limits.nanos > 0 and _number(spent, "nusd") + charge.nanos > limits.nanos
            record_rate_limited("money" if money else "tokens")
            return RateLimited(until_day_ends(now), {}, limit="money" if money else "tokens"), False
        for check in checks:
            if check.name in refused:
                raise Conflict(check, failed[check.name].get("Item")) from error
        if "global" in refused:
            return BudgetExhausted(until_day_ends(now)), self.shards > 1
        if failed and all(reason.get("Code") in _THROTTLED for reason in failed.values()):
            return Busy(), True
        raise error

    def _add(self, key: dict[str, Any], charge: Charge) -> None:
        for attempt in range(5):
            try:
                self._db.update_item(**self._addition(key, charge))
                return
            except ClientError as error:
                if _code(error) not in _THROTTLED or attempt == 4:
                    raise
                time.sleep(0.02 * 2**attempt * random.uniform(0.5, 1.0))  # noqa: S311


def _conflicted(error: ClientError) -> bool:
    """A transaction that failed only because others held its items, or DynamoDB throttled it."""
    code = _code(error)
    if code in _THROTTLED:
        return True
    reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
    return code == "TransactionCanceledException" and all(
        reason.get("Code") in (None, "None", *_THROTTLED) for reason in reasons
    )


def _code(error: ClientError) -> str:
    """The error's code: botocore's parsers give every error response an Error with a Code."""
    return error.response["Error"]["Code"]


def shard_count(global_limits: Limits, largest_turn: Charge, configured: int = 0) -> int:
    """How many counters hold the global budget: `configured`, or as many as the budget fills with
    TURNS_PER_SHARD worst-case turns each (so early refusal leaves at most 1/TURNS_PER_SHARD of it
    unspent), a power of two between 1 and MAX_SHARDS."""
    if configured:
        return min(configured, MAX_SHARDS)
    fits = [
        limit // (TURNS_PER_SHARD * max(1, amount))
        for limit, amount in (
            (global_limits.tokens, largest_turn.tokens),
            (global_limits.nanos, largest_turn.nanos),
        )
        if limit > 0
    ]
    most = min(fits, default=1)
    return 1 if most < 2 else min(MAX_SHARDS, 2 ** int(math.log2(most)))


def shard_key(shard: int) -> str:
    """Shard 0 is the counter a single global counter always was, so a day's spend so far carries over."""
    return GLOBAL_KEY if shard == 0 else f"{GLOBAL_KEY}#{shard}"


def day_key(pk: str, now: float) -> dict[str, Any]:
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    return {"pk": {"S": pk}, "sk": {"S": f"D#{day}"}}


def until_day_ends(now: float) -> int:
    """Whole seconds until the UTC day ends, rounded up: a caller who waits that long finds the new day."""
    return max(1, math.ceil(DAY_SECONDS - now % DAY_SECONDS))


def _day_ends(now: float) -> int:
    return int(now // DAY_SECONDS) * DAY_SECONDS + DAY_SECONDS


def _number(item: dict[str, Any], name: str) -> int:
    return int(item[name]["N"]) if name in item else 0


def _with_table(action: dict[str, Any], table: str) -> dict[str, Any]:
    kind, body = next(iter(action.items()))
    return {kind: {**body, "TableName": table}}

"""What Claude costs: a dated price table per model, and turns priced in money.

Budgets in money (claude_chat.admission) count nano-dollars (10^-9 USD) as
integers: every price of the table is a whole number of nano-dollars per token
(a price per million tokens with at most three decimals is), so sums and
DynamoDB counters are exact. A price given in MODEL_PRICES with more decimals is
rounded up, so a budget never counts less than Claude bills.

A model id finds its prices by the family it names, as the prompt-cache minimums
do (claude_chat.claude_client): the longest family the id contains, followed by
the id's end or a separator, so "claude-haiku-4-5-20251001", its Bedrock profile
"us.anthropic.claude-haiku-4-5-20251001-v1:0" and its alias "claude-haiku-4-5"
all price as Claude Haiku 4.5. MODEL_PRICES (JSON) adds families or replaces
rows, a row at a time.

Cache writes are priced at the 5-minute rate: the requests this project builds
ask only for 5-minute breakpoints. A turn's worst case prices every input token
at the dearer of the input and cache-write rates, since any of them may be
written to the cache.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claude_chat.models import Usage
    from claude_chat.settings import Settings

PRICES_AS_OF = "2026-12-01"
PRICES_SOURCE = "https://platform.claude.com/docs/en/about-claude/pricing"
NANOS_PER_USD = 1_000_000_000
_TOKENS_PER_PRICE_UNIT = 1_000_000  # prices are USD per million tokens
# The web search tool: $10 per 1,000 searches, on every model that has it.
_WEB_SEARCH_USD = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens (web_search: USD per search)."""

    input: Decimal
    output: Decimal
    cache_write: Decimal  # 5-minute cache writes
    cache_write_1h: Decimal
    cache_read: Decimal
    web_search: Decimal = _WEB_SEARCH_USD
    # Long-context pricing: a request whose prompt (input, cache writes and reads) is longer than
    # `long_context[0]` tokens is billed whole at `long_context[1]`'s prices.
    long_context: tuple[int, Prices] | None = None

    def for_prompt(self, prompt_tokens: int) -> Prices:
        """The prices a request with a prompt of this length is billed at."""
        if self.long_context is not None and prompt_tokens > self.long_context[0]:
            return self.long_context[1]
        return self

    def per_token(self, usd_per_million: Decimal) -> int:
        """Nano-dollars per token, rounded up."""
        return math.ceil(usd_per_million * NANOS_PER_USD / _TOKENS_PER_PRICE_UNIT)

    def cost(self, usage: Usage, searches: int = 0) -> int:
        """What Claude bills for `usage`, in nano-dollars."""
        prompt = usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
        if self.for_prompt(prompt) is not self:
            return self.for_prompt(prompt).cost(usage, searches)
        return (
            usage.input_tokens * self.per_token(self.input)
            + usage.cache_creation_input_tokens * self.per_token(self.cache_write)
            + usage.cache_read_input_tokens * self.per_token(self.cache_read)
            + usage.output_tokens * self.per_token(self.output)
            + searches * math.ceil(self.web_search * NANOS_PER_USD)
        )

    def worst_case(self, input_tokens: int, output_tokens: int, searches: int = 0) -> int:
        """The most `input_tokens` in and `output_tokens` out can cost, in nano-dollars."""
        if self.for_prompt(input_tokens) is not self:
            return self.for_prompt(input_tokens).worst_case(input_tokens, output_tokens, searches)
        dearest_input = max(self.per_token(self.input), self.per_token(self.cache_write))
        return (
            input_tokens * dearest_input
            + output_tokens * self.per_token(self.output)
            + searches * math.ceil(self.web_search * NANOS_PER_USD)
        )

    def as_usd(self) -> dict[str, float]:
        """The prices as the API shows them (GET /api/models)."""
        return {
            "input": float(self.input),
            "output": float(self.output),
            "cache_write": float(self.cache_write),
            "cache_write_1h": float(self.cache_write_1h),
            "cache_read": float(self.cache_read),
            "web_search": float(self.web_search),
        }


def _row(
    input_usd: str,
    output_usd: str,
    cache_read_usd: str | None = None,
    long_context: tuple[int, Prices] | None = None,
) -> Prices:
    """A row by the API's rules: 5-minute writes at 1.25x input, 1-hour writes at 2x, reads at 0.1x."""
    price = Decimal(input_usd)
    return Prices(
        input=price,
        output=Decimal(output_usd),
        cache_write=price * Decimal("1.25"),
        cache_write_1h=price * 2,
        cache_read=Decimal(cache_read_usd) if cache_read_usd is not None else price / 10,
        long_context=long_context,
    )


# Claude API list prices, USD per million tokens, as of PRICES_AS_OF (PRICES_SOURCE and each model's
# overview page). Bedrock's on-demand prices for the same models are the same in its US regions.
# Where sources disagreed (a price cut reported only by third parties), the higher price is kept:
# a budget may count a little more than Claude bills, never less.
PRICE_TABLE: dict[str, Prices] = {
    "claude-fable-5-2": _row("8", "40", "0.20"),
    "claude-fable-5-1": _row("10", "50", "0.25"),
    "claude-fable-5": _row("10", "50", "1"),
    "claude-opus-5-5": _row("4", "20", "0.20"),
    "claude-opus-5": _row("5", "25"),
    "claude-sonnet-5-5": _row("2", "10"),
    "claude-sonnet-5": _row("2", "10"),
    "claude-opus-4-8": _row("5", "25"),
    "claude-opus-4-7": _row("5", "25"),
    "claude-opus-4-6": _row("5", "25"),
    "claude-opus-4-5": _row("5", "25"),
    "claude-opus-4-1": _row("15", "75"),
    "claude-opus-4": _row("15", "75"),
    "claude-sonnet-4-6": _row("3", "15"),
    "claude-sonnet-4-5": _row("3", "15"),
    "claude-sonnet-4": _row("3", "15"),
    "claude-3-7-sonnet": _row("3", "15"),
    # Claude Haiku 5.5 bills a prompt over 100,000 tokens (cache reads and writes counted) at 5x, whole.
    "claude-haiku-5-5": _row("0.10", "0.50", long_context=(100_000, _row("0.50", "2.50"))),
    "claude-haiku-4-5": _row("1", "5"),
    "claude-3-5-haiku": _row("0.80", "4"),
    "claude-3-haiku": Prices(
        Decimal("0.25"), Decimal("1.25"), Decimal("0.30"), Decimal("0.50"), Decimal("0.03")
    ),
}


def prices_for(model: str, table: dict[str, Prices]) -> Prices | None:
    """The prices of the longest family `model` names (see the module docstring), or None."""
    for family in sorted(table, key=len, reverse=True):
        if re.search(rf"(^|[.:/]){re.escape(family)}($|[-@:.])", model):
            return table[family]
    return None


def price_table(overrides: str) -> dict[str, Prices]:
    """PRICE_TABLE with MODEL_PRICES' rows (JSON: family -> prices in USD per million tokens).

    A row names at least `input` and `output`; cache prices it leaves out follow the API's
    multipliers. Raises ValueError with what is wrong, so a bad setting stops the start.
    """
    table = dict(PRICE_TABLE)
    if not overrides.strip():
        return table
    try:
        rows = json.loads(overrides)
    except ValueError:
        raise ValueError(
            'MODEL_PRICES must be JSON such as {"claude-haiku-4-5": {"input": 1, "output": 5}}'
        ) from None
    if not isinstance(rows, dict):
        raise ValueError("MODEL_PRICES must be a JSON object of model families")
    for family, row in rows.items():
        table[str(family)] = _override(str(family), row)
    return table


_PRICE_FIELDS = ("input", "output", "cache_write", "cache_write_1h", "cache_read", "web_search")


def _override(family: str, row: object) -> Prices:
    if (
        not isinstance(row, dict)
        or not {"input", "output"} <= row.keys()
        or not row.keys() <= set(_PRICE_FIELDS)
    ):
        raise ValueError(
            f"MODEL_PRICES[{family!r}] must be an object with `input` and `output` "
            f"(and optionally {', '.join(_PRICE_FIELDS[2:])}), in USD per million tokens"
        )
    try:
        values = {name: Decimal(str(value)) for name, value in row.items() if not isinstance(value, bool)}
    except InvalidOperation:
        raise ValueError(f"MODEL_PRICES[{family!r}]: every price must be a number") from None
    if len(values) != len(row) or any(not value.is_finite() or value < 0 for value in values.values()):
        raise ValueError(f"MODEL_PRICES[{family!r}]: every price must be a number, 0 or more")
    base = _row(str(values["input"]), str(values["output"]))
    return Prices(
        input=base.input,
        output=base.output,
        cache_write=values.get("cache_write", base.cache_write),
        cache_write_1h=values.get("cache_write_1h", base.cache_write_1h),
        cache_read=values.get("cache_read", base.cache_read),
        web_search=values.get("web_search", base.web_search),
    )


# Context windows (tokens) of the families known to have 200,000 without a beta header; any other
# model is assumed to take 1,000,000 (the largest Claude offers), so a bound built on it holds.
_CONTEXT_200K = re.compile(
    # `claude-sonnet-4` and `claude-opus-4` alone or dated (-20250514), not a later 4.x
    r"claude-(?:haiku-4-5|sonnet-4-5|opus-4-5|opus-4-1|(?:sonnet|opus)-4(?!-\d(?:\D|$))|3-7-sonnet|3-5-haiku|3-haiku)"
)
_LARGEST_CONTEXT_WINDOW = 1_000_000


def context_window(model: str) -> int:
    """The model's context window in tokens, or the largest Claude has when it is not known."""
    return 200_000 if _CONTEXT_200K.search(model) else _LARGEST_CONTEXT_WINDOW


def search_reserve_tokens(model: str, settings: Settings) -> int:
    """Input tokens a turn reserves per web search it may run: the model's context window (each
    sampling after a search reads at most that much, billed again), or WEB_SEARCH_RESERVE_TOKENS
    when the operator sets less (then a turn may cost more than it reserved)."""
    window = context_window(model)
    return min(window, settings.web_search_reserve_tokens) if settings.web_search_reserve_tokens else window


def billed_tokens(usage: Usage) -> int:
    """Every token Claude processed for a turn (input, cache writes and reads, output): what the token
    budgets count."""
    return (
        usage.input_tokens
        + usage.cache_creation_input_tokens
        + usage.cache_read_input_tokens
        + usage.output_tokens
    )


def usd(nanos: int) -> float:
    """Nano-dollars as dollars, to the millionth (what replies and metrics show)."""
    return round(nanos / NANOS_PER_USD, 6)


def nanos(usd_amount: Decimal) -> int:
    """Dollars as whole nano-dollars, rounded down (a budget is never more than its setting), but a
    positive amount is at least one: 0 means "no budget", which a tiny budget must never become."""
    whole = int(usd_amount * NANOS_PER_USD)
    return 1 if whole == 0 and usd_amount > 0 else whole

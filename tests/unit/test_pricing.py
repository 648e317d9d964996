"""The price table and turns priced in nano-dollars (claude_chat.pricing): what the money budgets count."""

from __future__ import annotations

from decimal import Decimal

import pytest

from claude_chat.models import Usage
from claude_chat.pricing import (
    PRICE_TABLE,
    Prices,
    _row,
    billed_tokens,
    context_window,
    nanos,
    price_table,
    prices_for,
    search_reserve_tokens,
    usd,
)
from claude_chat.settings import Settings

HAIKU = PRICE_TABLE["claude-haiku-4-5"]


def test_each_kind_of_token_is_priced_at_its_own_rate() -> None:
    assert HAIKU.cost(Usage(input_tokens=1_000_000)) == 1_000_000_000  # $1 per million
    assert HAIKU.cost(Usage(output_tokens=1_000_000)) == 5_000_000_000
    assert HAIKU.cost(Usage(cache_creation_input_tokens=1_000_000)) == 1_250_000_000
    assert HAIKU.cost(Usage(cache_read_input_tokens=1_000_000)) == 100_000_000
    assert HAIKU.cost(Usage(), searches=3) == 30_000_000  # $10 per 1,000 searches
    both = Usage(input_tokens=7, output_tokens=11, cache_creation_input_tokens=13, cache_read_input_tokens=17)
    assert HAIKU.cost(both, searches=1) == 7 * 1000 + 11 * 5000 + 13 * 1250 + 17 * 100 + 10_000_000


def test_a_worst_case_prices_every_input_token_at_the_dearer_of_input_and_cache_write() -> None:
    assert HAIKU.worst_case(1000, 100) == 1000 * 1250 + 100 * 5000
    assert HAIKU.worst_case(0, 0, searches=2) == 20_000_000
    cheap_writes = Prices(Decimal(2), Decimal(4), Decimal(1), Decimal(1), Decimal(0))
    assert cheap_writes.worst_case(10, 0) == 10 * 2000
    for usage in (
        Usage(input_tokens=1000),
        Usage(cache_creation_input_tokens=1000),
        Usage(cache_read_input_tokens=1000),
    ):
        assert HAIKU.cost(usage.model_copy(update={"output_tokens": 100})) <= HAIKU.worst_case(1000, 100)


def test_prices_with_more_than_three_decimals_round_up() -> None:
    odd = Prices(Decimal("0.0001"), Decimal("1.0001"), Decimal(0), Decimal(0), Decimal(0))
    assert odd.per_token(Decimal("0.0001")) == 1  # 0.1 nano-dollar a token counts as 1
    assert odd.cost(Usage(output_tokens=1)) == 1001


def test_long_context_prices_a_longer_prompt_whole_at_the_higher_rate() -> None:
    haiku55 = PRICE_TABLE["claude-haiku-5-5"]
    at_threshold = Usage(input_tokens=60_000, cache_read_input_tokens=40_000, output_tokens=10)
    above = at_threshold.model_copy(update={"input_tokens": 60_001})
    assert haiku55.cost(at_threshold) == 60_000 * 100 + 40_000 * 10 + 10 * 500
    assert haiku55.cost(above) == 60_001 * 500 + 40_000 * 50 + 10 * 2500
    assert haiku55.worst_case(100_000, 10) == 100_000 * 125 + 10 * 500
    assert haiku55.worst_case(100_001, 10) == 100_001 * 625 + 10 * 2500


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("claude-haiku-4-5", "claude-haiku-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        ("global.anthropic.claude-opus-4-5-20251101-v1:0", "claude-opus-4-5"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-sonnet-5-5", "claude-sonnet-5-5"),
        ("claude-sonnet-5", "claude-sonnet-5"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
        ("claude-opus-4-5@20251101", "claude-opus-4-5"),
    ],
)
def test_a_model_id_prices_as_the_longest_family_it_names(model: str, family: str) -> None:
    assert prices_for(model, PRICE_TABLE) is PRICE_TABLE[family]


def test_an_unknown_model_has_no_price() -> None:
    assert prices_for("claude-nonesuch-9", PRICE_TABLE) is None
    assert prices_for("gpt-claude-haiku-4-5x", PRICE_TABLE) is None
    assert prices_for("my-claude-haiku-4-5", PRICE_TABLE) is None


def test_model_prices_add_and_replace_rows() -> None:
    table = price_table(
        '{"claude-haiku-4-5": {"input": 2, "output": 9.5},'
        ' "my-model": {"input": 0.5, "output": 1, "cache_read": 0.01, "web_search": 0}}'
    )
    assert table["claude-haiku-4-5"].input == 2 and table["claude-haiku-4-5"].cache_write == Decimal("2.5")
    assert table["claude-haiku-4-5"].cache_write_1h == 4 and table["claude-haiku-4-5"].cache_read == Decimal(
        "0.2"
    )
    assert table["my-model"].cache_read == Decimal("0.01") and table["my-model"].web_search == 0
    assert table["claude-sonnet-4-5"] is PRICE_TABLE["claude-sonnet-4-5"]
    assert price_table("  ") == PRICE_TABLE
    assert PRICE_TABLE["claude-haiku-4-5"].input == 1  # the table itself is left alone


@pytest.mark.parametrize(
    "bad",
    [
        "{nope",
        "[1]",
        '{"m": 5}',
        '{"m": {"input": 1}}',
        '{"m": {"output": 1}}',
        '{"m": {"input": 1, "output": 1, "cache_writes": 1}}',
        '{"m": {"input": -1, "output": 1}}',
        '{"m": {"input": true, "output": 1}}',
        '{"m": {"input": "x", "output": 1}}',
        '{"m": {"input": "NaN", "output": 1}}',
    ],
)
def test_bad_model_prices_stop_the_start_saying_why(bad: str) -> None:
    with pytest.raises(ValueError, match="MODEL_PRICES"):
        price_table(bad)


def test_money_and_tokens_convert_exactly() -> None:
    assert nanos(Decimal("1.00")) == 1_000_000_000
    assert nanos(Decimal("0.0000000019")) == 1  # down: a budget is never more than its setting
    assert usd(1_234_567) == 0.001235
    assert usd(0) == 0
    usage = Usage(input_tokens=1, output_tokens=2, cache_creation_input_tokens=4, cache_read_input_tokens=8)
    assert billed_tokens(usage) == 15


def test_a_budget_below_a_nano_dollar_is_still_a_budget_not_none() -> None:
    """Rounded down to 0 it would read as "off": no budget at all, where the operator set almost none."""
    assert nanos(Decimal("0.0000000001")) > 0
    assert nanos(Decimal("0")) == 0


def test_the_api_shows_prices_in_dollars_per_million() -> None:
    assert HAIKU.as_usd() == {
        "input": 1.0,
        "output": 5.0,
        "cache_write": 1.25,
        "cache_write_1h": 2.0,
        "cache_read": 0.1,
        "web_search": 0.01,
    }


def test_a_row_given_whole_is_taken_whole() -> None:
    row = (
        '{"m": {"input": 1, "output": 2, "cache_write": 3, "cache_write_1h": 4, "cache_read": 5,'
        ' "web_search": 6}}'
    )
    prices = price_table(row)["m"]
    assert (prices.input, prices.output, prices.cache_write, prices.cache_write_1h, prices.cache_read) == (
        1,
        2,
        3,
        4,
        5,
    )
    assert prices.web_search == 6
    defaults = price_table('{"m": {"input": 4, "output": 8}}')["m"]
    assert (defaults.output, defaults.cache_write, defaults.cache_write_1h, defaults.cache_read) == (
        8,
        5,
        8,
        Decimal("0.4"),
    )
    assert defaults.web_search == Decimal("0.01") and defaults.long_context is None


def test_the_errors_say_exactly_what_to_write() -> None:
    with pytest.raises(ValueError, match="JSON") as not_json:
        price_table("{")
    assert (
        str(not_json.value)
        == 'MODEL_PRICES must be JSON such as {"claude-haiku-4-5": {"input": 1, "output": 5}}'
    )
    with pytest.raises(ValueError, match="object") as not_object:
        price_table("[]")
    assert str(not_object.value) == "MODEL_PRICES must be a JSON object of model families"
    with pytest.raises(ValueError, match="my-model") as bad_row:
        price_table('{"my-model": {"input": 1}}')
    assert str(bad_row.value) == (
        "MODEL_PRICES['my-model'] must be an object with `input` and `output` (and optionally "
        "cache_write, cache_write_1h, cache_read, web_search), in USD per million tokens"
    )
    with pytest.raises(
        ValueError, match=r"^MODEL_PRICES\['my-model'\]: every price must be a number, 0 or more$"
    ):
        price_table('{"my-model": {"input": -1, "output": 1}}')


def test_a_row_by_the_apis_rules() -> None:
    row = _row("2", "8", "0.5")
    assert (row.input, row.output, row.cache_write, row.cache_write_1h, row.cache_read) == (
        2,
        8,
        Decimal("2.5"),
        4,
        Decimal("0.5"),
    )
    tiered = _row("1", "2", long_context=(10, row))
    assert tiered.long_context == (10, row) and _row("1", "2").cache_read == Decimal("0.1")


def test_cache_reads_and_writes_count_towards_the_long_context_threshold_and_searches_stay_priced() -> None:
    haiku55 = PRICE_TABLE["claude-haiku-5-5"]
    written = Usage(input_tokens=50_000, cache_creation_input_tokens=60_000)  # 110,000 prompt tokens
    assert haiku55.cost(written) == 50_000 * 500 + 60_000 * 625
    assert haiku55.cost(written, searches=2) == 50_000 * 500 + 60_000 * 625 + 20_000_000
    assert haiku55.worst_case(100_001, 0, searches=2) == 100_001 * 625 + 20_000_000


def test_the_smallest_positive_budget_is_one_nano_dollar() -> None:
    assert nanos(Decimal("1e-12")) == 1
    assert nanos(Decimal(0)) == 0


@pytest.mark.parametrize(
    "model",
    [
        "claude-haiku-4-5",
        "claude-haiku-4-5-20251001",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "claude-sonnet-4-5",
        "claude-opus-4-5",
        "claude-opus-4-1",
        "claude-sonnet-4",
        "claude-sonnet-4-20250514",
        "claude-opus-4-20250514",
        "claude-3-7-sonnet-20250219",
        "claude-3-5-haiku-20241022",
        "claude-3-haiku-20240307",
    ],
)
def test_the_families_known_to_take_200_000_tokens_have_that_context_window(model: str) -> None:
    assert context_window(model) == 200_000


@pytest.mark.parametrize(
    "model", ["claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-4-8", "claude-opus-5", "some-future-model"]
)
def test_any_other_model_is_taken_to_have_the_largest_context_window(model: str) -> None:
    # A later 4.x (claude-sonnet-4-6) is not claude-sonnet-4: a bound built on 200,000 would not hold.
    assert context_window(model) == 1_000_000


def test_a_search_reserves_the_models_context_window_or_less_when_the_operator_says_so() -> None:
    """Each sampling after a search reads at most the model's context window, billed again: that is
    the reserve that holds; WEB_SEARCH_RESERVE_TOKENS may set less, never more than the window."""
    assert search_reserve_tokens("claude-haiku-4-5", Settings()) == 200_000
    assert search_reserve_tokens("claude-opus-4-6", Settings()) == 1_000_000
    assert search_reserve_tokens("claude-haiku-4-5", Settings(web_search_reserve_tokens=30_000)) == 30_000
    assert search_reserve_tokens("claude-opus-4-6", Settings(web_search_reserve_tokens=300_000)) == 300_000
    assert search_reserve_tokens("claude-haiku-4-5", Settings(web_search_reserve_tokens=300_000)) == 200_000

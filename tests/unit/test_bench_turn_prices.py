"""BENCHMARKS.md's prices of turns with a file or a web search (tests/benchmarks/turn_prices.py): worked out
from the footprint section's short chat, by the project's own pricing and attachments code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from claude_chat import pricing
from claude_chat.models import Usage
from tests.benchmarks import footprint, turn_prices
from tests.dev_server import ROOT


def results(input_tokens: float = 404_000, output_tokens: float = 80_000) -> dict[str, Any]:
    """The footprint section's 1,000 short-chat turns, made up (and a row of another conversation)."""

    def row(conversation: str, function: str, tokens_in: float) -> dict[str, Any]:
        return {
            "conversation": conversation,
            "function": function,
            "tokens": {
                "input_tokens": tokens_in,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0.0,
                "cache_read_input_tokens": 0.0,
            },
            "dollars": {"lambda": 0.02, "dynamodb": 0.01, "tokens": 0.8},
        }

    thousand = [
        row("short chat", "StreamFunction", input_tokens),
        row("short chat", "ChatFunction", input_tokens),
        row("long chat", "ChatFunction", 2_000_000),
    ]
    return {"footprint": {"model": {"thousand_turns": thousand}}}


def by(rows: list[turn_prices.Row], turn: str, figure: str) -> turn_prices.Row:
    return next(row for row in rows if row.turn.endswith(turn) and row.figure == figure)


def usd(input_tokens: int, output_tokens: int, searches: int = 0) -> float:
    """1,000 turns of these tokens, as claude_chat.pricing prices Claude Haiku 4.5."""
    prices = pricing.prices_for("claude-haiku-4-5", pricing.PRICE_TABLE)
    assert prices is not None
    usage = Usage(input_tokens=1000 * input_tokens, output_tokens=1000 * output_tokens)
    return prices.cost(usage, 1000 * searches) / 1e9


def test_each_turn_is_the_short_chats_plus_its_file_or_search_at_the_docs_estimate_and_the_bound() -> None:
    rows = turn_prices.rows(results())
    base = by(rows, "nothing more", "measured")
    assert (base.input_tokens, base.output_tokens, base.searches) == ((404, 404), 80, 0)
    assert base.dollars(results()["footprint"]["model"]["thousand_turns"][1]["tokens"]) == (0.804, 0.804)
    # A 1,000 x 1,000 screenshot: 1,000,000 / 750 = 1,333.3 tokens; counted with its block's 16.
    assert by(rows, "screenshot", "estimate").input_tokens == (404 + 1334,) * 2
    assert by(rows, "screenshot", "bound").input_tokens == (404 + 1350,) * 2
    # 10 pages of 1,500 to 3,000 tokens of text and 1,600 of image; counted at 3,000 + 1,600 a page, and 16.
    assert by(rows, "PDF", "estimate").input_tokens == (404 + 31_000, 404 + 46_000)
    assert by(rows, "PDF", "bound").input_tokens == (404 + 46_016,) * 2
    # A search: the docs' example's input and the prompt again; reserved: Haiku 4.5's context window.
    search = by(rows, "web search", "estimate")
    assert (search.input_tokens, search.output_tokens, search.searches) == ((404 + 6039 + 404,) * 2, 80, 1)
    reserved = by(rows, "web search", "bound")
    assert (reserved.input_tokens, reserved.output_tokens) == ((404 + 200_000,) * 2, 80 + 1024)


def test_the_dollars_are_claude_chat_pricings_and_a_bound_is_never_below_its_estimate() -> None:
    tokens = results()["footprint"]["model"]["thousand_turns"][1]["tokens"]
    rows = turn_prices.rows(results())
    for row in rows:
        low, high = row.dollars(tokens)
        assert (low, high) == (
            pytest.approx(usd(row.input_tokens[0], row.output_tokens, row.searches)),
            pytest.approx(usd(row.input_tokens[1], row.output_tokens, row.searches)),
        )
    for turn in ("screenshot", "PDF", "web search"):
        estimate, bound = by(rows, turn, "estimate"), by(rows, turn, "bound")
        assert bound.dollars(tokens)[0] >= estimate.dollars(tokens)[1], turn
    assert by(rows, "web search", "estimate").dollars(tokens)[0] == pytest.approx(0.804 + 10 + 6.443)


def test_no_footprint_results_no_rows() -> None:
    assert turn_prices.rows({}) == []
    assert turn_prices.markdown({"footprint": {"model": {"thousand_turns": []}}}) == ""


def test_the_cost_section_of_the_committed_results_carries_the_table() -> None:
    """Rendered from docs/bench-results.json, as `make bench` and `run --render` write BENCHMARKS.md."""
    committed = json.loads((ROOT / "docs" / "bench-results.json").read_text())
    section = footprint.markdown(committed).split("## Cost of 1,000 turns", 1)[1]
    table = section.split("### Turns with a file or a web search", 1)[1]
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + 7  # the header and the rows
    assert [line.split(" | ")[1] for line in lines[1:]] == ["measured"] + ["estimate", "bound"] * 3
    assert "| one web search | bound | 200,404 |" in table

"""Thinking, web search and citations: the request, the settings' checks, the reservation, the events."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from claude_chat.chat_turn import Quote
from claude_chat.claude_client import ClaudeClient, SearchStarted, Text, Thinking, citation, thinking_param
from claude_chat.conversation_store import Turn, _extras, _turn
from claude_chat.conversations import export_json, export_markdown, messages_of
from claude_chat.model_choice import ModelChoice
from claude_chat.models import Citation, HistoryMessage, Usage
from claude_chat.pricing import PRICE_TABLE, context_window
from claude_chat.settings import CITATIONS_MAX_BYTES, Settings
from claude_chat.streaming import reply_event
from claude_chat.ui_stream import CHUNKS, _Parts

WEB = Citation(cited_text="Tides rise.", url="https://tides.example/a", title="Tides")
PAGE = Citation(cited_text="Page text.", document="report.pdf", page=3)


def client(**settings: Any) -> ClaudeClient:
    return ClaudeClient(Settings(anthropic_api_key="k", **settings), "k")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-haiku-4-5", {"type": "enabled", "budget_tokens": 2048}),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", {"type": "enabled", "budget_tokens": 2048}),
        ("claude-sonnet-4-6", {"type": "adaptive", "display": "summarized"}),
        ("claude-opus-4-7", {"type": "adaptive", "display": "summarized"}),
        ("claude-opus-5", {"type": "adaptive", "display": "summarized"}),
        ("claude-haiku-5-5", {"type": "adaptive", "display": "summarized"}),
        ("claude-3-5-haiku-latest", None),  # does not think
    ],
)
def test_thinking_is_adaptive_or_budgeted_by_model(model: str, expected: dict[str, Any] | None) -> None:
    assert thinking_param(model, 2048) == expected
    assert thinking_param(model, 0) is None


def test_a_thinking_turn_keeps_max_tokens_for_its_reply_and_declares_the_search_tool() -> None:
    claude = client(
        max_tokens=700,
        thinking_budget_tokens=1500,
        web_search_max_uses=3,
        web_search_allowed_domains="docs.python.org, example.com",
        daily_token_budget=0,
        global_daily_token_budget=0,
    )
    request = claude.build_request([], "hi", conversation=False)
    assert request["thinking"] == {"type": "enabled", "budget_tokens": 1500}
    assert request["max_tokens"] == 2200  # budget_tokens < max_tokens, and the reply keeps its 700
    assert request["tools"] == [
        {
            "type": "web_search_20250305",
            "name": "web_search",
            "max_uses": 3,
            "allowed_domains": ["docs.python.org", "example.com"],
        }
    ]
    plain = client().build_request([], "hi", conversation=False)
    assert "thinking" not in plain and "tools" not in plain
    assert plain["max_tokens"] == 1024


def test_earlier_turns_go_back_as_their_text_alone() -> None:
    claude = client(thinking_budget_tokens=1024)
    history = [Turn("q", "a", thinking="secret thoughts", citations=(WEB.as_json(),))]
    request = claude.build_request(history, "next", conversation=True)
    assert request["messages"][1] == {"role": "assistant", "content": "a"}
    assert "secret thoughts" not in json.dumps(request)


def test_a_search_turn_reserves_every_search_and_a_context_window_for_each() -> None:
    claude = client(web_search_max_uses=2, daily_token_budget=0, global_daily_token_budget=0)
    request = claude.build_request([], "hi", conversation=False)
    assert claude.search_allowance(request) == (2, 2 * 200_000)  # Claude Haiku 4.5: 200,000 tokens
    with_tool = claude.input_bound(request)
    assert with_tool >= client().input_bound(client().build_request([], "hi", conversation=False)) + 2048
    assert context_window("claude-sonnet-4-20250514") == 200_000
    assert context_window("claude-opus-4-6") == 1_000_000  # not known to be smaller: the largest
    reserved = client(web_search_max_uses=2, web_search_reserve_tokens=30_000).build_request(
        [], "hi", conversation=False
    )
    assert client(web_search_max_uses=2, web_search_reserve_tokens=30_000).search_allowance(reserved) == (
        2,
        60_000,
    )


def test_the_quote_prices_searches_in_the_worst_case_and_settles_the_real_ones() -> None:
    model = ModelChoice("claude-haiku-4-5", "claude-haiku-4-5", PRICE_TABLE["claude-haiku-4-5"])
    plain = Quote(model, 1000, 500)
    searching = Quote(model, 1000, 500, searches=2, search_input_tokens=400_000)
    # Each input token at the cache-write rate ($1.25/M), two searches at $0.01 each.
    assert searching.worst.nanos - plain.worst.nanos == 400_000 * 1250 + 2 * 10_000_000
    assert searching.worst.tokens == plain.worst.tokens + 400_000
    billed = Usage(input_tokens=3000, output_tokens=100, web_search_requests=1)
    assert searching.cost(billed).nanos == 3000 * 1000 + 100 * 5000 + 10_000_000
    # A reply cut short may have run every search, unseen: charged their worst case.
    cut = searching.searched_in_full(Usage(input_tokens=10, output_tokens=5))
    assert (cut.input_tokens, cut.web_search_requests) == (400_010, 2)
    assert plain.searched_in_full(billed) == billed


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"thinking_budget_tokens": 1000}, "at least 1024"),
        ({"web_search_max_uses": 1, "claude_provider": "bedrock"}, "no web search tool"),
        (
            {
                "web_search_max_uses": 1,
                "web_search_allowed_domains": "a.com",
                "web_search_blocked_domains": "b.com",
            },
            "both set",
        ),
        ({"web_search_max_uses": 1, "web_search_allowed_domains": "https://a.com"}, "no scheme"),
        ({"web_search_blocked_domains": "a.com"}, "search is off"),
        ({"web_search_max_uses": 1}, "not less than DAILY_TOKEN_BUDGET: every turn would be refused"),
        (
            {"web_search_max_uses": 4, "daily_token_budget": 0, "global_daily_token_budget": 0},
            r"800,000 input tokens \(\$1.04\) .* not less than DAILY_BUDGET_USD",
        ),
        ({"thinking_budget_tokens": 30_000}, "larger than one DynamoDB item"),
    ],
)
def test_bad_settings_fail_at_start_with_what_is_wrong(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**settings)


def test_settings_that_fit_start() -> None:
    settings = Settings(
        thinking_budget_tokens=4096,
        web_search_max_uses=3,
        web_search_blocked_domains="spam.example",
        daily_token_budget=1_000_000,
    )
    assert settings.web_search_blocked_domains == ["spam.example"]


def test_the_apis_citations_become_one_citation_type() -> None:
    web = SimpleNamespace(
        type="web_search_result_location",
        cited_text="c",
        url="https://u.example",
        title="T",
        encrypted_index="x",
    )
    page = SimpleNamespace(
        type="page_location", cited_text="p", document_index=0, document_title="deck.pdf", start_page_number=4
    )
    untitled = SimpleNamespace(type="page_location", cited_text="p", document_index=1, start_page_number=2)
    assert citation(web).as_json() == {"cited_text": "c", "url": "https://u.example", "title": "T"}
    assert citation(page).as_json() == {"cited_text": "p", "document": "deck.pdf", "page": 4}
    assert citation(untitled).as_json() == {"cited_text": "p", "document": "document 2", "page": 2}


def test_stream_events_keep_text_and_carry_what_they_are() -> None:
    assert reply_event(Thinking("hm")) == {"text": "", "thinking": "hm"}
    assert reply_event(SearchStarted("tides")) == {"text": "", "search": {"query": "tides"}}
    assert reply_event(Text("Tides", (WEB,))) == {"text": "Tides", "citations": [WEB.as_json()]}
    assert reply_event(Text("plain")) == {"text": "plain"}


def test_ai_sdk_parts_reason_then_cite_each_source_once_then_write() -> None:
    parts = _Parts()
    pieces = [Thinking("a"), Thinking("b"), SearchStarted("q"), Text("x", (WEB, PAGE)), Text("y", (WEB,))]
    chunks = [json.loads(c.decode().removeprefix("data: ")) for p in pieces for c in parts.chunks(p)]
    chunks += [json.loads(c.decode().removeprefix("data: ")) for c in parts.end()]
    assert [c["type"] for c in chunks] == [
        "reasoning-start",
        "reasoning-delta",
        "reasoning-delta",
        "reasoning-end",
        "data-search",
        "source-url",
        "source-document",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
    ]
    assert chunks[5] == {"type": "source-url", "sourceId": "source-1", "url": WEB.url, "title": "Tides"}
    assert chunks[6] == {
        "type": "source-document",
        "sourceId": "source-2",
        "mediaType": "application/pdf",
        "title": "report.pdf",
    }
    by_type = {model.model_fields["type"].default: model for model in CHUNKS}
    for sent in chunks:  # each exactly as its strict model (AI SDK 5.0.0 refuses unknown fields)
        by_type[sent["type"]].model_validate(sent)


def test_turn_items_keep_thinking_and_citations_within_their_share_of_the_item() -> None:
    turn = Turn("q", "a", thinking="t", citations=(WEB.as_json(), PAGE.as_json()))
    item = {"user": {"S": "q"}, "assistant": {"S": "a"}, **_extras(turn)}
    assert _turn(item) == turn
    assert _extras(Turn("q", "a")) == {}
    many = tuple({"cited_text": "x" * 900, "url": f"https://e.example/{n}", "title": "t"} for n in range(100))
    kept = json.loads(_extras(Turn("q", "a", citations=many))["cit"]["S"])
    assert 0 < len(kept) < 100
    assert len(json.dumps(kept).encode()) <= CITATIONS_MAX_BYTES


@pytest.mark.parametrize("text", ["tide", "潮汐"])  # CJK: 3 bytes a character in UTF-8, 6 escaped
def test_a_turn_items_citations_as_stored_fit_their_share_in_utf8(text: str) -> None:
    # Small citations, thousands of them: the share's last bytes are what the stored form spends.
    many = tuple(
        Citation(cited_text=f"{text} {n}", url=f"https://e.example/{n}", title=text).as_json()
        for n in range(3000)
    )
    stored = _extras(Turn("q", "a", citations=many))["cit"]["S"]
    kept = json.loads(stored)
    assert 0 < len(kept) < len(many) and kept == list(many[: len(kept)])
    assert len(stored.encode()) <= CITATIONS_MAX_BYTES


def test_history_and_exports_show_thinking_and_sources() -> None:
    turns = [
        Turn(
            "q", "The answer.", thinking="First this.\nThen that.", citations=(WEB.as_json(), PAGE.as_json())
        )
    ]
    assert [m.model_dump() for m in messages_of(turns)] == [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": "The answer.",
            "thinking": "First this.\nThen that.",
            "citations": [WEB.as_json(), PAGE.as_json()],
        },
    ]
    assert HistoryMessage(role="assistant", content="x").model_dump() == {"role": "assistant", "content": "x"}
    summary = SimpleNamespace(id="c", title="T", turns=1, updated_at=0)
    markdown = export_markdown(summary, turns, 0)  # type: ignore[arg-type]
    assert "> **Thinking**\n>\n> First this.\n> Then that.\n\nThe answer." in markdown
    assert "- [Tides](<https://tides.example/a>): “Tides rise.”" in markdown
    assert "- report.pdf, page 3: “Page text.”" in markdown
    exported = json.loads(export_json(summary, turns, 0))  # type: ignore[arg-type]
    assert exported["messages"][1]["citations"][1] == {
        "cited_text": "Page text.",
        "document": "report.pdf",
        "page": 3,
    }


def test_prices_keep_a_search_price_per_model() -> None:
    assert PRICE_TABLE["claude-haiku-4-5"].web_search == Decimal("0.01")


def test_each_sampling_of_a_search_turn_is_reserved_its_max_tokens() -> None:
    from claude_chat.chat_turn import _quote

    model = ModelChoice("claude-haiku-4-5", "claude-haiku-4-5", PRICE_TABLE["claude-haiku-4-5"])
    claude = client(
        max_tokens=500,
        thinking_budget_tokens=1024,
        web_search_max_uses=2,
        daily_token_budget=0,
        global_daily_token_budget=0,
    )
    quote = _quote(claude, model, 100, claude.build_request([], "hi", conversation=False))
    assert (quote.input_tokens, quote.output_tokens) == (
        100,
        1524 * 3,
    )  # the first sampling and one per search
    assert (quote.searches, quote.search_input_tokens) == (2, 400_000)
    plain = _quote(client(), model, 100, client().build_request([], "hi", conversation=False))
    assert (plain.output_tokens, plain.searches, plain.search_input_tokens) == (1024, 0, 0)

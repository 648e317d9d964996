"""The stand-in bills prompt caching as the real API does (local/messages_standin/caching.py).

The rules come from Anthropic's prompt-caching documentation; each test below
pins one of them on the cache directly, with a clock the test moves. What a
request can get wrong is tested through the real SDK against the stand-in, in
tests/integration/test_standin_caching_requests.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from local.messages_standin.caching import Block, PromptCache, minimum_tokens

HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-5-20250929"
EPHEMERAL = {"type": "ephemeral"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def blocks(*sizes: int, breakpoints: tuple[int, ...] = ()) -> list[Block]:
    """Blocks of the given token sizes, unique to this test, with breakpoints at the given indexes."""
    tag = uuid.uuid4().hex
    return [Block(f"{tag}-{i}", size, "5m" if i in breakpoints else None) for i, size in enumerate(sizes)]


def usage(bill: Any) -> tuple[int, int, int]:
    return bill.input_tokens, bill.cache_creation_input_tokens, bill.cache_read_input_tokens


def test_the_minimums_are_the_documented_ones() -> None:
    assert minimum_tokens("claude-haiku-4-5") == 4096
    assert minimum_tokens("us.anthropic.claude-haiku-4-5-20251001-v1:0") == 4096
    assert minimum_tokens("claude-sonnet-4-5-20250929") == 1024
    assert minimum_tokens("claude-sonnet-4-6") == 1024
    assert minimum_tokens("claude-opus-4-6") == 4096
    assert minimum_tokens("claude-opus-4-20250514") == 1024
    assert minimum_tokens("claude-3-5-haiku-20241022") == 2048


def test_a_prefix_under_the_minimum_is_neither_written_nor_read() -> None:
    cache = PromptCache(Clock())
    prompt = blocks(3000, 1000, breakpoints=(1,))  # 4,000 tokens: under Haiku's 4,096
    for _ in range(2):
        assert usage(cache.bill("s", HAIKU, prompt)) == (4000, 0, 0)
    # The same prompt on Sonnet 4.5 (1,024) is cached, and read the second time.
    assert usage(cache.bill("s", SONNET, prompt)) == (0, 4000, 0)
    assert usage(cache.bill("s", SONNET, prompt)) == (0, 0, 4000)


def test_the_minimum_counts_the_whole_prefix_system_prompt_included() -> None:
    cache = PromptCache(Clock())
    # A 100-token message is cacheable after a 4,000-token system block: its prefix is 4,100 tokens.
    prompt = blocks(4000, 100, 7, breakpoints=(1,))
    assert usage(cache.bill("s", HAIKU, prompt)) == (7, 4100, 0)
    assert usage(cache.bill("s", HAIKU, prompt)) == (7, 0, 4100)


def test_a_system_breakpoint_under_the_minimum_caches_nothing_but_a_later_one_does() -> None:
    cache = PromptCache(Clock())
    prompt = blocks(500, 4000, 10, breakpoints=(0, 1))
    assert usage(cache.bill("s", HAIKU, prompt)) == (10, 4500, 0)
    # A new conversation with the same system prompt: its 500 tokens were never cached on their own.
    other = [prompt[0], *blocks(4000, 10, breakpoints=(0,))]
    assert usage(cache.bill("s", HAIKU, other)) == (10, 4500, 0)


def test_an_entry_lives_five_minutes() -> None:
    clock = Clock()
    cache = PromptCache(clock)
    prompt = blocks(5000, 10, breakpoints=(0,))
    assert usage(cache.bill("s", HAIKU, prompt)) == (10, 5000, 0)
    clock.now += 299
    assert usage(cache.bill("s", HAIKU, prompt)) == (10, 0, 5000)
    clock.now += 301  # 301 s after its last use
    assert usage(cache.bill("s", HAIKU, prompt)) == (10, 5000, 0)


def test_a_hit_refreshes_the_lifetime() -> None:
    clock = Clock()
    cache = PromptCache(clock)
    prompt = blocks(5000, 10, breakpoints=(0,))
    cache.bill("s", HAIKU, prompt)
    for _ in range(4):  # 16 minutes in all, never 5 without a read
        clock.now += 240
        assert usage(cache.bill("s", HAIKU, prompt)) == (10, 0, 5000)


def test_a_one_hour_breakpoint_outlives_five_minutes() -> None:
    clock = Clock()
    cache = PromptCache(clock)
    prompt = [Block(f"{uuid.uuid4().hex}", 5000, "1h"), *blocks(10)]
    bill = cache.bill("s", HAIKU, prompt)
    assert bill.creation_by_ttl == {"1h": 5000}
    clock.now += 3000
    assert usage(cache.bill("s", HAIKU, prompt)) == (10, 0, 5000)


def test_a_growing_chat_reads_the_previous_turns_prefix_and_writes_only_the_new_part() -> None:
    cache = PromptCache(Clock())
    first = blocks(4500, breakpoints=(0,))
    cache.bill("s", HAIKU, first)
    second = [Block(first[0].canonical, 4500), *blocks(200, 300, breakpoints=(1,))]
    assert usage(cache.bill("s", HAIKU, second)) == (0, 500, 4500)

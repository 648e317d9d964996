"""The Messages-API stand-in's prompt cache: it bills cache writes and reads as the real API does.

Why: BENCHMARKS.md and the tests judge our caching strategy by the usage the
stand-in reports, so a cache that stored any prefix forever would praise a
strategy that costs money on the real API. The rules emulated here are those of
Anthropic's prompt-caching documentation
(https://platform.claude.com/docs/en/build-with-claude/prompt-caching, read
through the `search` tool in 2026; its minimum table is also quoted verbatim in
anthropics/anthropic-sdk-python issue 1194):

- The prompt is one sequence of blocks in the order tools, system, messages; a
  breakpoint (`cache_control` on a block) caches the whole prefix up to and
  including its block.
- A breakpoint whose prefix is shorter than the model's minimum cacheable
  length caches nothing: no write, no read (MINIMUM_CACHEABLE_TOKENS).
- A breakpoint reads the longest live entry it finds at its own block or up to
  20 blocks before it; what lies between that entry and the breakpoint is
  written (1.25x the input price for the 5-minute cache); what follows the last
  breakpoint is plain input.
- An entry lives 5 minutes (or 1 hour with `"ttl": "1h"`) after it was last
  written or read: a hit refreshes it at no cost.
- At most 4 breakpoints per request; more is a 400 invalid_request_error.
- Automatic caching: a top-level `cache_control` on the request puts a
  breakpoint on the last cacheable block (and moves forward as a
  conversation grows). It takes one of the 4 breakpoint slots, unless that
  block already carries an explicit breakpoint, which it then simply is.

Tokens are ceil(characters / 4) per block, as everywhere in the stand-in. The
cache's clock is `clock() + offset`; tests move it forward with `advance()`
(the `[standin:advance_clock=SECONDS]` directive), so expiry is testable
without sleeping.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Minimum cacheable prompt length per model family, in tokens (the documentation's table). A model
# id matches the first family it contains, so "claude-opus-4-6" comes before "claude-opus-4", and
# Bedrock ids ("us.anthropic.claude-haiku-4-5-20251001-v1:0") match like Anthropic's.
# A copy of the client's table (claude_chat/claude_client.py) on purpose: the stand-in plays the
# API, so a wrong entry on our side shows in the tests as a write no turn reads, not as agreement.
MINIMUM_CACHEABLE_TOKENS: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-6", 4096),
    ("claude-opus-4-5", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-sonnet-4-6", 1024),
    ("claude-sonnet-4-5", 1024),
    ("claude-opus-4-1", 1024),
    ("claude-opus-4", 1024),
    ("claude-sonnet-4", 1024),
    ("claude-3-7-sonnet", 1024),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
)
# A model the table does not know (the tests' made-up ones): the smallest documented minimum.
DEFAULT_MINIMUM_TOKENS = 1024
MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
_CAPACITY = 4096


class InvalidCacheControl(ValueError):
    """A request the real API refuses with a 400 for its cache_control."""


def minimum_tokens(model: str) -> int:
    """The model's minimum cacheable prompt length, in tokens."""
    return next(
        (tokens for family, tokens in MINIMUM_CACHEABLE_TOKENS if family in model), DEFAULT_MINIMUM_TOKENS
    )


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


@dataclass(frozen=True)
class Block:
    """One prompt block as the cache sees it: its identity, its size, and its breakpoint's TTL (if any)."""

    canonical: str
    tokens: int
    ttl: str | None = None  # "5m" or "1h" when the block carries cache_control


@dataclass(frozen=True)
class Bill:
    """How one request's input tokens split, as the API reports them in `usage`."""

    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    creation_by_ttl: dict[str, int]

    def usage(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.creation_by_ttl.get("5m", 0),
                "ephemeral_1h_input_tokens": self.creation_by_ttl.get("1h", 0),
            },
        }


def breakpoint_ttl(cache_control: Any, where: str) -> str:
    """The TTL a `cache_control` value asks for, or InvalidCacheControl as the API would refuse it."""
    if not isinstance(cache_control, dict) or cache_control.get("type") != "ephemeral":
        raise InvalidCacheControl(f"{where}.cache_control.type: Input should be 'ephemeral'")
    ttl = cache_control.get("ttl", "5m")
    if ttl not in TTL_SECONDS:
        raise InvalidCacheControl(f"{where}.cache_control.ttl: Input should be '5m' or '1h'")
    return str(ttl)


def block(role: str, content: dict[str, Any], where: str) -> Block:
    """A tool definition or content block as the cache sees it (cache_control is not part of its identity)."""
    stripped = {key: value for key, value in content.items() if key != "cache_control"}
    canonical = json.dumps([role, stripped], sort_keys=True, separators=(",", ":"))
    text = content["text"] if content.get("type") == "text" else json.dumps(stripped)
    ttl = breakpoint_ttl(content["cache_control"], where) if "cache_control" in content else None
    if content.get("type") in ("image", "document"):
        return Block(canonical, file_tokens(content), ttl)
    return Block(canonical, tokens(str(text)), ttl)


def file_tokens(content: dict[str, Any]) -> int:
    """What the API bills for an image or a PDF (not its base64): the low estimate of
    claude_chat.attachments, from the pixels (after Claude's resizing) or the pages."""
    import base64

    from claude_chat.attachments import inspect
    from local.messages_standin.wire import BadRequest

    source = content["source"]
    try:
        data = base64.b64decode(source["data"])
        return inspect("standin", "", source["media_type"], data, "claude-haiku-4-5").low
    except Exception:  # what the API says of a file it cannot read
        what = "image" if content["type"] == "image" else "PDF"
        raise BadRequest(f"Could not process {what}.") from None


def with_automatic_breakpoint(blocks: list[Block], cache_control: Any) -> list[Block]:
    """Applies a request's top-level `cache_control`: a breakpoint on the last block, if it has none."""
    if cache_control is None:
        return blocks
    ttl = breakpoint_ttl(cache_control, "cache_control")
    if not blocks or blocks[-1].ttl is not None:
        return blocks  # already a breakpoint there: automatic caching adds nothing
    return [*blocks[:-1], Block(blocks[-1].canonical, blocks[-1].tokens, ttl)]


def check_breakpoints(blocks: Sequence[Block]) -> None:
    found = sum(1 for b in blocks if b.ttl is not None)
    if found > MAX_BREAKPOINTS:
        raise InvalidCacheControl(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}."
        )


class PromptCache:
    """Live prefix entries (prefix hash -> expiry on the cache's clock), least recently used first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, capacity: int = _CAPACITY) -> None:
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._clock = clock
        self._offset = 0.0
        self._capacity = capacity
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Moves the cache's clock forward: entries older than their TTL then are gone."""
        with self._lock:
            self._offset += seconds

    def bill(self, seed: str, model: str, blocks: Sequence[Block]) -> Bill:
        """Bills one request's prompt (blocks in the order tools, system, messages) and updates the cache.

        `seed` is what else a cached prefix depends on (the model, for one: caches are per model).
        """
        check_breakpoints(blocks)
        minimum = minimum_tokens(model)
        running, prefixes, lengths, total = hashlib.sha256(seed.encode()), [], [], 0
        for b in blocks:
            running.update(b.canonical.encode())
            prefixes.append(running.hexdigest())
            total += b.tokens
            lengths.append(total)
        read = covered = 0  # blocks[:covered] are billed already
        creation: dict[str, int] = {}
        with self._lock:
            now = self.now()
            for end, b in enumerate(blocks):
                if b.ttl is None or lengths[end] < minimum:
                    continue  # no breakpoint, or one too short to cache anything
                oldest = max(covered, end - LOOKBACK_BLOCKS)
                hit = next((i for i in range(end, oldest - 1, -1) if self._live(prefixes[i], now)), None)
                if hit is not None:
                    read += sum(x.tokens for x in blocks[covered : hit + 1])
                    self._entries[prefixes[hit]] = max(self._entries[prefixes[hit]], now + TTL_SECONDS[b.ttl])
                    self._entries.move_to_end(prefixes[hit])
                    covered = hit + 1
                written = sum(x.tokens for x in blocks[covered : end + 1])
                if written:
                    creation[b.ttl] = creation.get(b.ttl, 0) + written
                    self._entries[prefixes[end]] = now + TTL_SECONDS[b.ttl]
                    self._entries.move_to_end(prefixes[end])
                covered = end + 1
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        uncached = sum(x.tokens for x in blocks[covered:])
        return Bill(uncached, sum(creation.values()), read, creation)

    def _live(self, prefix: str, now: float) -> bool:
        expires = self._entries.get(prefix)
        if expires is None:
            return False
        if expires <= now:
            del self._entries[prefix]
            return False
        return True

"""The stand-in's prompt caching through the real SDK over HTTP: what a request can get wrong
(more than four breakpoints, automatic caching, the clock directive, tools in the prefix)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from local.messages_standin import StandinServer, start_in_thread

HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-6"
EPHEMERAL = {"type": "ephemeral"}


def test_more_than_four_breakpoints_is_refused(server: StandinServer) -> None:
    sdk = anthropic.Anthropic(api_key="test", base_url=server.url, max_retries=0, timeout=5)
    marked: list[Any] = [{"type": "text", "text": f"part {n}", "cache_control": EPHEMERAL} for n in range(5)]
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": marked}])
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "maximum of 4 blocks with cache_control" in refused.value.message
    # Four are fine, system blocks counted.
    system: Any = [marked[0]]
    sdk.messages.create(
        model=HAIKU, max_tokens=8, system=system, messages=[{"role": "user", "content": marked[1:4]}]
    )
    # Automatic caching takes the fifth slot when the last block has no breakpoint of its own.
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.create(
            model=HAIKU,
            max_tokens=8,
            system=system,
            messages=[{"role": "user", "content": [*marked[1:4], {"type": "text", "text": "last"}]}],
            extra_body={"cache_control": EPHEMERAL},
        )


def test_automatic_caching_caches_up_to_the_last_block(server: StandinServer) -> None:
    sdk = anthropic.Anthropic(api_key="test", base_url=server.url, max_retries=0, timeout=5)
    text = (f"{uuid.uuid4().hex} a long question " * 1200)[: 4 * 4200]
    request: dict[str, Any] = {
        "model": HAIKU,
        "max_tokens": 8,
        "messages": [{"role": "user", "content": text}],
        "extra_body": {"cache_control": EPHEMERAL},
    }
    first = sdk.messages.create(**request).usage
    second = sdk.messages.create(**request).usage
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (4200, 0)
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, 4200)


def test_the_clock_directive_expires_the_cache(server: StandinServer) -> None:
    sdk = anthropic.Anthropic(api_key="test", base_url=server.url, max_retries=0, timeout=5)
    system: Any = [
        {
            "type": "text",
            "text": (f"{uuid.uuid4().hex} rules " * 3000)[: 4 * 4200],
            "cache_control": EPHEMERAL,
        }
    ]

    def ask(text: str) -> Any:
        return sdk.messages.create(
            model=HAIKU, max_tokens=8, system=system, messages=[{"role": "user", "content": text}]
        ).usage

    assert ask("first").cache_creation_input_tokens == 4200
    assert ask("four minutes later [standin:advance_clock=240]").cache_read_input_tokens == 4200
    late = ask("six minutes later [standin:advance_clock=360]")
    assert (late.cache_read_input_tokens, late.cache_creation_input_tokens) == (0, 4200)


def test_tools_come_first_in_the_prefix(server: StandinServer) -> None:
    sdk = anthropic.Anthropic(api_key="test", base_url=server.url, max_retries=0, timeout=5)
    system: Any = [
        {
            "type": "text",
            "text": (f"{uuid.uuid4().hex} rules " * 3000)[: 4 * 4200],
            "cache_control": EPHEMERAL,
        }
    ]
    tool: Any = {"name": "lookup", "description": "Looks things up.", "input_schema": {"type": "object"}}
    ask: dict[str, Any] = {
        "model": HAIKU,
        "max_tokens": 8,
        "system": system,
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert sdk.messages.create(**ask).usage.cache_creation_input_tokens == 4200
    # Another tool list is another prefix: the system prompt after it is written again, tools included.
    with_tool = sdk.messages.create(**ask, tools=[tool]).usage
    assert with_tool.cache_read_input_tokens == 0
    assert (with_tool.cache_creation_input_tokens or 0) > 4200


@pytest.fixture(scope="module")
def server() -> Iterator[StandinServer]:
    server = start_in_thread()
    yield server
    server.stop()

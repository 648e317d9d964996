"""Where the client puts prompt-cache breakpoints (claude_client.build_request's rule).

Each breakpoint must be one a later request can read: none under the model's
minimum cacheable length, the history's only when the prompt reaches it and
the next turn sends the same history, the system prompt's when it alone
reaches it.
"""

from __future__ import annotations

from typing import Any

import pytest

from claude_chat.chat_turn import _next_turn_sends_this_history
from claude_chat.claude_client import ClaudeClient, estimated_tokens, minimum_cacheable_tokens
from claude_chat.conversation_store import Slot, Turn
from claude_chat.sessions import TurnSession
from claude_chat.settings import Settings

EPHEMERAL = {"type": "ephemeral"}


def client(model: str = "claude-haiku-4-5", system_prompt: str = "") -> ClaudeClient:
    return ClaudeClient(Settings(claude_model=model, system_prompt=system_prompt), "test-key")


def chars(tokens: int) -> str:
    """Text the client estimates at exactly that many tokens."""
    return "x" * (4 * tokens)


def breakpoints(request: dict[str, Any]) -> list[str]:
    found = [f"system.{i}" for i, b in enumerate(request.get("system", [])) if "cache_control" in b]
    for index, message in enumerate(request["messages"]):
        content = message["content"]
        if isinstance(content, list):
            found += [f"messages.{index}" for b in content if "cache_control" in b]
    return found


def history(turns: int, tokens_each: int) -> list[Turn]:
    return [Turn(chars(tokens_each // 2), chars(tokens_each // 2)) for _ in range(turns)]


def test_the_minimums_per_model() -> None:
    assert minimum_cacheable_tokens("claude-haiku-4-5") == 4096
    assert minimum_cacheable_tokens("us.anthropic.claude-haiku-4-5-20251001-v1:0") == 4096
    assert minimum_cacheable_tokens("claude-sonnet-4-5-20250929") == 1024
    assert minimum_cacheable_tokens("claude-sonnet-4-6") == 1024
    assert minimum_cacheable_tokens("claude-opus-4-6") == 4096
    assert minimum_cacheable_tokens("some-future-model") == 4096  # unknown: the largest documented


def test_the_estimate_errs_low() -> None:
    assert estimated_tokens("x" * 4099) == 1024  # the stand-in (and the API, for such text) says 1,025


def test_a_short_chat_under_the_minimum_has_no_breakpoint() -> None:
    request = client().build_request(history(3, 400), chars(100), conversation=True)
    assert breakpoints(request) == []


def test_the_newest_message_is_marked_once_the_prompt_reaches_the_minimum() -> None:
    short = client().build_request(history(9, 400), chars(495), conversation=True)  # 4,095 tokens
    assert breakpoints(short) == []
    request = client().build_request(history(9, 400), chars(496), conversation=True)  # 4,096
    assert breakpoints(request) == ["messages.18"]
    assert request["messages"][-1]["content"][0]["cache_control"] == EPHEMERAL


def test_the_minimum_is_the_models() -> None:
    # 1,500 tokens: nothing for Haiku 4.5, the history breakpoint for Sonnet 4.5.
    assert breakpoints(client().build_request(history(2, 500), chars(500), conversation=True)) == []
    sonnet = client("claude-sonnet-4-5").build_request(history(2, 500), chars(500), conversation=True)
    assert breakpoints(sonnet) == ["messages.4"]


def test_the_system_prompt_counts_toward_the_history_breakpoint() -> None:
    # A 3,000-token system prompt is too short to cache alone, but the whole prefix is not.
    request = client(system_prompt=chars(3000)).build_request(history(2, 500), chars(100), conversation=True)
    assert breakpoints(request) == ["messages.4"]


def test_a_long_system_prompt_is_marked_even_for_a_stateless_turn() -> None:
    request = client(system_prompt=chars(5000)).build_request([], chars(5000), conversation=False)
    assert breakpoints(request) == ["system.0"]


def test_a_stateless_turn_marks_nothing_else() -> None:
    request = client(system_prompt=chars(100)).build_request([], chars(9000), conversation=False)
    assert breakpoints(request) == []


def test_a_long_conversation_with_a_long_system_prompt_has_two_breakpoints() -> None:
    request = client(system_prompt=chars(5000)).build_request(history(4, 400), chars(50), conversation=True)
    assert breakpoints(request) == ["system.0", "messages.8"]


def test_before_the_window_moves_the_turn_only_reads_what_the_previous_turn_wrote() -> None:
    # The next turn sends another history: no write past the history, but the previous turn's
    # breakpoint (on its own message, now messages[16]) is read.
    request = client().build_request(history(9, 1000), chars(50), conversation=True, history_kept=False)
    assert breakpoints(request) == ["messages.16"]
    assert request["messages"][16]["content"] == [
        {"type": "text", "text": chars(500), "cache_control": EPHEMERAL}
    ]
    # Under the minimum there is nothing to read either.
    request = client().build_request(history(9, 100), chars(50), conversation=True, history_kept=False)
    assert breakpoints(request) == []


@pytest.mark.parametrize(
    ("completed", "kept"),
    [
        (0, True),
        (8, True),
        (9, False),  # turn 10 sends all 9 earlier turns; turn 11 drops the first 5 (steps of 5)
        (10, True),
        (13, True),
        (14, False),
        (15, True),
    ],
)
def test_the_window_move_is_known_a_turn_ahead(completed: int, kept: bool) -> None:
    slot = Slot("s", 0, 1, completed + 1, completed)
    session = TurnSession(None, slot)  # type: ignore[arg-type] # the token plays no part
    assert _next_turn_sends_this_history(session, 9) is kept


def test_files_count_toward_the_breakpoint_by_their_low_estimate() -> None:
    """A short message with an image (about 1,600 tokens, estimated low) in a history of 2,600 tokens
    reaches Haiku's 4,096: the newest message is marked, and the file goes before the text."""
    from claude_chat.attachments import Attachment

    image = Attachment("i" * 22, "a.png", "image/png", 1000, 1616, 1600)
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    files = {image.id: (block, image.low)}
    without = client().build_request(history(5, 500), chars(100), conversation=True)
    assert breakpoints(without) == []
    request = client().build_request(
        history(5, 500), chars(100), conversation=True, files=files, attached=[image.id]
    )
    assert breakpoints(request) == [f"messages.{len(request['messages']) - 1}"]
    assert request["messages"][-1]["content"][0] is block
    # In the history, the file goes before its turn's text, and counts there too.
    past = [Turn(chars(100), chars(100), (image,)), *history(5, 500)]
    later = client().build_request(past, chars(100), conversation=True, files=files)
    assert later["messages"][0]["content"] == [block, {"type": "text", "text": chars(100)}]
    assert breakpoints(later) == [f"messages.{len(later['messages']) - 1}"]


def test_the_input_bound_counts_text_only_and_files_are_added_by_their_bills() -> None:
    block = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "A" * 9999},
    }
    request = client().build_request(
        (), "hi", conversation=True, files={"d" * 22: (block, 1500)}, attached=["d" * 22]
    )
    assert client().input_bound(request) == client().input_bound(
        client().build_request((), "hi", conversation=True)
    )

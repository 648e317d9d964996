"""`make bench`, section `caching`: what prompt caching saves, or costs, on realistic conversations.

The stand-in bills caching as the real API does (local/messages_standin/caching.py: the
model's minimum, the 5-minute lifetime, breakpoints), so the figures here are
the API's bill for these prompts, in "uncached input token equivalents"
(input + 1.25 x cache writes + 0.1 x cache reads). Each conversation is sent
three ways: without breakpoints ("none"), with our breakpoints
(ClaudeClient.build_request, the history window of turns_to_send as the chat
function sends it), and with the API's automatic caching instead (a top-level
`cache_control`). The time between turns is the stand-in's clock, moved
forward by the `[standin:advance_clock=...]` directive, so a 6-minute pause
costs nothing to measure. No backend is involved: the chat function's own
requests are exactly what build_request returns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import anthropic

from claude_chat.chat_turn import next_turn_sends_same_history
from claude_chat.claude_client import ClaudeClient, minimum_cacheable_tokens
from claude_chat.conversation_store import Turn, turns_to_send
from claude_chat.settings import Settings
from local.messages_standin import start_in_thread

WRITE = 1.25
READ = 0.1
MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6")
STRATEGIES = ("none", "ours", "automatic")
# A long system prompt: ~6,000 tokens (instructions, examples, a product manual), past every minimum.
LONG_SYSTEM_PROMPT_CHARS = 24_000
SHORT_SYSTEM_PROMPT_CHARS = 400


@dataclass(frozen=True)
class Scenario:
    name: str
    turns: int
    message_chars: int
    reply_words: int
    system_chars: int
    gap_seconds: float  # between one turn's reply and the next turn
    conversation: bool = True


SCENARIOS = (
    Scenario("short chat", 6, 200, 80, SHORT_SYSTEM_PROMPT_CHARS, 30),
    Scenario("short chat, long system prompt", 6, 200, 80, LONG_SYSTEM_PROMPT_CHARS, 30),
    Scenario("long chat", 30, 800, 250, SHORT_SYSTEM_PROMPT_CHARS, 30),
    Scenario("long chat, long system prompt", 30, 800, 250, LONG_SYSTEM_PROMPT_CHARS, 30),
    Scenario("long chat, 6 minutes between turns", 30, 800, 250, SHORT_SYSTEM_PROMPT_CHARS, 360),
    Scenario(
        "stateless turns, long system prompt", 10, 400, 150, LONG_SYSTEM_PROMPT_CHARS, 60, conversation=False
    ),
)
SMOKE_SCENARIOS = (
    Scenario("short chat", 3, 200, 20, SHORT_SYSTEM_PROMPT_CHARS, 30),
    Scenario("long chat", 8, 2000, 400, SHORT_SYSTEM_PROMPT_CHARS, 30),
)


def _text(tag: str, chars: int, what: str) -> str:
    return (f"{tag} {what}: some realistic words of context, detail and question. " * (chars // 40 + 1))[
        :chars
    ]


def _conversation(
    sdk: anthropic.Anthropic, model: str, scenario: Scenario, strategy: str, max_turns: int
) -> dict[str, Any]:
    tag = uuid.uuid4().hex  # every run its own prefixes: nothing is read from another run's cache
    settings = Settings(claude_model=model, system_prompt=_text(tag, scenario.system_chars, "system"))
    client = ClaudeClient(settings, "bench")
    done: list[Turn] = []
    totals = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    for index in range(scenario.turns):
        gap = f" [standin:advance_clock={scenario.gap_seconds:g}]" if index else ""
        message = (
            _text(f"{tag}-{index}", scenario.message_chars, "question")
            + f" [standin:words={scenario.reply_words}]{gap}"
        )
        completed = len(done) if scenario.conversation else 0
        history = done[completed - turns_to_send(completed, max_turns) :] if scenario.conversation else []
        request = client.build_request(
            history,
            message,
            conversation=scenario.conversation,
            history_kept=not scenario.conversation or next_turn_sends_same_history(completed, max_turns),
        )
        extra: dict[str, Any] = {}
        if strategy != "ours":
            request = _without_breakpoints(request)
        if strategy == "automatic":
            extra["extra_body"] = {"cache_control": {"type": "ephemeral"}}
        reply = sdk.messages.create(**request, **extra)
        for key in totals:
            totals[key] += getattr(reply.usage, key) or 0
        done.append(Turn(message, "".join(b.text for b in reply.content if b.type == "text")))
    equivalent = (
        totals["input_tokens"]
        + WRITE * totals["cache_creation_input_tokens"]
        + READ * totals["cache_read_input_tokens"]
    )
    return {**totals, "equivalent_input_tokens": equivalent}


def _without_breakpoints(request: dict[str, Any]) -> dict[str, Any]:
    def plain(blocks: Any) -> Any:
        if not isinstance(blocks, list):
            return blocks
        return [{k: v for k, v in b.items() if k != "cache_control"} for b in blocks]

    stripped = {**request, "messages": [{**m, "content": plain(m["content"])} for m in request["messages"]]}
    if "system" in request:
        stripped["system"] = plain(request["system"])
    return stripped


def measure(smoke: bool = False, max_turns: int | None = None) -> dict[str, Any]:
    """Every scenario, per model and strategy, against an in-process stand-in of its own."""
    server = start_in_thread()
    max_turns = Settings().history_max_turns if max_turns is None else max_turns
    try:
        sdk = anthropic.Anthropic(api_key="bench", base_url=server.url, max_retries=0, timeout=30)
        results: dict[str, Any] = {
            "max_history_turns": max_turns,
            "minimums": {model: minimum_cacheable_tokens(model) for model in MODELS},
            "scenarios": [],
        }
        for scenario in SMOKE_SCENARIOS if smoke else SCENARIOS:
            row: dict[str, Any] = {**scenario.__dict__, "models": {}}
            for model in MODELS:
                row["models"][model] = {
                    strategy: _conversation(sdk, model, scenario, strategy, max_turns)
                    for strategy in STRATEGIES
                }
            results["scenarios"].append(row)
        return results
    finally:
        server.stop()

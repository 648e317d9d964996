"""Thinking, web search and citations (issue 20, points 4 and 5) against `make dev` over HTTP.

The server thinks (THINKING_BUDGET_TOKENS) and may search (WEB_SEARCH_MAX_USES); the stand-in
answers as the Messages API does on the wire (thinking_delta and signature_delta, a server_tool_use
block and its web_search_tool_result, citations_delta before the text, and
usage.server_tool_use.web_search_requests), so the real SDK parses it all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from claude_chat.claude_client import ClaudeClient
from claude_chat.deadline import Deadline
from claude_chat.settings import Settings
from tests.dev_server import ROOT, DevServer, start_dev_server

pytestmark = pytest.mark.integration

MAX_TOKENS, BUDGET, MAX_USES = 512, 2048, 2
SEARCHING = "What of the tides? [standin:search=tides]"


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    started = start_dev_server(
        THINKING_BUDGET_TOKENS=str(BUDGET),
        WEB_SEARCH_MAX_USES=str(MAX_USES),
        WEB_SEARCH_BLOCKED_DOMAINS="spam.example",
        MAX_TOKENS=str(MAX_TOKENS),
        RATE_LIMIT_MAX="50",
        DAILY_BUDGET_USD="5",
        DAILY_TOKEN_BUDGET="1000000",  # a turn reserves a context window (200,000) per search it may run
    )
    yield started
    started.stop()


def stream(client: httpx.Client, path: str, body: dict[str, Any], **headers: str) -> list[dict[str, Any]]:
    with client.stream("POST", path, json=body, headers=headers) as response:
        assert response.status_code == 200, response.read()
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]


def kind_of(event: dict[str, Any]) -> str:
    return next((k for k in ("thinking", "search", "done", "citations") if k in event), "text")


def last_request(server: DevServer) -> dict[str, Any]:
    body: dict[str, Any] = server.standin_requests()[-1]["body"]
    return body


def test_a_streamed_turn_thinks_first_announces_its_search_and_cites_on_the_text(server: DevServer) -> None:
    events = stream(server.client(), "/api/chat/history/stream", {"message": SEARCHING, "conversation": "t"})
    assert all("text" in event for event in events)  # a client of the seed guide appends `text`
    kinds = [kind_of(event) for event in events]
    first_other = next(i for i, kind in enumerate(kinds) if kind != "thinking")
    assert kinds[:first_other] and set(kinds[:first_other]) == {"thinking"}  # thinking streams first
    assert "".join(e["thinking"] for e in events if "thinking" in e) == "Thinking about: What of the tides?"
    assert [e["search"] for e in events if "search" in e] == [{"query": "tides"}]
    assert all(e["text"] == "" for e in events if "thinking" in e or "search" in e)
    cited = [e for e in events if "citations" in e]
    assert len(cited) == 1 and cited[0]["text"] == "Stand-in "  # on the text that uses them
    assert cited[0]["citations"] == [
        {
            "cited_text": "What the web says about tides.",
            "url": "https://standin.example/tides/1",
            "title": "Result 1 for tides",
        }
    ]
    assert "".join(e["text"] for e in events) == "Stand-in reply to: What of the tides?"
    done = events[-1]
    assert done["done"] is True
    assert done["usage"]["web_search_requests"] == 1
    # What Claude was asked: a thinking budget on top of MAX_TOKENS, and the search tool.
    sent = last_request(server)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": BUDGET}
    assert sent["max_tokens"] == MAX_TOKENS + BUDGET
    assert sent["tools"] == [
        {
            "type": "web_search_20250305",
            "name": "web_search",
            "max_uses": MAX_USES,
            "blocked_domains": ["spam.example"],
        }
    ]


def test_history_keeps_thinking_and_citations_and_claude_gets_back_only_the_text(server: DevServer) -> None:
    client = server.client()
    events = stream(client, "/api/chat/history/stream", {"message": SEARCHING, "conversation": "h"})
    session = events[-1]["session"]
    messages = client.get("/api/conversations/h", headers={"X-Session-Id": session}).json()["messages"]
    assert messages[0] == {"role": "user", "content": SEARCHING}  # no thinking or citations on it
    assert messages[1]["thinking"] == "Thinking about: What of the tides?"
    assert messages[1]["citations"][0]["url"] == "https://standin.example/tides/1"
    stream(
        client,
        "/api/chat/history/stream",
        {"message": "And now?", "conversation": "h"},
        **{"X-Session-Id": session},
    )
    sent = last_request(server)["messages"]
    # The earlier reply goes back as its text alone: valid (no unsigned thinking) and cheap.
    assert sent[1] == {"role": "assistant", "content": "Stand-in reply to: What of the tides?"}
    exported = client.get(
        "/api/conversations/h/export", params={"format": "markdown"}, headers={"X-Session-Id": session}
    ).text
    assert "> **Thinking**\n>\n> Thinking about: What of the tides?" in exported
    assert "[Result 1 for tides](<https://standin.example/tides/1>)" in exported
    as_json = client.get(
        "/api/conversations/h/export", params={"format": "json"}, headers={"X-Session-Id": session}
    ).json()
    assert as_json["messages"][1]["citations"][0]["title"] == "Result 1 for tides"
    assert "thinking" not in as_json["messages"][2]  # user messages carry neither


def test_a_plain_reply_carries_thinking_citations_and_its_searches_are_priced(server: DevServer) -> None:
    client = server.client()
    reply = client.post("/api/chat", json={"message": "[standin:search=moon|sun|stars] Sky?"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["thinking"] == "Thinking about: Sky?"
    assert [c["url"] for c in body["citations"]] == [
        "https://standin.example/moon/1",
        "https://standin.example/sun/1",
    ]  # the third search was past max_uses: refused by the API, not run, not billed
    usage = body["usage"]
    assert usage["web_search_requests"] == MAX_USES
    spent = client.get("/api/usage").json()["money"]["spent"]
    tokens = usage["input_tokens"] * 1000 + usage["output_tokens"] * 5000  # Claude Haiku 4.5, nano-USD
    assert spent == round((tokens + MAX_USES * 10_000_000) / 1e9, 6)  # $10 per 1,000 searches


def test_a_reply_without_thinking_or_sources_has_neither_field(server: DevServer) -> None:
    body = server.client().post("/api/chat", json={"message": "Hi"}).json()
    assert "citations" not in body
    assert body["thinking"] == "Thinking about: Hi"


@pytest.mark.parametrize("package", ["ai-v5-0", "ai-v5", "ai-v6", "ai-v7"])
def test_the_ai_sdk_builds_reasoning_and_source_parts(server: DevServer, package: str) -> None:
    node = shutil.which("node")
    assert node, "node is needed (make install runs npm ci)"
    command = [
        node,
        str(ROOT / "tests" / "aisdk" / "parts.mjs"),
        "--package",
        package,
        "--base",
        server.base_url,
        "--text",
        SEARCHING,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert (seen["status"], seen["error"]) == ("ready", None)
    parts = [part for part in seen["parts"] if part["type"] != "step-start"]
    assert parts == [
        {"type": "reasoning", "text": "Thinking about: What of the tides?", "state": "done"},
        {
            "type": "source-url",
            "sourceId": "source-1",
            "url": "https://standin.example/tides/1",
            "title": "Result 1 for tides",
        },
        {"type": "text", "text": "Stand-in reply to: What of the tides?", "state": "done"},
    ]


@pytest.mark.parametrize("path", ["/api/chat/history/stream", "/api/chat/ui"])
def test_thinking_search_and_citation_events_match_the_description(server: DevServer, path: str) -> None:
    client = server.client()
    document = client.get("/api/openapi.json").json()
    media = document["paths"][path]["post"]["responses"]["200"]["content"]["text/event-stream"]
    validator = jsonschema.Draft202012Validator({**media["x-events"], "components": document["components"]})
    body: dict[str, Any] = {"message": SEARCHING, "conversation": "described"}
    if path == "/api/chat/ui":
        body = {
            "id": "described-ui",
            "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": SEARCHING}]}],
            "trigger": "submit-message",
        }
    events = stream(client, path, body)
    kinds = {event.get("type") or kind_of(event) for event in events}
    expected = (
        {"reasoning-start", "reasoning-delta", "reasoning-end", "data-search", "source-url"}
        if path == "/api/chat/ui"
        else {"thinking", "search", "citations"}
    )
    assert expected <= kinds
    for event in events:
        validator.validate(event)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 1000}}, "greater than or equal to 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 2048}, "must be greater"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}, "model": "claude-opus-4-7"}, "adaptive"),
        ({"messages": [{"role": "user", "content": "[standin:search=x]"}]}, "needs the web_search tool"),
    ],
)
def test_the_standin_refuses_what_the_api_refuses(
    server: DevServer, extra: dict[str, Any], message: str
) -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }
    response = httpx.post(f"{server.standin_url}/v1/messages", json=body, headers={"x-api-key": "k"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert message in response.json()["error"]["message"]


def test_adaptive_thinking_asks_for_its_text_which_opus_4_7_on_would_omit(server: DevServer) -> None:
    settings = Settings(
        anthropic_api_key="k",
        anthropic_base_url=server.standin_url,
        claude_model="claude-opus-4-7",
        thinking_budget_tokens=BUDGET,
    )
    claude = ClaudeClient(settings, "k")
    request = claude.build_request([], "Why?", conversation=False)
    assert request["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert request["max_tokens"] == settings.max_tokens + BUDGET
    assert claude.complete(request, Deadline.after(10)).thinking == "Thinking about: Why?"
    # Left to the model's default, the thinking comes as its signature alone: nothing to show.
    bare = {**request, "thinking": {"type": "adaptive"}}
    assert claude.complete(bare, Deadline.after(10)).thinking == ""


def test_redacted_thinking_is_passed_over_and_the_rest_of_the_reply_kept(server: DevServer) -> None:
    events = stream(server.client(), "/api/chat/stream", {"message": "Hmm [standin:redacted=1]"})
    assert "".join(e["thinking"] for e in events if "thinking" in e) == "Thinking about: Hmm"
    assert "".join(e["text"] for e in events) == "Stand-in reply to: Hmm"
    assert events[-1]["done"] is True

"""Prompt caching over `make dev`, billed by the stand-in as the real API bills it.

Claude Haiku 4.5 (the default model) caches nothing under 4,096 tokens: a short
chat must never pay for a cache write, and a long one must read its history
from the cache once it has passed that minimum.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.dev_server import DevServer


def _conversation(dev_server: DevServer, messages: list[str]) -> list[dict[str, Any]]:
    token, usages = None, []
    for message in messages:
        headers = {"X-Session-Id": token} if token else {}
        client = dev_server.client()  # each turn from its own IP: this test is not about the budget
        response = client.post("/api/chat/history", json={"message": message}, headers=headers)
        assert response.status_code == 200, response.text
        token = response.json()["session"]
        usages.append(response.json()["usage"])
    return usages


def test_a_short_chat_never_writes_to_the_cache(dev_server: DevServer) -> None:
    tag = uuid.uuid4().hex
    usages = _conversation(dev_server, [f"{tag} short question {n}" for n in range(8)])
    assert all(u["cache_creation_input_tokens"] == u["cache_read_input_tokens"] == 0 for u in usages), usages
    sent = [r["body"] for r in dev_server.standin_requests() if tag in str(r["body"])]
    assert len(sent) == 8 and "cache_control" not in str(sent)


def test_a_long_chat_reads_from_the_cache_once_past_the_minimum(dev_server: DevServer) -> None:
    tag = uuid.uuid4().hex
    # ~1,500 characters a message, echoed back: ~750 tokens a turn, past 4,096 at the sixth turn.
    messages = [(f"{tag} turn {n} brings a long paragraph of context. " * 40)[:1500] for n in range(9)]
    usages = _conversation(dev_server, messages)
    first_write = next(i for i, u in enumerate(usages) if u["cache_creation_input_tokens"])
    assert first_write >= 4, usages  # nothing under the minimum
    assert all(
        u["cache_creation_input_tokens"] == u["cache_read_input_tokens"] == 0 for u in usages[:first_write]
    )
    assert usages[first_write]["cache_read_input_tokens"] == 0
    assert usages[first_write]["cache_creation_input_tokens"] >= 4096
    later = usages[first_write + 1 :]
    assert later and all(u["cache_read_input_tokens"] >= 4096 for u in later), usages
    # Each later turn writes only its own new part (the previous reply and its message), not the history.
    assert all(u["cache_creation_input_tokens"] < 1000 for u in later), usages

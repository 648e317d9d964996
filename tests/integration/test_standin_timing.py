"""The benchmarks' stand-in: its timing profile and per-request timing records, which they subtract."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from local.messages_standin import StandinServer
from tests.benchmarks.timed_standin import TimedStandin, TimingProfile, start_in_thread

FIRST_TOKEN, INTERVAL = 0.15, 0.03


@pytest.fixture(scope="module")
def server() -> Iterator[StandinServer]:
    server = start_in_thread(profile=TimingProfile(FIRST_TOKEN, INTERVAL))
    yield server
    server.stop()


@pytest.fixture
def sdk(server: StandinServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", base_url=server.url, max_retries=0, timeout=10)


def ask(text: str) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}


def record_of(server: StandinServer, marker: str) -> dict[str, Any]:
    records = httpx.get(f"{server.url}/_standin/requests").json()
    return next(r for r in records if marker in str(r["body"]))


def test_profile_comes_from_the_environment() -> None:
    assert TimingProfile.from_env({}) == TimingProfile()
    profile = TimingProfile.from_env({"STANDIN_FIRST_TOKEN_MS": "400", "STANDIN_TOKEN_INTERVAL_MS": "15"})
    assert profile == TimingProfile(0.4, 0.015)
    with pytest.raises(ValueError, match="negative"):
        TimingProfile.from_env({"STANDIN_TOKEN_INTERVAL_MS": "-1"})


def test_a_standin_reads_its_profile_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FIRST_TOKEN_MS", "250")
    assert TimedStandin().profile == TimingProfile(0.25, 0.0)


def test_a_stream_is_paced_and_timed_as_sent(sdk: anthropic.Anthropic, server: StandinServer) -> None:
    marker = uuid.uuid4().hex
    arrivals: list[float] = []
    with sdk.messages.stream(**ask(f"{marker} [standin:words=5]")) as stream:
        for _ in stream.text_stream:
            arrivals.append(time.time())
    timing = record_of(server, marker)["timing"]
    sent = [at for at, _chars in timing["deltas"]]
    assert len(sent) == len(arrivals) == 5
    assert timing["received"] <= timing["headers_sent"] <= timing["first_delta"] == sent[0]
    assert sent[0] - timing["received"] >= FIRST_TOKEN
    assert all(later - earlier >= INTERVAL * 0.9 for earlier, later in itertools.pairwise(sent))
    assert timing["last_delta"] == sent[-1] <= timing["done"]
    # TCP_NODELAY: each delta reaches the client at once, not after a delayed ACK (~40 ms).
    assert max(arrival - at for arrival, at in zip(arrivals, sent, strict=True)) < 0.02


def test_a_directive_overrides_the_profile_interval(sdk: anthropic.Anthropic, server: StandinServer) -> None:
    marker = uuid.uuid4().hex
    with sdk.messages.stream(**ask(f"{marker} [standin:words=5][standin:delta_delay=0]")) as stream:
        stream.get_final_message()
    sent = [at for at, _chars in record_of(server, marker)["timing"]["deltas"]]
    assert sent[-1] - sent[0] < INTERVAL * 2


def test_a_buffered_reply_waits_as_long_as_its_stream(
    sdk: anthropic.Anthropic, server: StandinServer
) -> None:
    marker = uuid.uuid4().hex
    message = sdk.messages.create(**ask(f"{marker} [standin:words=4]"))
    record = record_of(server, marker)
    timing = record["timing"]
    assert timing["done"] - timing["received"] >= FIRST_TOKEN + 3 * INTERVAL
    assert timing["deltas"] == []
    assert record["usage"]["output_tokens"] == message.usage.output_tokens == 4

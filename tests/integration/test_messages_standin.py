"""The Messages-API stand-in, driven by the real anthropic SDK.

The point of the stand-in is that the SDK's own code path (auth headers, JSON
and SSE parsing, error classes, timeouts) runs against it, so these tests go
through `anthropic.Anthropic` wherever the SDK can express the request.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from local.messages_standin import StandinServer, start_in_thread

MODEL = "claude-haiku-4-5"
EPHEMERAL = {"type": "ephemeral"}


@pytest.fixture(scope="module")
def server() -> Iterator[StandinServer]:
    server = start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def sdk(server: StandinServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", base_url=server.url, max_retries=0, timeout=5)


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": text}], **extra}


def post(server: StandinServer, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/messages", json=body, headers={"x-api-key": "k", **headers}, timeout=5
    )


def test_create_returns_the_deterministic_message(sdk, server) -> None:
    raw = sdk.messages.with_raw_response.create(**ask("Hello   there,\n friend [standin:delta_delay=0]"))
    message = raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == ("message", "assistant", MODEL)
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Stand-in reply to: Hello there, friend"
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    text = "Hello   there,\n friend [standin:delta_delay=0]"
    assert message.usage.input_tokens == -(-len(text) // 4)
    assert message.usage.output_tokens == 6
    assert (message.usage.cache_creation_input_tokens, message.usage.cache_read_input_tokens) == (0, 0)


def test_the_wire_format_is_the_real_one(server) -> None:
    body = post(server, ask("hi")).json()
    assert set(body) == {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
    assert set(body["usage"]) == {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
    }


def test_later_turns_say_their_number_and_system_counts_as_input(sdk) -> None:
    messages = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
    ]
    reply = sdk.messages.create(model=MODEL, max_tokens=64, system="Be brief please", messages=messages)
    assert reply.content[0].text == "Stand-in reply to: two (turn 2)"
    assert reply.usage.input_tokens == 4 + 1 + 2 + 1  # ceil(len / 4), at least 1 per block


def test_a_stream_yields_each_word_then_the_final_message(sdk) -> None:
    with sdk.messages.stream(**ask("stream me please")) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    deltas = ["Stand-in ", "reply ", "to: ", "stream ", "me ", "please"]
    assert events[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events.count("content_block_delta") == len(deltas)
    assert final.content[0].text == "".join(deltas)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(deltas)
    with sdk.messages.stream(**ask("stream me please")) as stream:
        assert list(stream.text_stream) == deltas


def test_the_raw_stream_has_event_lines_and_a_ping(server) -> None:
    with httpx.stream(
        "POST", f"{server.url}/v1/messages", json=ask("a b", stream=True), headers={"x-api-key": "k"}
    ) as response:
        text = response.read().decode()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"].startswith("req_")
    names = [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event: ")]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_max_tokens_cuts_the_reply(sdk) -> None:
    message = sdk.messages.create(**{**ask("x [standin:words=50]"), "max_tokens": 7})
    assert message.content[0].text == "Stand-in reply to: x w1 w2 w3"
    assert (message.stop_reason, message.usage.output_tokens) == ("max_tokens", 7)
    with sdk.messages.stream(**{**ask("x [standin:words=50]"), "max_tokens": 7}) as stream:
        assert len(list(stream.text_stream)) == 7
        assert stream.get_final_message().stop_reason == "max_tokens"


def test_words_makes_a_reply_of_exactly_that_length(sdk) -> None:
    message = sdk.messages.create(**{**ask("x [standin:words=300]"), "max_tokens": 1000})
    words = message.content[0].text.split()
    assert len(words) == 300
    assert words[4:6] == ["w1", "w2"]
    assert words[-1] == "w296"


def test_echo_raw_replies_with_the_text_itself_newlines_kept(sdk) -> None:
    text = "# Title\n\n- one\n- two\n\n```py\nprint(1)\n```"
    with sdk.messages.stream(**ask(f"[standin:echo=raw] {text}")) as stream:
        deltas = list(stream.text_stream)
    assert "".join(deltas) == text
    assert len(deltas) == len(text.split())
    message = sdk.messages.create(**{**ask(f"{text} [standin:echo=raw]"), "max_tokens": 3})
    assert (message.content[0].text, message.stop_reason) == ("# Title\n\n- ", "max_tokens")


def test_echo_must_be_a_known_mode(server) -> None:
    response = post(server, ask("x [standin:echo=loud]"))
    assert response.status_code == 400
    assert "echo" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
    ],
)
def test_injected_errors_are_the_real_error_responses(sdk, status, error_class, error_type) -> None:
    with pytest.raises(error_class) as raised:
        sdk.messages.create(**ask(f"x [standin:status={status}]"))
    assert raised.value.status_code == status
    assert raised.value.request_id == raised.value.response.headers["request-id"]
    assert raised.value.request_id.startswith("req_")
    assert raised.value.body["error"]["type"] == error_type
    assert raised.value.body["type"] == "error"
    if status == 429:
        assert raised.value.response.headers["retry-after"] == "7"


def test_a_rate_limit_carries_the_requested_retry_after(sdk) -> None:
    with pytest.raises(anthropic.RateLimitError) as raised:
        sdk.messages.create(**ask("x [standin:status=429][standin:retry_after=3]"))
    assert raised.value.response.headers["retry-after"] == "3"


def test_overloaded_is_an_internal_server_error_to_the_sdk() -> None:
    assert issubclass(anthropic.OverloadedError, anthropic.InternalServerError)


def test_a_mid_stream_error_raises_during_iteration(sdk) -> None:
    received: list[str] = []
    with (
        sdk.messages.stream(**ask("a b c d [standin:fail_after=2]")) as stream,
        pytest.raises(anthropic.APIStatusError) as raised,
    ):
        received.extend(stream.text_stream)
    assert received == ["Stand-in ", "reply "]
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def test_fail_after_without_a_stream_is_a_529(sdk) -> None:
    with pytest.raises(anthropic.OverloadedError):
        sdk.messages.create(**ask("a b c d [standin:fail_after=2]"))


def test_a_dropped_stream_raises_during_iteration(sdk) -> None:
    received: list[str] = []
    # Mid-stream, the SDK lets httpx2's transport error through unwrapped (at connect time it wraps it).
    with (
        sdk.messages.stream(**ask("a b c d [standin:drop_after=2]")) as stream,
        pytest.raises((anthropic.APIError, httpx2.TransportError)),
    ):
        received.extend(stream.text_stream)
    assert received == ["Stand-in ", "reply "]


def test_a_dropped_plain_response_is_a_connection_error(sdk) -> None:
    with pytest.raises(anthropic.APIConnectionError):
        sdk.messages.create(**ask("a b c d [standin:drop_after=2]"))


def test_a_slow_answer_times_the_client_out(server) -> None:
    impatient = anthropic.Anthropic(api_key="test", base_url=server.url, max_retries=0, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        impatient.messages.create(**ask("x [standin:delay=2]"))
    assert time.monotonic() - started < 1.5


def test_deltas_arrive_spread_over_time(sdk) -> None:
    arrivals = []
    with sdk.messages.stream(**ask("a b [standin:delta_delay=0.1]")) as stream:
        for _ in stream.text_stream:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 5
    assert arrivals[-1] - arrivals[0] > 0.3


def test_a_client_that_leaves_early_is_seen_leaving(sdk, server) -> None:
    marker = uuid.uuid4().hex
    with sdk.messages.stream(**ask(f"{marker} [standin:words=40][standin:delta_delay=0.05]")) as stream:
        for index, _ in enumerate(stream.text_stream):
            if index == 2:
                break
    left = time.time()
    request_id = next(r["request_id"] for r in server.standin.requests if marker in str(r["body"]))
    deadline = time.monotonic() + 1
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not seen:
        seen = [
            d for d in httpx.get(f"{server.url}/_standin/disconnects").json() if d["request_id"] == request_id
        ]
        time.sleep(0.02)
    assert seen, "the stand-in never saw the client go"
    assert 3 <= seen[0]["disconnected_at_delta"] < 40
    assert seen[0]["disconnected_at"] - left < 1.0


def test_a_finished_stream_is_not_a_disconnect(sdk, server) -> None:
    marker = uuid.uuid4().hex
    with sdk.messages.stream(**ask(marker)) as stream:
        stream.get_final_message()
    time.sleep(0.1)
    request_id = next(r["request_id"] for r in server.standin.requests if marker in str(r["body"]))
    assert all(d["request_id"] != request_id for d in server.standin.disconnects)


def marked(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": [{"type": "text", "text": text, "cache_control": EPHEMERAL}]}


# Claude Haiku 4.5 caches nothing under 4,096 tokens: 4,200 tokens' worth of characters.
LONG = 4 * 4200


def test_a_longer_chat_reads_its_earlier_turns_from_the_cache(sdk) -> None:
    first_text = (f"{uuid.uuid4().hex} remember this " * 1000)[:LONG]
    first = sdk.messages.create(model=MODEL, max_tokens=64, messages=[marked("user", first_text)])
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation_input_tokens == -(-len(first_text) // 4)
    assert first.usage.input_tokens == 0
    second = sdk.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[
            {"role": "user", "content": first_text},  # the breakpoint moved on; the prefix is the same
            {"role": "assistant", "content": first.content[0].text},
            marked("user", "and then?"),
        ],
    )
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == -(-len(first.content[0].text) // 4) + 3
    assert second.usage.input_tokens == 0


def test_tokens_after_the_last_breakpoint_are_plain_input(sdk) -> None:
    text = (f"{uuid.uuid4().hex} system prompt " * 1000)[:LONG]
    system = [{"type": "text", "text": text, "cache_control": EPHEMERAL}]
    usages = [
        sdk.messages.create(
            model=MODEL, max_tokens=64, system=system, messages=ask("12345678")["messages"]
        ).usage
        for _ in range(2)
    ]
    assert (usages[0].cache_read_input_tokens, usages[0].cache_creation_input_tokens) == (0, 4200)
    assert (usages[1].cache_read_input_tokens, usages[1].cache_creation_input_tokens) == (4200, 0)
    assert usages[0].input_tokens == usages[1].input_tokens == 2


def test_a_different_model_does_not_share_the_cache(sdk) -> None:
    messages = [marked("user", (f"{uuid.uuid4().hex} shared prefix " * 1000)[:LONG])]
    sdk.messages.create(model=MODEL, max_tokens=64, messages=messages)
    other = sdk.messages.create(model="standin-other-model", max_tokens=64, messages=messages)
    assert other.usage.cache_read_input_tokens == 0


def test_without_breakpoints_everything_is_input(sdk) -> None:
    for _ in range(2):
        usage = sdk.messages.create(**ask("no breakpoint here")).usage
        assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (0, 0)
        assert usage.input_tokens == 5


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        ({"model": MODEL, "max_tokens": 5}, "messages"),
        ({"model": MODEL, "max_tokens": 5, "messages": []}, "messages"),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        ({**ask("hi"), "max_tokens": 0}, "max_tokens"),
        ({**ask("hi"), "max_tokens": "5"}, "max_tokens"),
        (ask("   \n "), "non-whitespace"),
        (ask(""), "non-empty"),
        ({**ask("hi"), "messages": [{"role": "user", "content": [{"type": "text", "text": " "}]}]}, "text"),
        ({**ask("hi"), "messages": [{"role": "assistant", "content": "hi"}]}, '"user" role'),
        (ask("x [standin:nonsense=1]"), "directive"),
        (ask("x [standin:delay=soon]"), "directive"),
    ],
)
def test_invalid_requests_get_a_real_400(server, body, message_part) -> None:
    response = post(server, body)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert message_part in error["error"]["message"]
    assert error["request_id"] == response.headers["request-id"]


def test_the_sdk_sees_a_bad_request_as_bad_request_error(sdk) -> None:
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "assistant", "content": "hi"}])


def test_a_request_without_a_key_is_a_401(server) -> None:
    response = httpx.post(f"{server.url}/v1/messages", json=ask("hi"), timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["request-id"] == response.json()["request_id"]


def test_requests_are_recorded_without_the_key(sdk, server) -> None:
    marker = uuid.uuid4().hex
    sdk.messages.create(**ask(marker))
    recorded = httpx.get(f"{server.url}/_standin/requests").json()
    mine = [r for r in recorded if marker in str(r["body"])]
    assert len(mine) == 1
    assert mine[0]["body"] == ask(marker)
    assert mine[0]["has_api_key"] is True
    assert "test" not in str(mine[0]["headers"])
    assert httpx.delete(f"{server.url}/_standin/requests").json() == []
    assert httpx.get(f"{server.url}/_standin/requests").json() == []
    sdk.messages.create(**ask("one"))
    sdk.messages.create(**ask("two"))
    bodies = [r["body"] for r in httpx.get(f"{server.url}/_standin/requests").json()]
    assert bodies == [ask("one"), ask("two")]

"""The Messages-API stand-in, driven by the real anthropic SDK: the wire protocol must be the real one."""

from __future__ import annotations

import time

import anthropic
import httpx
import httpx2
import pytest

MODEL = "claude-haiku-4-5"


@pytest.fixture
def sdk(standin) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", base_url=standin.url, max_retries=0, timeout=5)


def ask(text: str, **extra) -> dict:
    return {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": text}], **extra}


def test_a_plain_reply_is_a_real_message(sdk) -> None:
    message = sdk.messages.create(**ask("Hello there"))
    assert message.type == "message"
    assert message.content[0].text == "Stand-in reply to: Hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 5
    assert message.usage.input_tokens >= 1


def test_later_turns_say_their_number(sdk) -> None:
    messages = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": "two"},
    ]
    reply = sdk.messages.create(model=MODEL, max_tokens=64, messages=messages)
    assert reply.content[0].text == "Stand-in reply to: two (turn 2)"


def test_a_stream_yields_each_word_then_the_final_message(sdk) -> None:
    with sdk.messages.stream(**ask("stream me please")) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert deltas == ["Stand-in ", "reply ", "to: ", "stream ", "me ", "please"]
    assert final.content[0].text == "Stand-in reply to: stream me please"
    assert final.stop_reason == "end_turn"


def test_deltas_are_spread_over_time(sdk) -> None:
    arrivals = []
    with sdk.messages.stream(**ask("a b [standin:delta_delay=0.1]")) as stream:
        for _ in stream.text_stream:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 5
    assert arrivals[-1] - arrivals[0] >= 0.35


def test_max_tokens_cuts_the_reply(sdk) -> None:
    message = sdk.messages.create(**{**ask("x [standin:words=50]"), "max_tokens": 7})
    assert len(message.content[0].text.split()) == 7
    assert message.stop_reason == "max_tokens"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (429, anthropic.RateLimitError),
        (529, anthropic.InternalServerError),
        (500, anthropic.InternalServerError),
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
    ],
)
def test_injected_errors_are_the_real_error_responses(sdk, status, error_class) -> None:
    with pytest.raises(error_class) as raised:
        sdk.messages.create(**ask(f"x [standin:status={status}][standin:retry_after=3]"))
    assert raised.value.status_code == status
    assert raised.value.request_id.startswith("req_")
    if status == 429:
        assert raised.value.response.headers["retry-after"] == "3"


def test_a_mid_stream_error_reaches_the_sdk(sdk) -> None:
    received = []
    with (
        pytest.raises(anthropic.APIStatusError),
        sdk.messages.stream(**ask("a b c d [standin:fail_after=2]")) as s,
    ):
        received.extend(s.text_stream)
    assert received == ["Stand-in ", "reply "]


def test_a_dropped_stream_is_an_error_not_a_short_reply(sdk) -> None:
    def read_to_the_end() -> None:
        with sdk.messages.stream(**ask("a b c d [standin:drop_after=2]")) as stream:
            list(stream.text_stream)
            stream.get_final_message()

    with pytest.raises((anthropic.APIError, httpx2.HTTPError)):
        read_to_the_end()


def test_a_slow_answer_times_the_client_out(standin) -> None:
    impatient = anthropic.Anthropic(api_key="test", base_url=standin.url, max_retries=0, timeout=0.5)
    with pytest.raises(anthropic.APITimeoutError):
        impatient.messages.create(**ask("x [standin:delay=2]"))


def test_bad_requests_get_the_real_error_shape(standin) -> None:
    response = httpx.post(
        f"{standin.url}/v1/messages", headers={"x-api-key": "k"}, json={"model": MODEL, "max_tokens": 5}
    )
    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"
    unauthenticated = httpx.post(f"{standin.url}/v1/messages", json=ask("hi"))
    assert unauthenticated.status_code == 401
    blank = httpx.post(f"{standin.url}/v1/messages", headers={"x-api-key": "k"}, json=ask("   "))
    assert blank.status_code == 400


def test_a_repeated_prefix_is_billed_as_a_cache_read(sdk) -> None:
    def marked(text: str) -> dict:
        return {
            "role": "user",
            "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}],
        }

    first = sdk.messages.create(model=MODEL, max_tokens=64, messages=[marked("cache me " * 40)])
    second = sdk.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[
            {"role": "user", "content": "cache me " * 40},
            {"role": "assistant", "content": "ok"},
            marked("next"),
        ],
    )
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation_input_tokens >= 80
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    plain = sdk.messages.create(**ask("no breakpoint here"))
    assert (plain.usage.cache_read_input_tokens, plain.usage.cache_creation_input_tokens) == (0, 0)


def test_a_client_that_leaves_is_seen_leaving(sdk, standin) -> None:
    with sdk.messages.stream(**ask("x [standin:words=40][standin:delta_delay=0.05]")) as stream:
        for index, _ in enumerate(stream.text_stream):
            if index == 2:
                break
    left = time.monotonic()
    deadline = left + 2
    while time.monotonic() < deadline and not standin.standin.disconnects:
        time.sleep(0.02)
    assert standin.standin.disconnects, "the stand-in never saw the client go"
    assert standin.standin.disconnects[-1]["disconnected_at_delta"] < 40
    assert time.monotonic() - left < 1.0

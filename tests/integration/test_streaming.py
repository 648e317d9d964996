"""The streaming routes over real HTTP against `make dev`: events as they happen, in the contract's format."""

from __future__ import annotations

import itertools
import json
import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def read_events(response: httpx.Response) -> list[tuple[float, str]]:
    """(arrival time, data) for each event, read off the wire as it comes."""
    events, buffer = [], ""
    for chunk in response.iter_text():
        buffer += chunk
        while "\n\n" in buffer:
            raw, buffer = buffer.split("\n\n", 1)
            assert raw.startswith("data: "), raw
            assert "\n" not in raw  # one data line per event
            events.append((time.monotonic(), raw.removeprefix("data: ")))
    assert buffer == ""
    return events


def stream(client: httpx.Client, path: str, message: str, **headers: str) -> tuple[httpx.Response, list]:
    with client.stream("POST", path, json={"message": message}, headers=headers) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        return response, read_events(response)


def test_a_stateless_stream_in_the_contract_format(client) -> None:
    response, events = stream(client, "/api/chat/stream", "Hello stream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-length" not in response.headers
    assert response.headers["ratelimit-remaining"] == "4"
    data = [payload for _, payload in events]
    assert data[-1] == "[DONE]"
    parsed = [json.loads(payload) for payload in data[:-1]]
    assert all("text" in event for event in parsed)
    assert "".join(event["text"] for event in parsed) == "Stand-in reply to: Hello stream"
    final = parsed[-1]
    assert final["text"] == ""
    assert final["done"] is True
    assert final["stop_reason"] == "end_turn"
    assert final["usage"]["output_tokens"] == 5
    assert "session" not in final


def test_events_arrive_as_claude_sends_them(client) -> None:
    # 12 words, 0.15 s apart at the stand-in: a buffered reply would arrive all at once at the end.
    started = time.monotonic()
    _, events = stream(client, "/api/chat/stream", "x [standin:words=12][standin:delta_delay=0.15]")
    text_times = [at for at, payload in events if payload != "[DONE]" and json.loads(payload)["text"]]
    assert len(text_times) == 12
    last_delta_earliest = text_times[0] + 11 * 0.15 * 0.8
    assert text_times[0] - started < 1.0
    assert text_times[-1] >= last_delta_earliest  # the first event came long before the last was sent
    gaps = [later - earlier for earlier, later in itertools.pairwise(text_times)]
    assert sum(gap > 0.05 for gap in gaps) >= 9


def test_a_session_stream_then_its_history(client) -> None:
    first = client.post("/api/chat/history", json={"message": "plain first"}).json()
    token = first["session"]
    response, events = stream(
        client, "/api/chat/history/stream", "streamed second", **{"X-Session-Id": token}
    )
    assert response.headers["x-session-id"] == token
    final = json.loads(events[-2][1])
    assert (final["done"], final["turns"], final["session"]) == (True, 2, token)
    history = client.get("/api/chat/history", headers={"X-Session-Id": token}).json()
    assert history["turns"] == 2
    assert history["messages"][2:] == [
        {"role": "user", "content": "streamed second"},
        {"role": "assistant", "content": "Stand-in reply to: streamed second (turn 2)"},
    ]


def test_a_new_session_from_a_stream_gets_a_token(client) -> None:
    response, events = stream(client, "/api/chat/history/stream", "fresh")
    token = response.headers["x-session-id"]
    assert json.loads(events[-2][1])["session"] == token
    assert f"sid={token};" in response.headers["set-cookie"]
    assert client.get("/api/chat/history", headers={"X-Session-Id": token}).json()["turns"] == 1


def test_a_mid_stream_failure_ends_with_an_error_event_and_saves_nothing(client) -> None:
    token = client.post("/api/chat/history", json={"message": "before"}).json()["session"]
    before = client.get("/api/chat/history", headers={"X-Session-Id": token}).json()
    _, events = stream(
        client, "/api/chat/history/stream", "a b c d e f [standin:fail_after=3]", **{"X-Session-Id": token}
    )
    data = [payload for _, payload in events]
    assert data[-1] == "[DONE]"
    error = json.loads(data[-2])
    assert error["text"] == ""
    assert error["code"] == "upstream_unavailable"
    assert error["error"]
    assert [json.loads(d)["text"] for d in data[:3]] == ["Stand-in ", "reply ", "to: "]
    assert client.get("/api/chat/history", headers={"X-Session-Id": token}).json() == before


def test_a_dropped_upstream_is_an_error_event(client) -> None:
    _, events = stream(client, "/api/chat/stream", "a b c d e f [standin:drop_after=2]")
    assert events[-1][1] == "[DONE]"
    assert json.loads(events[-2][1])["code"] == "upstream_error"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{nope", 400, "invalid_json"),
        (b'{"message": ""}', 422, "invalid_request"),
        (b'{"message": "hi", "temperature": 1}', 422, "invalid_request"),
        (b'{"message": "hi", "model": "x"}', 422, "model_not_allowed"),
        (json.dumps({"message": "x" * 16_001}).encode(), 413, "message_too_long"),
    ],
)
def test_bad_input_is_a_json_error_before_any_stream(client, body, status, code) -> None:
    response = client.post("/api/chat/history/stream", content=body)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == code
    assert "ratelimit" in response.headers


def test_claude_refusing_is_a_json_error_before_any_stream(client) -> None:
    response = client.post("/api/chat/stream", json={"message": "x [standin:status=529]"})
    assert response.status_code == 503
    assert response.json()["code"] == "upstream_unavailable"
    assert int(response.headers["retry-after"]) >= 1


def test_streams_share_the_budget_with_the_chat_routes(dev_server) -> None:
    client = dev_server.client()
    for _ in range(dev_server.rate_limit_max - 1):
        assert client.post("/api/chat", json={"message": "spend"}).status_code == 200
    response, _ = stream(client, "/api/chat/stream", "last one")
    assert response.status_code == 200
    refused = client.post("/api/chat/history/stream", json={"message": "one too many"})
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["retryAfter"] == int(refused.headers["retry-after"])


def test_a_forged_request_context_header_cannot_change_the_client_ip(dev_server) -> None:
    client = dev_server.client()
    statuses = []
    for n in range(dev_server.rate_limit_max + 2):
        forged = json.dumps({"http": {"sourceIp": f"198.51.100.{n}", "method": "POST"}})
        response = client.post(
            "/api/chat/stream",
            json={"message": "hi"},
            headers={"X-Amzn-Request-Context": forged, "X-Forwarded-For": f"203.0.113.{n}"},
        )
        statuses.append(response.status_code)
    assert statuses == [200] * dev_server.rate_limit_max + [429, 429]


def test_a_client_that_leaves_stops_the_claude_stream_and_keeps_what_it_saw(dev_server) -> None:
    client = dev_server.client()
    token = client.post("/api/chat/history", json={"message": "opening"}).json()["session"]
    seen = ""
    message = "long [standin:words=300][standin:delta_delay=0.05]"
    with client.stream(
        "POST", "/api/chat/history/stream", json={"message": message}, headers={"X-Session-Id": token}
    ) as response:
        for _, payload in read_events_until(response, 4):
            seen += json.loads(payload)["text"]
    left = time.monotonic()
    disconnects: list = []
    while time.monotonic() - left < 3 and not disconnects:
        disconnects = httpx.get(f"{dev_server.standin_url}/_standin/disconnects").json()
        time.sleep(0.05)
    assert disconnects, "the stand-in never saw its stream closed"
    assert time.monotonic() - left < 1.5
    assert disconnects[-1]["disconnected_at_delta"] < 300
    history: dict = {}
    for _ in range(40):
        history = client.get("/api/chat/history", headers={"X-Session-Id": token}).json()
        if history["turns"] == 2:
            break
        time.sleep(0.05)
    assert history["turns"] == 2
    user, assistant = history["messages"][2:]
    assert user == {"role": "user", "content": message}
    assert assistant["content"].startswith(seen)
    assert len(assistant["content"].split()) < 300


def read_events_until(response: httpx.Response, count: int) -> list[tuple[float, str]]:
    events, buffer = [], ""
    for chunk in response.iter_text():
        buffer += chunk
        while "\n\n" in buffer and len(events) < count:
            raw, buffer = buffer.split("\n\n", 1)
            events.append((time.monotonic(), raw.removeprefix("data: ")))
        if len(events) >= count:
            break
    return events

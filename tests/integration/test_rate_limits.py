"""The per-IP budget over HTTP: header fields, exactness under concurrency, and spoofing."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.integration


def test_every_limited_response_carries_both_header_families(client, dev_server) -> None:
    limit = dev_server.rate_limit_max
    response = client.post("/api/chat", json={"message": "hi"})
    headers = response.headers
    window = dev_server.rate_limit_window
    assert headers["ratelimit-policy"] == f'"chat";q={limit};w={window}'
    match = re.fullmatch(r'"chat";r=(\d+);t=(\d+)', headers["ratelimit"])
    assert match and int(match[1]) == limit - 1 and 1 <= int(match[2]) <= window
    assert headers["ratelimit-limit"] == str(limit)
    assert headers["ratelimit-remaining"] == str(limit - 1)
    assert headers["ratelimit-reset"] == match[2]
    # A refused request carries the headers too, and draws nothing from the window (it writes nothing).
    bad = client.post("/api/chat", content=b"{nope")
    assert bad.status_code == 400 and bad.headers["ratelimit-remaining"] == str(limit - 1)
    unknown_model = client.post("/api/chat", json={"message": "hi", "model": "claude-no-such-model"})
    assert unknown_model.status_code == 422 and unknown_model.json()["code"] == "model_not_allowed"
    assert unknown_model.headers["ratelimit-remaining"] == str(limit - 1)
    assert client.post("/api/chat", json={"message": "hi"}).headers["ratelimit-remaining"] == str(limit - 2)


def test_all_post_routes_share_one_budget_and_reads_are_free(client, dev_server) -> None:
    limit = dev_server.rate_limit_max
    token = client.post("/api/chat/history", json={"message": "one"}).json()["session"]
    for _ in range(3):
        assert "ratelimit" not in client.get("/api/chat/history", headers={"X-Session-Id": token}).headers
    assert client.post("/api/chat", json={"message": "two"}).headers["ratelimit-remaining"] == str(limit - 2)


def test_refused_request_says_how_long_to_wait_in_seconds(client, dev_server) -> None:
    for _ in range(dev_server.rate_limit_max):
        assert client.post("/api/chat", json={"message": "spend"}).status_code == 200
    refused = client.post("/api/chat/history", json={"message": "one too many"})
    assert refused.status_code == 429
    body = refused.json()
    assert set(body) == {"error", "code", "retryAfter", "limit"}
    assert (body["error"], body["code"]) == ("Too many requests. Please wait.", "rate_limited")
    assert body["limit"] == "requests"
    assert 1 <= body["retryAfter"] <= dev_server.rate_limit_window  # seconds to wait, not an epoch timestamp
    assert refused.headers["retry-after"] == str(body["retryAfter"])
    assert refused.headers["ratelimit-remaining"] == "0"


def test_thirty_parallel_requests_against_a_limit_of_five_admit_exactly_five(dev_server) -> None:
    client = dev_server.client()
    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(
            pool.map(lambda n: client.post("/api/chat", json={"message": f"p{n}"}).status_code, range(30))
        )
    assert statuses.count(200) == dev_server.rate_limit_max == 5
    assert statuses.count(429) == 25

"""Every row of the contract's error table over HTTP, and failed turns leaving history untouched."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


@pytest.mark.parametrize("path", ["/api/chat", "/api/chat/history"])
def test_invalid_json_is_400(client, path) -> None:
    assert_error(
        client.post(path, content=b"{oops", headers={"Content-Type": "application/json"}), 400, "invalid_json"
    )


@pytest.mark.parametrize(
    "body", [{}, {"message": ""}, {"message": 7}, {"message": "hi", "temperature": 0.5}, ["hi"]]
)
def test_invalid_request_is_422(client, body) -> None:
    assert_error(client.post("/api/chat/history", json=body), 422, "invalid_request")


def test_message_too_long_is_413(client) -> None:
    assert_error(client.post("/api/chat", json={"message": "x" * 16_001}), 413, "message_too_long")


def test_unknown_route_is_404(client) -> None:
    assert_error(client.get("/api/nothing-here"), 404, "not_found")
    assert_error(client.post("/api/chat/nope", json={"message": "hi"}), 404, "not_found")


def test_wrong_method_is_405_with_allow(client) -> None:
    refused = client.get("/api/chat")
    body = assert_error(refused, 405, "method_not_allowed")
    assert "POST" in body["error"]
    assert refused.headers["allow"] == "POST"
    assert "ratelimit" not in refused.headers  # refused before the budget: it spends none
    response = client.put("/api/chat/history", json={"message": "hi"})
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "DELETE, GET, POST"


@pytest.mark.parametrize(
    ("directive", "status", "code", "retry_after"),
    [
        ("[standin:status=500]", 502, "upstream_error", None),
        ("[standin:status=400]", 502, "upstream_error", None),
        ("[standin:status=401]", 503, "not_configured", None),
        ("[standin:status=429][standin:retry_after=11]", 503, "upstream_unavailable", "11"),
        ("[standin:status=529]", 503, "upstream_unavailable", "5"),  # no Retry-After upstream: our default
        ("[standin:delay=4]", 504, "upstream_timeout", None),
    ],
)
def test_a_failed_turn_answers_the_contract_error_and_leaves_history_as_it_was(
    client, directive, status, code, retry_after
) -> None:
    first = client.post("/api/chat/history", json={"message": "before the failure"}).json()
    token = first["session"]
    before = client.get("/api/chat/history", headers={"X-Session-Id": token}).json()

    response = client.post(
        "/api/chat/history", json={"message": f"this one fails {directive}"}, headers={"X-Session-Id": token}
    )
    assert_error(response, status, code)
    assert response.headers.get("retry-after") == retry_after
    assert "x-session-id" not in response.headers

    after = client.get("/api/chat/history", headers={"X-Session-Id": token}).json()
    assert after == before
    assert after["turns"] == 1
    following = client.post("/api/chat/history", json={"message": "after"}, headers={"X-Session-Id": token})
    assert following.json()["turns"] == 2


def test_the_stateless_route_maps_upstream_errors_too(client) -> None:
    assert_error(
        client.post("/api/chat", json={"message": "x [standin:status=529]"}), 503, "upstream_unavailable"
    )

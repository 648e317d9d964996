"""Sign-in over real HTTP against `make dev`: every route wants a bearer token of the issuer,
a signed-in caller is keyed by the user (not the address), their conversation follows them and
opens for nobody else, group quotas apply, and /api/usage says what the turns charged."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest

from tests.dev_server import DevServer, start_dev_server
from tests.oidc_issuer import AUDIENCE, FakeIssuer, start_test_issuer

pytestmark = pytest.mark.integration

DEFAULT_BUDGET = 3000
PRO_BUDGET = 1_000_000


@pytest.fixture(scope="module")
def issuer() -> Iterator[FakeIssuer]:
    issuer = start_test_issuer()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def server(issuer: FakeIssuer) -> Iterator[DevServer]:
    server = start_dev_server(
        OIDC_ISSUER=issuer.url,
        OIDC_AUDIENCE=AUDIENCE,
        OIDC_GROUPS_CLAIM="groups",
        GROUP_TOKEN_BUDGETS=json.dumps({"pro": PRO_BUDGET}),
        DAILY_TOKEN_BUDGET=str(DEFAULT_BUDGET),
        MAX_TOKENS="100",
    )
    yield server
    server.stop()


def signed_in(server: DevServer, token: str, address: str | None = None) -> httpx.Client:
    return server.client(address, headers={"Authorization": f"Bearer {token}"})


def table_items(server: DevServer) -> int:
    client, table = server.dynamodb()
    return sum(len(page["Items"]) for page in client.get_paginator("scan").paginate(TableName=table))


ROUTES = [
    ("POST", "/api/chat"),
    ("POST", "/api/chat/history"),
    ("GET", "/api/chat/history"),
    ("DELETE", "/api/chat/history"),
    ("POST", "/api/chat/stream"),
    ("POST", "/api/chat/history/stream"),
    ("POST", "/api/chat/ui"),
    ("POST", "/api/chat/stop"),
    ("GET", "/api/usage"),
    ("GET", "/api/conversations"),
    ("GET", "/api/conversations/default"),
    ("PATCH", "/api/conversations/default"),
    ("DELETE", "/api/conversations/default"),
    ("GET", "/api/conversations/default/export"),
]


def test_every_route_wants_a_token_and_a_refusal_stores_nothing(
    server: DevServer, issuer: FakeIssuer
) -> None:
    before = table_items(server)
    now = int(time.time())
    good = issuer.token("mallory")
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered_payload = (
        base64.urlsafe_b64encode(json.dumps({**claims, "sub": "ada"}).encode()).rstrip(b"=").decode()
    )
    bad_tokens = {
        "none": None,
        "garbage": "not-a-jwt",
        "expired": issuer.token("mallory", lifetime=-120),
        "not yet valid": issuer.token("mallory", nbf=now + 600),
        "another audience": issuer.token("mallory", aud="someone-else"),
        "another issuer": issuer.token("mallory", iss="http://127.0.0.1:1"),
        "alg none": jwt.encode({**claims}, None, algorithm="none"),
        "tampered": f"{header}.{tampered_payload}.{signature}",
        "unknown key": jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": "nope"}),
    }
    client = server.client()
    for name, token in bad_tokens.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for method, path in ROUTES:
            response = client.request(method, path, json={"message": "hi"}, headers=headers)
            assert response.status_code == 401, (name, method, path, response.text)
            assert response.json()["code"] == "unauthorized"
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert table_items(server) == before, "a refused request stored something"


def test_a_user_is_one_caller_on_every_address_and_two_users_are_two(
    server: DevServer, issuer: FakeIssuer
) -> None:
    ada, grace = issuer.token("ada-budget"), issuer.token("grace-budget")
    limit = server.rate_limit_max
    statuses = [
        signed_in(server, ada, f"127.0.9.{n % 2 + 1}").post("/api/chat", json={"message": "hi"}).status_code
        for n in range(limit + 1)
    ]
    assert statuses == [200] * limit + [429], "one user on two addresses must share one budget"
    assert signed_in(server, grace, "127.0.9.1").post("/api/chat", json={"message": "hi"}).status_code == 200


def test_a_users_conversation_follows_them_and_opens_for_nobody_else(
    server: DevServer, issuer: FakeIssuer
) -> None:
    ada, grace = issuer.token("ada-history"), issuer.token("grace-history")
    first = signed_in(server, ada, "127.0.10.1").post("/api/chat/history", json={"message": "I am Ada"})
    assert first.status_code == 200, first.text
    adas_token = first.json()["session"]
    # Another device, no session token: the same conversation.
    elsewhere = signed_in(server, ada, "127.0.10.2").get("/api/chat/history").json()
    assert [m["content"] for m in elsewhere["messages"]][:1] == ["I am Ada"]
    # Grace, even holding Ada's session token, sees her own (empty) conversation.
    graces = signed_in(server, grace, "127.0.10.3").get(
        "/api/chat/history", headers={"X-Session-Id": adas_token}
    )
    assert graces.json()["messages"] == []
    signed_in(server, grace, "127.0.10.3").post(
        "/api/chat/history", json={"message": "I am Grace"}, headers={"X-Session-Id": adas_token}
    )
    assert [m["content"] for m in signed_in(server, ada).get("/api/chat/history").json()["messages"]][
        ::2
    ] == ["I am Ada"]


def test_a_users_conversations_are_theirs_on_every_device(server: DevServer, issuer: FakeIssuer) -> None:
    ada, grace = issuer.token("ada-many"), issuer.token("grace-many")
    laptop, phone = signed_in(server, ada, "127.0.11.1"), signed_in(server, ada, "127.0.11.2")
    sent = laptop.post("/api/chat/history", json={"message": "on the laptop", "conversation": "trip"})
    assert sent.status_code == 200, sent.text
    # The phone, with no session token, lists it, reads it and continues it.
    assert [c["id"] for c in phone.get("/api/conversations").json()["conversations"]] == ["trip"]
    continued = phone.post("/api/chat/history", json={"message": "on the phone", "conversation": "trip"})
    assert continued.json()["turns"] == 2
    # Grace, even with Ada's session token, has no such conversation and lists none.
    graces = signed_in(server, grace, "127.0.11.3")
    graces.headers["X-Session-Id"] = sent.json()["session"]
    assert graces.get("/api/conversations/trip").status_code == 404
    assert graces.get("/api/conversations").json()["conversations"] == []
    assert graces.delete("/api/conversations/trip").status_code == 404
    assert phone.get("/api/conversations/trip").json()["turns"] == 2


def test_usage_says_what_the_turns_charged_and_a_group_quota_applies(
    server: DevServer, issuer: FakeIssuer
) -> None:
    plain, pro = issuer.token("ada-usage"), issuer.token("grace-usage", groups=["pro"])
    client = signed_in(server, plain)
    fresh = client.get("/api/usage")
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["cache-control"] == "no-store"
    assert fresh.json()["tokens"] | {"reset": 0} == {
        "limit": DEFAULT_BUDGET,
        "used": 0,
        "remaining": DEFAULT_BUDGET,
        "reset": 0,
    }
    charged = 0
    for n in range(2):
        reply = client.post("/api/chat", json={"message": f"turn {n} [standin:words=30]"}).json()
        charged += sum(reply["usage"].values())
    usage = client.get("/api/usage").json()
    assert usage["tokens"]["used"] == charged
    assert usage["tokens"]["remaining"] == DEFAULT_BUDGET - charged
    assert usage["requests"]["remaining"] == server.rate_limit_max - 2  # usage itself is free
    assert 0 < usage["tokens"]["reset"] <= 86_400
    # The default budget cannot take a turn whose worst case is larger; the pro group's can.
    big = "x" * DEFAULT_BUDGET
    refused = client.post("/api/chat", json={"message": big})
    assert (refused.status_code, refused.json().get("limit")) == (429, "tokens")
    pro_client = signed_in(server, pro)
    assert pro_client.get("/api/usage").json()["tokens"]["limit"] == PRO_BUDGET
    assert pro_client.post("/api/chat", json={"message": big}).status_code == 200


def test_a_preflight_needs_no_token(server: DevServer) -> None:
    response = server.client().options(
        "/api/chat",
        headers={
            "Origin": "https://chat.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert "authorization" in response.headers["access-control-allow-headers"]


def test_a_signed_in_user_cannot_stop_another_users_reply(server: DevServer, issuer: FakeIssuer) -> None:
    """A turn id is handed only to the caller who started the turn, and a signed-in caller's ids are
    signed for them: another user holding a leaked id still cannot stop the reply."""
    alice = server.client(headers={"Authorization": f"Bearer {issuer.token('alice')}"})
    bob = server.client(headers={"Authorization": f"Bearer {issuer.token('bob')}"})
    turn: dict[str, str] = {}
    events: list[dict[str, object]] = []

    def alice_streams() -> None:
        body = {"message": "long [standin:words=40][standin:delta_delay=0.1]"}
        with alice.stream("POST", "/api/chat/history/stream", json=body) as response:
            turn["id"] = response.headers["x-turn-id"]
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    events.append(json.loads(line[len("data: ") :]))

    streaming = threading.Thread(target=alice_streams)
    streaming.start()
    deadline = time.monotonic() + 10
    while "id" not in turn and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    refused = bob.post("/api/chat/stop", json={"turn": turn["id"]})
    streaming.join(timeout=30)
    assert refused.status_code < 500
    done = [event for event in events if event.get("done")]
    assert done and done[-1]["stop_reason"] != "stopped", "bob stopped alice's reply with its turn id"

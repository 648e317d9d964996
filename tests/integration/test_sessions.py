"""Sessions over HTTP: bad tokens start afresh, and concurrent turns of one session all land."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.integration


def new_session(client, text: str = "private words") -> str:
    return str(client.post("/api/chat/history", json={"message": text}).json()["session"])


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:],  # signature edited
        lambda t: ("B" if t.startswith("A") else "A") + t[1:],  # session id edited
        lambda t: t.rsplit(".", 1)[0],  # signature dropped
        lambda t: "garbage",
        lambda t: "",
    ],
)
def test_a_forged_token_starts_a_new_session_and_never_reaches_the_original(client, forge) -> None:
    token = new_session(client)
    forged = forge(token)
    response = client.get("/api/chat/history", headers={"X-Session-Id": forged})
    assert response.status_code == 200
    body = response.json()
    assert body["session"] not in (token, forged)
    assert (body["messages"], body["turns"]) == ([], 0)
    turn = client.post("/api/chat/history", json={"message": "hi"}, headers={"X-Session-Id": forged}).json()
    assert turn["session"] not in (token, forged) and turn["turns"] == 1


def test_an_expired_session_starts_afresh(dev_server) -> None:
    """A session idle past its TTL is gone: its expiry, as the server wrote it, is moved into the past."""
    import time

    client = dev_server.client()
    token = new_session(client)
    assert client.get("/api/chat/history", headers={"X-Session-Id": token}).json()["turns"] == 1
    dynamodb, table = dev_server.dynamodb()
    key = {"pk": {"S": f"S#{token.split('.')[0]}"}, "sk": {"S": "~META"}}
    expires_at = int(dynamodb.get_item(TableName=table, Key=key)["Item"]["expires_at"]["N"])
    # The idle TTL the server set: SESSION_TTL_SECONDS (the shared server's, from this environment, or
    # its default of an hour) after the session's last use, a moment ago.
    ttl = int(os.environ.get("SESSION_TTL_SECONDS", "3600"))
    assert time.time() + ttl - 60 < expires_at <= time.time() + ttl + 1, expires_at - time.time()
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    body = client.get("/api/chat/history", headers={"X-Session-Id": token}).json()
    assert body["session"] != token and body["messages"] == []

"""Sessions over HTTP: bad tokens start afresh, and concurrent turns of one session all land."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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
    from tests.dev_server import start_dev_server

    short = start_dev_server(SESSION_TTL_SECONDS="4")
    try:
        client = short.client()
        token = new_session(client)
        assert client.get("/api/chat/history", headers={"X-Session-Id": token}).json()["turns"] == 1
        import time

        time.sleep(5)
        body = client.get("/api/chat/history", headers={"X-Session-Id": token}).json()
        assert body["session"] != token and body["messages"] == []
    finally:
        short.stop()


def test_concurrent_turns_of_one_session_all_land(dev_server) -> None:
    token = new_session(dev_server.client(), "opening")
    messages = [f"parallel-{n} [standin:delay=0.3]" for n in range(4)]

    def turn(message: str) -> int:
        # Each turn from its own IP, so the budget does not cap the test.
        response = dev_server.client().post(
            "/api/chat/history", json={"message": message}, headers={"X-Session-Id": token}
        )
        assert response.status_code == 200, response.text
        return int(response.json()["turns"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        turns = sorted(pool.map(turn, messages))
    assert turns == [2, 3, 4, 5]
    history = dev_server.client().get("/api/chat/history", headers={"X-Session-Id": token}).json()
    assert history["turns"] == 5
    users = [m["content"] for m in history["messages"] if m["role"] == "user"]
    assert users[0] == "opening" and sorted(users[1:]) == sorted(messages)
    pairs = list(zip(history["messages"][::2], history["messages"][1::2], strict=True))
    for user, assistant in pairs:
        assert assistant["role"] == "assistant"
        assert assistant["content"].startswith("Stand-in reply to: " + user["content"].split(" [")[0])

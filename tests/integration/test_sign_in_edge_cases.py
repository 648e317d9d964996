"""Sign-in edge cases an adversarial review found, over real HTTP.

A turn id is a capability handed to the caller who started the turn; with sign-in on, the stop
route knows who is asking, so another signed-in user must not be able to stop someone else's reply.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from tests.dev_server import DevServer, start_dev_server
from tests.oidc_issuer import AUDIENCE, FakeIssuer, start_test_issuer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def issuer() -> Iterator[FakeIssuer]:
    issuer = start_test_issuer()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def server(issuer: FakeIssuer) -> Iterator[DevServer]:
    server = start_dev_server(OIDC_ISSUER=issuer.url, OIDC_AUDIENCE=AUDIENCE, MAX_TOKENS="100")
    yield server
    server.stop()


def test_a_signed_in_user_cannot_stop_another_users_reply(server: DevServer, issuer: FakeIssuer) -> None:
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

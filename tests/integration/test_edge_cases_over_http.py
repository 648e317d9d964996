"""Edge cases an adversarial review found, over real HTTP against `make dev`.

- `POST /api/chat/stop` reads its body by the shared rules: a UTF-16 body is `400 invalid_json`,
  and a body naming `turn` twice is 422, as on every other route.
- The local emulator counts a buffered invocation's timeout from when a worker starts it, not
  while it waits for a free worker: in AWS there is no such queue (one environment per request).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.dev_server import DevServer, start_dev_server


def test_the_stop_route_refuses_a_body_that_is_not_utf8(client: httpx.Client) -> None:
    body = ('{"turn": "%s"}' % secrets.token_urlsafe(16)).encode("utf-16")  # noqa: UP031
    response = client.post("/api/chat/stop", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_json"


def test_the_stop_route_refuses_a_turn_named_twice(client: httpx.Client) -> None:
    first, second = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    body = f'{{"turn": "{first}", "turn": "{second}"}}'
    response = client.post("/api/chat/stop", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert response.json()["code"] == "invalid_request"


@pytest.fixture(scope="module")
def one_worker_server() -> Iterator[DevServer]:
    server = start_dev_server(DEV_WORKERS="1", DEV_FUNCTION_TIMEOUT_SECONDS="6", RATE_LIMIT_MAX="50")
    yield server
    server.stop()


def test_plain_turns_waiting_for_a_local_worker_do_not_time_out(one_worker_server: DevServer) -> None:
    """Three turns of ~2.5 s each, at once, with one worker and a 6 s timeout: each fits its own timeout."""
    answers: list[httpx.Response] = []

    def turn(i: int) -> None:
        with one_worker_server.client() as c:
            message = f"q{i} [standin:words=25][standin:delta_delay=0.1]"
            answers.append(c.post("/api/chat", json={"message": message}))

    threads = [threading.Thread(target=turn, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text[:80] for a in answers]
    assert "Task timed out" not in one_worker_server.log()

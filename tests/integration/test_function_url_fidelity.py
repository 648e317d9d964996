"""The local function URL over real HTTP: bytes that are not UTF-8, and Lambda's 6 MB response limit."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from local.function_url import MAX_RESPONSE_PAYLOAD_BYTES, response_payload_bytes
from local.server import LocalFunctionUrls
from local.template import url_functions

pytestmark = pytest.mark.integration

LATIN_1_JSON = b'{"message": "caf\xe9"}'


@pytest.mark.parametrize("content_type", ["application/json", "text/plain;charset=UTF-8"])
def test_a_body_that_is_not_utf8_is_invalid_json_not_replacement_characters(client, content_type) -> None:
    response = client.post("/api/chat", content=LATIN_1_JSON, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_json"


class RecordingWorkers:
    """Stands in for the worker processes: records each event and returns a result of a chosen size."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.payload_bytes = 100

    async def invoke(self, logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        result: dict[str, Any] = {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": "",
            "isBase64Encoded": False,
        }
        result["body"] = '"' + "x" * (self.payload_bytes - response_payload_bytes(result) - 4) + '"'
        assert response_payload_bytes(result) == self.payload_bytes
        return result


@pytest.fixture(scope="module")
def function_urls() -> Iterator[tuple[str, RecordingWorkers]]:
    """The local server's function URL layer on a real socket, with recording workers behind it."""
    workers = RecordingWorkers()
    app = LocalFunctionUrls(url_functions(), workers, ["*"])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    while not server.started:
        thread.join(0.05)
    yield base_url, workers
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_the_function_receives_non_utf8_bytes_base64_encoded_and_unaltered(function_urls) -> None:
    base_url, workers = function_urls
    httpx.post(f"{base_url}/api/chat", content=LATIN_1_JSON, headers={"Content-Type": "application/json"})
    event = workers.events[-1]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == LATIN_1_JSON


def test_a_buffered_response_of_6_mb_is_delivered_and_one_byte_more_is_a_502(function_urls) -> None:
    base_url, workers = function_urls
    workers.payload_bytes = MAX_RESPONSE_PAYLOAD_BYTES
    at_limit = httpx.post(f"{base_url}/api/chat", json={"message": "hi"}, timeout=30)
    assert at_limit.status_code == 200
    assert len(at_limit.content) > MAX_RESPONSE_PAYLOAD_BYTES - 200  # less the envelope
    workers.payload_bytes = MAX_RESPONSE_PAYLOAD_BYTES + 1
    over = httpx.post(f"{base_url}/api/chat", json={"message": "hi"}, timeout=30)
    assert over.status_code == 502
    assert over.text == "Internal Server Error"

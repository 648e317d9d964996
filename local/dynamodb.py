"""An embedded DynamoDB for `make dev` and the tests: moto's server, one request at a time.

moto's server is not atomic under concurrent requests (a conditional counter
was seen to oversell), while real DynamoDB is atomic per item. One lock
around moto's WSGI app restores that guarantee locally, so the exactness
tests of the rate limiter and of concurrent turns are honest.

So that benchmarks can count the DynamoDB round trips a turn costs, the same
server records every call (operation from X-Amz-Target, start and end in
time.time() seconds, request and response sizes; the JSON bodies too, for
working out capacity units, since moto reports constant ones):

    GET    /_calls              {"counts": {"GetItem": 3, ...}, "calls": [...]}, the last 5000 calls
    GET    /_calls?bodies=1     the same, each call with its "request" and "response" JSON
    DELETE /_calls              the same snapshot, then forgets it (read and reset in one step)
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from local.template import table_properties

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _OneAtATime:
    """Runs each request, body included, under one lock."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


_RECORDED_CALLS = 5000


class _CallRecorder:
    """Counts and records each DynamoDB call it passes on; answers /_calls itself."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._calls: deque[dict[str, Any]] = deque(maxlen=_RECORDED_CALLS)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") == "/_calls":
            return self._report(environ, start_response)
        started = time.time()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(request)
        operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2] or "unknown"
        response = list(self._app(environ, start_response))
        call = {"operation": operation, "start": started, "end": time.time(), "request_bytes": len(request)}
        with self._lock:
            self._counts[operation] += 1
            self._calls.append({**call, "_request": request, "_response": b"".join(response)})
        return response

    def _report(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            counts, calls = dict(self._counts), list(self._calls)
            if environ.get("REQUEST_METHOD") == "DELETE":
                self._counts.clear()
                self._calls.clear()
        bodies = "bodies=1" in environ.get("QUERY_STRING", "")
        listed = []
        for call in calls:
            entry = {key: value for key, value in call.items() if not key.startswith("_")}
            entry["response_bytes"] = len(call["_response"])
            if bodies:
                entry["request"] = _json_or_none(call["_request"])
                entry["response"] = _json_or_none(call["_response"])
            listed.append(entry)
        body = json.dumps({"counts": counts, "calls": listed}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


class LocalDynamoDB:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per DynamoDB call
        app = create_backend_app("dynamodb")
        self._server: BaseWSGIServer = make_server(host, port, _CallRecorder(_OneAtATime(app)), threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="dynamodb", daemon=True)

    def start(self) -> LocalDynamoDB:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()


def create_table(client: Any, table_name: str) -> None:
    """Creates the table from template.yaml's own definition, TTL included."""
    properties = table_properties()
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if index_kind in properties:
            request[index_kind] = properties[index_kind]
    client.create_table(**request)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )

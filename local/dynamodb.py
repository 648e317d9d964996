"""An embedded DynamoDB for `make dev` and the tests: moto's server, one request at a time.

moto's server is not atomic under concurrent requests (a conditional counter
was seen to oversell), while real DynamoDB is atomic per item. One lock
around moto's WSGI app restores that guarantee locally, so the exactness
tests of the rate limiter and of concurrent turns are honest.

`wrap` puts WSGI middleware in front of it: the benchmarks' call recorder
(tests/benchmarks/counted_dynamodb.py) counts DynamoDB round trips that way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from local.template import table_properties

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
WsgiMiddleware = Callable[[WsgiApp], WsgiApp]


class _OneAtATime:
    """Runs each request, body included, under one lock."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class LocalDynamoDB:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, wrap: WsgiMiddleware | None = None) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per DynamoDB call
        app: WsgiApp = _OneAtATime(create_backend_app("dynamodb"))
        if wrap is not None:
            app = wrap(app)
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
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

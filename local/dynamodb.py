"""An embedded DynamoDB for `make dev` and the tests: moto's server, one request at a time.

moto's server is not atomic under concurrent requests (a conditional counter
was seen to oversell), while real DynamoDB is atomic per item. One lock
around moto's WSGI app restores that guarantee locally, so the exactness
tests of the rate limiter and of concurrent turns are honest.

`wrap` puts WSGI middleware in front of it: the benchmarks' call recorder
(tests/benchmarks/counted_dynamodb.py) counts DynamoDB round trips that way.

moto's TransactWriteItems copies every table it touches, whole, to roll back
a cancelled transaction; every turn is admitted by one (claude_chat.admission),
so the local server would slow down as its table grows, which DynamoDB does
not. `_transact_write_items` keeps moto's own checks and writes and copies only
the items the transaction names.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from local.template import table_properties

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
WsgiMiddleware = Callable[[WsgiApp], WsgiApp]


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:  # noqa: PLR0912, PLR0915 - moto's own steps, kept in its order
    """moto's TransactWriteItems, rolling back by the items it names instead of whole copied tables.

    The same checks, writes, errors and cancellation reasons as moto 5's (ConditionCheck, Put,
    Delete, Update; each action's condition; ALL_OLD on a failed condition); requests run one at a
    time (_OneAtATime), so restoring the named items restores the table.
    """
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    saved: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []

    def restore() -> None:
        for table, hash_key, range_key, item in saved.values():
            container = table.items[hash_key] if range_key is not None else table.items
            slot = range_key if range_key is not None else hash_key
            if item is None:
                container.pop(slot, None)
            else:
                container[slot] = item

    for action in transact_items:
        if len(action) > 1:
            raise TransactWriteSingleOpException
        kind, op = next(iter(action.items()))
        original: dict[str, Any] | None = None
        try:
            if kind not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table = self.get_table(op["TableName"])
            attrs = op["Item"] if kind == "Put" else op["Key"]
            key = attrs
            if kind == "Put":  # an item's key; an action's Key is taken as given, and checked below
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            identity = (op["TableName"], str(dict(sorted(key.items()))))
            if identity in saved:
                raise MultipleTransactionsException()
            # DynamoTypes, as moto keys items; a Key without the table's keys is a ValidationException.
            hash_key, range_key = self.get_keys_value(table, key)
            current = table.get_item(hash_key, range_key)
            saved[identity] = (table, hash_key, range_key, copy.deepcopy(current))
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            condition = op.get("ConditionExpression")
            if condition is not None and not self._condition_holds(condition, names, values, current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=original)
            if kind == "Put":
                self.put_item(op["TableName"], attrs)
            elif kind == "Delete":
                self.delete_item(op["TableName"], key)
            elif kind == "Update":
                self.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            restore()
            raise
        except ConditionalCheckFailed as error:
            errors.append(("ConditionalCheckFailed", str(error.message), original))
        except Exception as error:
            errors.append((type(error).__name__, str(error), original))
    if any(code is not None for code, _, _ in errors):
        restore()
        raise TransactionCanceledException(errors)


def _condition_holds(self: Any, condition: str, names: Any, values: Any, item: Any) -> bool:
    from moto.dynamodb.comparisons import get_filter_expression

    return bool(get_filter_expression(condition, names, values).expr(item))


DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
DynamoDBBackend._condition_holds = _condition_holds  # type: ignore[attr-defined]


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

"""DynamoDB capacity units of recorded calls, worked out from AWS's published sizing rules.

Why not ReturnConsumedCapacity: moto answers it with constants (1.0 or 0.5 per
call, whatever the item size), which would make any growth look flat. So the
units are computed from the items each call reads or writes, as DynamoDB bills
them: reads 1 unit per 4 KB (half for eventually consistent, double in a
transaction; a Query rounds its whole result up once), writes 1 unit per 1 KB
(double in a transaction). An update or delete whose old item is not on the
wire is sized from what the request carries, at least 1 unit: a lower bound.
"""

from __future__ import annotations

import base64
import math
from typing import Any

READ_BLOCK = 4096
WRITE_BLOCK = 1024


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes of one typed attribute value (names counted by the caller)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return _number_size(str(data))
    if kind == "B":
        return len(base64.b64decode(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + attribute_size(element) for name, element in data.items())
    if kind == "SS":
        return sum(len(element.encode()) for element in data)
    if kind == "NS":
        return sum(_number_size(element) for element in data)
    if kind == "BS":
        return sum(len(base64.b64decode(element)) for element in data)
    return 0


def _number_size(text: str) -> int:
    digits = text.lstrip("-").split("e")[0].split("E")[0].replace(".", "").strip("0")
    return 1 + math.ceil(max(1, len(digits)) / 2)


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in (item or {}).items())


def _request_size(request: dict[str, Any]) -> int:
    """What an update carries: its key, the values it sets and the names it uses."""
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    return (
        item_size(request.get("Key"))
        + sum(len(name.encode()) for name in names.values())
        + sum(attribute_size(value) for value in values.values())
    )


def _units(size: int, block: int) -> int:
    return max(1, math.ceil(size / block))


def _write(request: dict[str, Any], attributes: dict[str, Any] | None = None) -> int:
    size = item_size(request["Item"]) if "Item" in request else _request_size(request)
    return _units(max(size, item_size(attributes)), WRITE_BLOCK)


def call_capacity(
    operation: str, request: dict[str, Any] | None, response: dict[str, Any] | None
) -> dict[str, float]:
    """{"read": units, "write": units} one call consumed."""
    request, response = request or {}, response or {}
    consistency = 1.0 if request.get("ConsistentRead") else 0.5
    read = write = 0.0
    if operation == "GetItem":
        read = _units(item_size(response.get("Item")), READ_BLOCK) * consistency
    elif operation in ("Query", "Scan"):
        total = sum(item_size(item) for item in response.get("Items", []))
        read = _units(total, READ_BLOCK) * consistency
    elif operation == "BatchGetItem":
        for table_items in response.get("Responses", {}).values():
            read += sum(_units(item_size(item), READ_BLOCK) * 0.5 for item in table_items)
    elif operation == "TransactGetItems":
        read = sum(2 * _units(item_size(r.get("Item")), READ_BLOCK) for r in response.get("Responses", []))
    elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
        write = _write(request, response.get("Attributes"))
    elif operation == "BatchWriteItem":
        for actions in request.get("RequestItems", {}).values():
            for action in actions:
                write += _write(action.get("PutRequest") or action.get("DeleteRequest") or {"Item": {}})
    elif operation == "TransactWriteItems":
        for action in request.get("TransactItems", []):
            ((kind, body),) = action.items()
            if kind == "ConditionCheck":
                read += 2 * _units(item_size(body.get("Key")), READ_BLOCK)
            else:
                write += 2 * _write(body)
    return {"read": read, "write": write}

"""The embedded DynamoDB's TransactWriteItems (local/dynamodb.py) answers as moto's own, and DynamoDB, do."""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import ClientError


def test_a_key_without_its_sort_key_is_a_validation_error_and_writes_nothing(aws: Any) -> None:
    table = os.environ["TABLE_NAME"]
    counter = {"pk": {"S": "RL#k"}, "sk": {"S": "W#0"}}
    with pytest.raises(ClientError) as raised:
        aws.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": counter,
                        "UpdateExpression": "ADD hits :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "S#x"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert aws.scan(TableName=table)["Items"] == []

"""Turn ids (signed, bound to a signed-in owner) and the stop requests stored under them."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from claude_chat.stop_requests import StopRequests, TurnIds

# Ids made by this code with this key and nonce, written out: changing the key's derivation, the
# MAC, its length or the format would fail these, as it would refuse every stop sent during a deploy.
PINNED_KEY = "pinned-signing-key"
PINNED_NONCE = "Zq3n0kX9aW1bC2dE3fG4hA"
PINNED_OWNER = "user:0123456789abcdef0123456789abcdef"
PINNED_ANONYMOUS_ID = "Zq3n0kX9aW1bC2dE3fG4hA.63Kuq8n_mv9XoWNCxE-cXg"
PINNED_OWNED_ID = "Zq3n0kX9aW1bC2dE3fG4hA.ABoCHaEnjK7dHtHl0-WyTg"
TABLE = "claude-chat-test"


@pytest.fixture
def turn_ids() -> TurnIds:
    return TurnIds(PINNED_KEY)


def test_the_pinned_ids_are_still_genuine(turn_ids: TurnIds) -> None:
    assert turn_ids.genuine(PINNED_ANONYMOUS_ID)
    assert turn_ids.genuine(PINNED_ANONYMOUS_ID, "")
    assert turn_ids.genuine(PINNED_OWNED_ID, PINNED_OWNER)


def test_the_issuer_still_makes_the_pinned_ids(turn_ids: TurnIds, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []

    def nonce(nbytes: int) -> str:
        asked.append(nbytes)
        return PINNED_NONCE

    monkeypatch.setattr(secrets, "token_urlsafe", nonce)
    assert turn_ids.issue() == PINNED_ANONYMOUS_ID
    assert turn_ids.issue(PINNED_OWNER) == PINNED_OWNED_ID
    assert asked == [16, 16]  # 128 random bits each


def test_an_id_is_128_random_bits_and_a_128_bit_mac(turn_ids: TurnIds) -> None:
    issued = {turn_ids.issue() for _ in range(50)}
    assert len(issued) == 50
    for turn_id in issued:
        nonce, mac = turn_id.split(".")
        for part in (nonce, mac):
            assert len(base64.urlsafe_b64decode(part + "==")) == 16
        assert turn_ids.genuine(turn_id)


def test_an_owned_id_is_genuine_for_its_owner_only(turn_ids: TurnIds) -> None:
    owned = turn_ids.issue(PINNED_OWNER)
    assert turn_ids.genuine(owned, PINNED_OWNER)
    assert not turn_ids.genuine(owned)
    assert not turn_ids.genuine(owned, "user:someone-else")
    anonymous = turn_ids.issue()
    assert turn_ids.genuine(anonymous)
    assert not turn_ids.genuine(anonymous, PINNED_OWNER)


def test_an_id_from_another_deployment_is_not_genuine() -> None:
    assert not TurnIds("another-key").genuine(PINNED_ANONYMOUS_ID)
    assert not TurnIds("another-key").genuine(PINNED_OWNED_ID, PINNED_OWNER)


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        b"Zq3n0kX9aW1bC2dE3fG4hA.63Kuq8n_mv9XoWNCxE-cXg",
        ["Zq3n0kX9aW1bC2dE3fG4hA.63Kuq8n_mv9XoWNCxE-cXg"],
        "",
        "Zq3n0kX9aW1bC2dE3fG4hA",
        "Zq3n0kX9aW1bC2dE3fG4hA.63Kuq8n_mv9XoWNCxE-cXh",  # the MAC edited
        "Zq3n0kX9aW1bC2dE3fG4hB.63Kuq8n_mv9XoWNCxE-cXg",  # the nonce edited
        "Zq3n0kX9aW1bC2dE3fG4hA.63Kuq8n_mv9XoWNCxE-cXg=",
        "Zq3n0kX9aW1bC2dE3fG4hA.63Kuq8n_mv9XoWNCxE-cXg\n",
        " Zq3n0kX9aW1bC2dE3fG4hA.63Kuq8n_mv9XoWNCxE-cXg",
        "Zq3n0kX9aW1bC2dE3fG4hA.63Kuq8n_mv9XoWNCxE-cXgAA",
        "Zq3n0kX9aW1bC2dE3fG4hA63Kuq8n_mv9XoWNCxE-cXg",
    ],
)
def test_anything_else_is_not_genuine(turn_ids: TurnIds, value: Any) -> None:
    assert turn_ids.genuine(value) is False


# --------------------------------------------------------------------------- the stored requests


def stubbed() -> tuple[StopRequests, Stubber]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    return StopRequests(client, TABLE), Stubber(client)


def test_a_stop_request_is_one_item_that_expires_after_a_quarter_of_an_hour() -> None:
    stops, stubber = stubbed()
    stubber.add_response(
        "put_item",
        {},
        {
            "TableName": TABLE,
            "Item": {
                "pk": {"S": f"SP#{PINNED_ANONYMOUS_ID}"},
                "sk": {"S": "STOP"},
                "expires_at": {"N": "1767226500"},
            },
        },
    )
    with stubber:
        stops.request(PINNED_ANONYMOUS_ID, now=1_767_225_600.9)
    stubber.assert_no_pending_responses()


def test_a_stop_request_is_stamped_with_the_time_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.5)
    stops, stubber = stubbed()
    item = {"pk": {"S": "SP#t"}, "sk": {"S": "STOP"}, "expires_at": {"N": "1700000900"}}
    stubber.add_response("put_item", {}, {"TableName": TABLE, "Item": item})
    with stubber:
        stops.request("t")
    stubber.assert_no_pending_responses()


def test_a_turn_asks_with_a_strongly_consistent_read_of_the_key_alone() -> None:
    stops, stubber = stubbed()
    expected = {
        "TableName": TABLE,
        "Key": {"pk": {"S": "SP#t"}, "sk": {"S": "STOP"}},
        "ProjectionExpression": "pk",
        "ConsistentRead": True,
    }
    stubber.add_response("get_item", {"Item": {"pk": {"S": "SP#t"}}}, expected)
    stubber.add_response("get_item", {}, expected)
    with stubber:
        assert stops.requested("t") is True
        assert stops.requested("t") is False
    stubber.assert_no_pending_responses()


def test_a_stop_request_is_seen_by_its_turn_only(aws: Any) -> None:
    stops = StopRequests(aws, TABLE)
    assert not stops.requested(PINNED_ANONYMOUS_ID)
    stops.request(PINNED_ANONYMOUS_ID, now=time.time())
    assert stops.requested(PINNED_ANONYMOUS_ID)
    assert not stops.requested(PINNED_OWNED_ID)

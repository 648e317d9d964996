"""A ticket settled by another write: the actions `settle` would make, for the turn's save to carry
(claude_chat.conversation_store's one-transaction save), and the promise that it then does nothing."""

from __future__ import annotations

import os
from typing import Any

from claude_chat.admission import Charge, Limits, Ticket
from tests.unit.test_admission import OFF, T0, admission, spent


def write(aws: Any, actions: list[dict[str, Any]]) -> None:
    aws.transact_write_items(TransactItems=actions)


def test_the_settlement_written_elsewhere_leaves_every_counter_at_the_cost(aws) -> None:
    gate = admission(aws, global_limits=Limits(10_000, 10_000))
    ticket = gate.admit("k", Charge(600, 900), Limits(1_000, 1_000), now=T0)
    actions = ticket.settlement(Charge(250, 400))
    assert [action["Update"]["TableName"] for action in actions] == [os.environ["TABLE_NAME"]] * 2
    write(aws, actions)
    ticket.settled_by_them()
    assert spent(aws, "TB#k") == spent(aws, "GB#all") == (250, 400)
    ticket.settle(Charge(1, 1))  # settled already: nothing more
    assert spent(aws, "TB#k") == (250, 400)
    assert ticket.settlement(Charge(1, 1)) == []


def test_a_cost_above_the_reservation_adds_the_difference(aws) -> None:
    gate = admission(aws)
    ticket = gate.admit("k", Charge(100, 100), Limits(1_000, 1_000), now=T0)
    write(aws, ticket.settlement(Charge(300, 700)))
    assert spent(aws, "TB#k") == (300, 700)


def test_nothing_to_settle_is_no_action(aws) -> None:
    gate = admission(aws, global_limits=OFF)
    ticket = gate.admit("k", Charge(100, 100), Limits(1_000, 1_000), now=T0)
    assert ticket.settlement(Charge(100, 100)) == []  # the cost is the reservation
    assert Ticket(None, Charge(5, 5)).settlement(Charge(1, 1)) == []  # nothing was admitted
    unlimited = gate.admit("k", Charge(100, 100), Limits(), now=T0)
    assert unlimited.settlement(Charge(1, 1)) == []  # no budget on: no counter


def test_a_settlement_not_written_is_still_owed(aws) -> None:
    """Asking for the actions is not settling: a save that did not carry them leaves `settle` to do it."""
    gate = admission(aws)
    ticket = gate.admit("k", Charge(600, 900), Limits(1_000, 1_000), now=T0)
    assert ticket.settlement(Charge(250, 400))
    ticket.settle(Charge(250, 400))
    assert spent(aws, "TB#k") == (250, 400)

"""The states and their moves live in gateway/states.py; the README shows exactly those."""

from __future__ import annotations

import re

import pytest

from gateway.states import (
    TRANSITIONS,
    DeliveryState,
    IllegalTransition,
    MessageState,
    OrderState,
    diagram,
    move,
)
from gateway.store import tables as t
from tests.e2e.helpers import ROOT


def test_the_readme_diagram_is_the_one_generated_from_the_tables() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- states:begin -->\n```\n(.*?)\n```\n<!-- states:end -->", text, re.S)
    assert block, "README.md lost its states block"
    assert block.group(1) == diagram(), "README states block is out of date: paste gateway.states.diagram()"


def test_an_allowed_move_returns_the_new_state() -> None:
    assert move(OrderState, "held", "validated") is OrderState.VALIDATED
    assert move(MessageState, None, "received") is MessageState.RECEIVED
    assert move(DeliveryState, "dead", "pending") is DeliveryState.PENDING


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        (OrderState, "dispatched", "validated"),  # a sent order never goes back to be sent again
        (OrderState, "quarantined", "dispatched"),  # a released order is decided again, never sent straight away
        (OrderState, None, "dispatched"),
        (DeliveryState, "sent", "pending"),
        (MessageState, "parsed", "quarantined"),
        (OrderState, "validated", "mapped"),  # a state that does not exist
    ],
)
def test_a_move_not_allowed_raises(kind: type, old: str | None, new: str) -> None:
    with pytest.raises(IllegalTransition):
        move(kind, old, new)


def test_every_state_is_reachable_and_fits_its_column() -> None:
    width = {MessageState: t.messages.c.state.type.length, OrderState: t.orders.c.state.type.length, DeliveryState: t.outbox.c.state.type.length}
    for kind, moves in TRANSITIONS.items():
        reached = {new for _, new in moves}
        assert reached == set(kind), f"{kind.__name__}: unreachable {set(kind) - reached}"
        for state in kind:
            assert len(state.value) <= width.get(kind, 10)

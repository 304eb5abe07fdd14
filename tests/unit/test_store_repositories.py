"""The read and node repositories of gateway/store/ (issue 9, "All SQL in gateway/store/"):
listings for `gateway orders`, `messages` and `show`, a message's outcome, recent events,
cursors with a rule of their own, lease release at node start, and the outbox's state guard."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from gateway.connector import Receipt
from gateway.errors import GatewayError
from gateway.states import IllegalTransition
from gateway.store import add_event
from gateway.store import tables as t
from gateway.store.cursors import get_cursor, write_cursor
from gateway.store.nodes import ping, release_claims
from gateway.store.outbox import claim_due, due_count, mark_dead, mark_sent
from gateway.store.queries import (
    list_messages,
    list_orders,
    message_outcome,
    order_detail,
    recent_event_details,
)
from tests.unit.test_outbox import T0, seed


def _claim(store: Any, now: dt.datetime = T0) -> list[Any]:
    return claim_due(store, now=now, lease_seconds=60, limit=10)


def test_listings_show_orders_and_messages_newest_first_and_filter_by_state(store: Any) -> None:
    first = seed(store, po="PO-1")
    second = seed(store, po="PO-2", at=T0 + dt.timedelta(seconds=5))
    with store.begin() as conn:
        conn.execute(update(t.orders).where(t.orders.c.id == first).values(state="dispatched"))
    listed = list_orders(store)
    assert [o.id for o in listed] == [second, first]
    assert (listed[1].po_number, listed[1].partner, listed[1].line_count, listed[1].state) == ("PO-1", "acme", 1, "dispatched")
    assert [o.id for o in list_orders(store, state="validated")] == [second]
    assert [o.id for o in list_orders(store, limit=1)] == [second]
    messages = list_messages(store)
    assert len(messages) == 2 and messages[0].received_at >= messages[1].received_at
    assert all(m.state == "parsed" and m.warnings == [] and m.order_count == 1 for m in messages)
    assert list_messages(store, state="quarantined") == []


def test_order_detail_by_id_prefix_or_po_with_deliveries_and_history(store: Any) -> None:
    oid = seed(store, po="PO-77")
    [c] = _claim(store)
    assert mark_sent(store, c, Receipt(status=201, reference="ERP-9"), now=T0)
    by_po = order_detail(store, "PO-77")
    by_id = order_detail(store, oid[:8])
    assert by_po.order["id"] == by_id.order["id"] == oid
    assert by_po.order["state"] == "dispatched" and [v["id"] for v in by_po.versions] == [oid]
    [d] = by_po.deliveries
    assert (d["connector"], d["state"], d["attempts"], d["last_status"]) == ("erp", "sent", 1, 201)
    assert (d["receipt"] or {})["reference"] == "ERP-9"
    assert [e["kind"] for e in by_po.history] == ["attempt", "sent", "dispatched"]
    assert by_po.message["id"] == by_po.order["message_id"] and by_po.acks == []


def test_order_detail_names_a_missing_or_ambiguous_order(store: Any) -> None:
    seed(store, po="PO-A")
    seed(store, po="PO-A")  # two different orders (no order key) with one PO number
    with pytest.raises(GatewayError, match="no order with id or PO number"):
        order_detail(store, "PO-NONE")
    with pytest.raises(GatewayError, match="matches several orders"):
        order_detail(store, "PO-A")
    with pytest.raises(GatewayError, match="no order"):
        order_detail(store, "%")  # a LIKE wildcard is a character, not a pattern


def test_message_outcome_reports_the_message_and_its_orders(store: Any) -> None:
    oid = seed(store)
    with store.engine.connect() as conn:
        mid = conn.execute(select(t.orders.c.message_id).where(t.orders.c.id == oid)).scalar_one()
    outcome = message_outcome(store, mid)
    assert outcome is not None
    assert (outcome.state, outcome.reason, outcome.order_states) == ("parsed", None, frozenset({"validated"}))
    assert message_outcome(store, "no-such-message") is None


def test_recent_event_details_newest_first_and_bounded(store: Any) -> None:
    with store.begin() as conn:
        for i in range(5):
            add_event(conn, "config_loaded", f"n{i}")
        add_event(conn, "other", "x")
    assert recent_event_details(store, "config_loaded", limit=3) == ["n4", "n3", "n2"]
    assert recent_event_details(store, "missing", limit=3) == []


def test_write_cursor_follows_the_callers_rule(store: Any) -> None:
    def forward(current: str) -> bool:
        return int(current) < 5

    assert get_cursor(store, "imap-in") is None
    assert write_cursor(store, "imap-in", "3", replaces=forward)
    assert write_cursor(store, "imap-in", "5", replaces=forward)
    assert not write_cursor(store, "imap-in", "4", replaces=forward)
    assert get_cursor(store, "imap-in") == "5"


def test_release_claims_ends_delivery_leases_and_records_it(store: Any) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    oid = seed(store, at=now)
    assert ping(store) is None
    [c] = _claim(store, now)
    assert due_count(store) == 1  # in flight and due since `now`
    released = release_claims(store)
    assert (released.messages, released.deliveries) == (0, 1)
    with store.engine.connect() as conn:
        row = conn.execute(select(t.outbox.c.state, t.outbox.c.lease_until).where(t.outbox.c.order_id == oid)).one()
        recovered = conn.execute(select(t.events.c.detail).where(t.events.c.kind == "recovered")).scalars().all()
    assert row.state == "in_flight" and row.lease_until is not None
    assert recovered == ["released 0 message and 1 delivery claim(s) left by a stopped gateway"]
    assert [r.outbox_id for r in _claim(store, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))] == [c.outbox_id]


def test_the_outbox_refuses_an_order_move_the_state_table_does_not_allow(store: Any) -> None:
    """An order waiting for a person (held) never gets its state from a delivery: settling it
    `dead` raises instead of overwriting what the person is deciding (gateway.states)."""
    oid = seed(store)
    [c] = _claim(store)
    with store.begin() as conn:
        conn.execute(update(t.orders).where(t.orders.c.id == oid).values(state="held"))
    with pytest.raises(IllegalTransition, match="held -> dead"):
        mark_dead(store, c, error="refused", now=T0)
    with store.engine.connect() as conn:  # nothing of the refused transaction was kept
        assert conn.execute(select(t.outbox.c.state).where(t.outbox.c.order_id == oid)).scalar_one() == "in_flight"
        assert conn.execute(select(t.orders.c.state).where(t.orders.c.id == oid)).scalar_one() == "held"

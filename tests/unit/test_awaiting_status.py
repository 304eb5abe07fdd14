"""Which orders a status poll asks about (gateway.store.tracking.awaiting_status), on both
databases: an order invoiced before anything shipped is asked about its shipment until one is
recorded, and only for a while after it was received."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import insert

from gateway.store import tables as t
from gateway.store.tracking import awaiting_status

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def order(store: Any, po: str, state: str, *, days_old: int = 1, shipped: bool = False) -> str:
    """An order sent to `erp` (receipt reference REF-<po>) in `state`, received `days_old` ago."""
    mid, oid, at = str(uuid.uuid4()), str(uuid.uuid4()), NOW - dt.timedelta(days=days_old)
    with store.begin() as conn:
        conn.execute(insert(t.messages).values(
            id=mid, received_at=at, updated_at=at, source="test", sha256=uuid.uuid4().hex * 2, size=1, state="parsed",
            warnings=[], attempts=1, order_count=1, rejected_count=0))
        conn.execute(insert(t.orders).values(
            id=oid, message_id=mid, doc_index=0, created_at=at, updated_at=at, channel="x12", po_number=po, state=state,
            line_count=1, data={"po_number": po}))
        conn.execute(insert(t.outbox).values(
            order_id=oid, connector="erp", kind="order", state="sent", idempotency_key=f"key-{po}", attempts=1,
            created_at=at, updated_at=at, next_attempt_at=at, receipt={"status": 200, "reference": f"REF-{po}"}))
        if shipped:
            conn.execute(insert(t.shipments).values(order_id=oid, kind="shipment", carrier="ups", tracking=f"1Z{po}",
                                                    data={}, created_at=at))
    return oid


def test_invoiced_orders_without_a_shipment_are_asked_for_a_while(store: Any) -> None:
    order(store, "DISPATCHED", "dispatched")
    order(store, "BILLED", "invoiced")
    order(store, "BILLED-SHIPPED", "invoiced", shipped=True)
    order(store, "BILLED-LONG-AGO", "invoiced", days_old=90)
    order(store, "SHIPPED", "shipped", shipped=True)

    plain = list(awaiting_status(store, "erp", ("dispatched",)))
    assert [(a.po_number, a.unshipped) for a in plain] == [("DISPATCHED", True)]
    asked = list(awaiting_status(store, "erp", ("dispatched",), unshipped_in=("invoiced",), unshipped_since=NOW - dt.timedelta(days=60)))
    assert sorted((a.po_number, a.state, a.reference, a.unshipped) for a in asked) == [
        ("BILLED", "invoiced", "REF-BILLED", True), ("DISPATCHED", "dispatched", "REF-DISPATCHED", True),
    ]
    forever = list(awaiting_status(store, "erp", ("dispatched", "shipped"), unshipped_in=("invoiced",)))
    assert sorted((a.po_number, a.unshipped) for a in forever) == [
        ("BILLED", True), ("BILLED-LONG-AGO", True), ("DISPATCHED", True), ("SHIPPED", False),
    ]


def test_every_awaiting_order_is_asked_page_by_page_oldest_first(store: Any) -> None:
    """A poll reads the orders a page at a time until the last: none is left behind because
    older ones never change (a fixed limit asked the same oldest orders at every poll)."""
    for i in range(7):
        order(store, f"PO-{i}", "dispatched", days_old=10 - i)
    same_time = {order(store, f"TIE-{i}", "dispatched", days_old=2) for i in range(4)}  # one batch: one created_at
    order(store, "DONE", "invoiced", shipped=True)
    found = list(awaiting_status(store, "erp", ("dispatched",), page=3))
    pages = [a.po_number for a in found]
    assert pages[:7] == [f"PO-{i}" for i in range(7)] and sorted(pages[7:]) == [f"TIE-{i}" for i in range(4)]
    assert {a.order_id for a in found[7:]} == same_time and len(set(pages)) == 11
    assert [a.po_number for a in awaiting_status(store, "erp", ("dispatched",), page=11)] == pages  # a full last page

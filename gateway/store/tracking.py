"""Which orders a shipping connector took and has not reported shipped yet (`gateway.tracking`).

    awaiting_shipment(store, "shipstation")   # [(order_id, po_number, reference)], oldest first

An order is asked about while it is `dispatched` (sent everywhere, not shipped) and its
delivery to the connector was `sent` with a receipt reference (the service's id of it).
"""

from __future__ import annotations

from sqlalchemy import select

from gateway.states import DeliveryState, OrderState
from gateway.store import tables as t
from gateway.store.db import Store

__all__ = ["awaiting_shipment"]


def awaiting_shipment(store: Store, connector: str, *, limit: int = 1000) -> list[tuple[str, str | None, str]]:
    """Dispatched orders `connector` took, with its reference of each, oldest first (at most `limit`)."""
    o, d = t.outbox, t.orders
    q = (
        select(d.c.id, d.c.po_number, o.c.receipt)
        .join(o, o.c.order_id == d.c.id)
        .where(o.c.kind == "order", o.c.connector == connector, o.c.state == DeliveryState.SENT.value, d.c.state == OrderState.DISPATCHED.value)
        .order_by(d.c.created_at, d.c.id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
    found = []
    for order_id, po_number, receipt in rows:
        reference = (receipt or {}).get("reference") if isinstance(receipt, dict) else None
        if reference not in (None, ""):
            found.append((order_id, po_number, str(reference)))
    return found

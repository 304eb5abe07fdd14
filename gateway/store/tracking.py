"""Which orders a connector took and may have news of (`gateway.tracking`).

    awaiting_status(store, "erp", ("dispatched", "shipped"))   # [(order_id, po_number, state, reference)], oldest first

An order is asked about while it is in one of the given states (sent everywhere and not yet
as far as the connector can report) and its delivery to the connector was `sent` with a
receipt reference (the system's id of it).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from gateway.states import DeliveryState
from gateway.store import tables as t
from gateway.store.db import Store

__all__ = ["awaiting_status"]


def awaiting_status(store: Store, connector: str, states: Sequence[str], *, limit: int = 1000) -> list[tuple[str, str | None, str, str]]:
    """Orders in `states` that `connector` took, with their state and its reference of each,
    oldest first (at most `limit`)."""
    o, d = t.outbox, t.orders
    q = (
        select(d.c.id, d.c.po_number, d.c.state, o.c.receipt)
        .join(o, o.c.order_id == d.c.id)
        .where(o.c.kind == "order", o.c.connector == connector, o.c.state == DeliveryState.SENT.value, d.c.state.in_(list(states)))
        .order_by(d.c.created_at, d.c.id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
    found = []
    seen = set()  # an order changed after it was sent has a delivery per version: ask once
    for order_id, po_number, state, receipt in rows:
        reference = (receipt or {}).get("reference") if isinstance(receipt, dict) else None
        if reference not in (None, "") and order_id not in seen:
            seen.add(order_id)
            found.append((order_id, po_number, state, str(reference)))
    return found

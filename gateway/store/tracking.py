"""Which orders a connector took and may have news of (`gateway.tracking`).

    awaiting_status(store, "erp", ("dispatched", "shipped"))   # [(order_id, po_number, state, reference)], oldest first
    order_taken(store, "labels", reference="shp_123")  # (order_id, po_number, state) or None

An order is asked about while it is in one of the given states (sent everywhere and not yet
as far as the connector can report) and its delivery to the connector was `sent` with a
receipt reference (the system's id of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gateway.errors import StoreUnavailable
from gateway.states import DeliveryState, OrderState
from gateway.store import tables as t
from gateway.store.db import Store

__all__ = ["awaiting_status", "order_taken"]

# States an order can be recorded shipped in (gateway.fulfilment); preferred over the others
# when several versions of one order were sent to the same connector.
_SHIPPABLE = (OrderState.DISPATCHED.value, OrderState.SHIPPED.value, OrderState.INVOICED.value)


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


def order_taken(store: Store, connector: str, *, key: str | None = None, reference: str | None = None) -> tuple[str, str | None, str] | None:
    """The order `connector` took with idempotency key `key` or receipt reference `reference`
    (a service's webhook names one or both): (order_id, po_number, state), None if no order.

    Of several versions of one order (a change is a new version, sent to the service as an
    update of the same order), the newest in a state that can ship. The key is looked up by
    its index, then the order's versions by theirs; the reference, when the key finds
    nothing, inside the receipt's JSON without an index: a scan of the connector's
    deliveries, fine at webhook rates."""
    o, d = t.outbox, t.orders
    sent_to = select(d.c.id, d.c.po_number, d.c.state, d.c.version).join(o, o.c.order_id == d.c.id).where(o.c.kind == "order", o.c.connector == connector)
    try:
        with store.engine.connect() as conn:
            rows: list[Any] = list(conn.execute(sent_to.where(o.c.idempotency_key == key[:100]))) if key else []
            if rows:
                versions = select(d.c.order_key).where(d.c.id == rows[0].id).scalar_subquery()
                rows += conn.execute(sent_to.where(d.c.order_key == versions, d.c.order_key.is_not(None))).all()
            elif reference:
                rows = list(conn.execute(sent_to.where(o.c.receipt["reference"].as_string() == reference[:200])))
    except OperationalError as exc:
        raise StoreUnavailable(f"the store is unavailable: {type(exc.orig).__name__}") from exc
    if not rows:
        return None
    best = max(rows, key=lambda r: (r.state in _SHIPPABLE, r.version))
    return best.id, best.po_number, best.state

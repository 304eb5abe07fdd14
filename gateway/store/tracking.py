"""Which orders a connector took and may have news of (`gateway.tracking`).

    awaiting_status(store, "erp", ("dispatched", "shipped"))   # Awaiting(order_id, po_number, state, reference, outbox_id, unshipped), ..., oldest first
    awaiting_status(store, "shipstation", ("dispatched",), parts_in=("shipped", "invoiced"),  # and parts of a split order not reported yet,
                    unshipped_in=("invoiced",))                                        # and orders invoiced before they shipped
    mark_shipped(store, [outbox_id, ...])   # that part's service reported it shipped: not asked again
    order_taken(store, "labels", reference="shp_123")  # (order_id, po_number, state) or None

An order is asked about while it is in one of the given states (sent everywhere and not yet
as far as the connector can report) and its delivery to the connector was `sent` with a
receipt reference (the system's id of it). Each delivery is asked about once per poll by its
own reference, so every part of a split order (`gateway.parts`: one service order per
warehouse) is asked, also after the order became shipped with the first part's shipment, until
that part's service reports it (`mark_shipped`, a flag in the delivery's receipt).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, literal, or_, select, true, tuple_, update
from sqlalchemy.exc import OperationalError

from gateway.errors import StoreUnavailable
from gateway.states import DeliveryState, OrderState
from gateway.store import tables as t
from gateway.store.db import Store

__all__ = ["Awaiting", "awaiting_status", "mark_shipped", "order_taken"]

# States an order can be recorded shipped in (gateway.fulfilment); preferred over the others
# when several versions of one order were sent to the same connector.
_SHIPPABLE = (OrderState.DISPATCHED.value, OrderState.SHIPPED.value, OrderState.INVOICED.value)


class Awaiting(NamedTuple):
    order_id: str
    po_number: str | None
    state: str
    reference: str  # the system's id of what it took (for a split order: of this part)
    outbox_id: int
    unshipped: bool  # no shipment is recorded on the order yet


def awaiting_status(
    store: Store, connector: str, states: Sequence[str], *, parts_in: Sequence[str] = (), unshipped_in: Sequence[str] = (),
    unshipped_since: dt.datetime | None = None, page: int = 1000,
) -> Iterator[Awaiting]:
    """The deliveries `connector` took of orders in `states`, of split orders in `parts_in`
    whose part was not reported shipped yet, and of orders in `unshipped_in` with no shipment
    recorded (invoiced before anything shipped; only those received since `unshipped_since`,
    so orders that never ship are not asked forever), with the reference of each, oldest order
    first; one per reference (the versions of a changed order share theirs).

    Every one of them, read `page` at a time (each page on a connection of its own, closed
    before its rows are handed out, and after the last row of the one before): a poll that
    stopped at a fixed number would ask the same oldest orders every time and never the rest."""
    o, d, s = t.outbox, t.orders, t.shipments
    wanted: ColumnElement[bool] = d.c.state.in_(list(states))
    if parts_in:
        wanted = or_(wanted, and_(d.c.state.in_(list(parts_in)), o.c.part_of > 1))
    shipped = select(s.c.id).where(s.c.order_id == d.c.id, s.c.kind == "shipment").exists()
    if unshipped_in:
        recent = d.c.created_at >= unshipped_since if unshipped_since is not None else true()
        wanted = or_(wanted, and_(d.c.state.in_(list(unshipped_in)), ~shipped, recent))
    query = (
        select(d.c.id, d.c.po_number, d.c.state, o.c.receipt, o.c.id.label("outbox_id"), shipped.label("shipped"), d.c.created_at)
        .join(o, o.c.order_id == d.c.id)
        .where(o.c.kind == "order", o.c.connector == connector, o.c.state == DeliveryState.SENT.value, wanted)
        .order_by(d.c.created_at, d.c.id, o.c.id)
        .limit(page)
    )
    seen: set[str] = set()
    after: tuple[Any, str, int] | None = None
    while True:
        keys = (d.c.created_at, d.c.id, o.c.id)
        # Each value bound as its column's type: SQLite compares the stored text of a timestamp.
        q = query if after is None else query.where(tuple_(*keys) > tuple_(*(literal(v, k.type) for v, k in zip(after, keys, strict=True))))
        with store.engine.connect() as conn:
            rows = conn.execute(q).all()
        for order_id, po_number, state, receipt, outbox_id, any_shipped, _ in rows:
            receipt = receipt if isinstance(receipt, dict) else {}
            reference = receipt.get("reference")
            if reference in (None, "") or receipt.get("shipped") or str(reference) in seen:
                continue
            seen.add(str(reference))
            yield Awaiting(order_id, po_number, state, str(reference), outbox_id, not any_shipped)
        if len(rows) < page:
            return
        last = rows[-1]
        after = (last.created_at, last.id, last.outbox_id)


def mark_shipped(store: Store, outbox_ids: Collection[int]) -> None:
    """Note on each delivery that its service reported it shipped, so the poll stops asking."""
    if not outbox_ids:
        return
    o = t.outbox
    with store.begin() as conn:
        for row in conn.execute(select(o.c.id, o.c.receipt).where(o.c.id.in_(sorted(outbox_ids)))).all():
            receipt = dict(row.receipt) if isinstance(row.receipt, dict) else {}
            if not receipt.get("shipped"):
                conn.execute(update(o).where(o.c.id == row.id).values(receipt={**receipt, "shipped": True}))


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

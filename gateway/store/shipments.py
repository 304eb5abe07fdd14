"""Shipments and invoices recorded on orders (`shipments` table, 0017), and the order moves they make.

    row = locked_order(conn, "PO-1001")          # id, id prefix or PO number; latest version, locked
    record(conn, row, "shipment", data, ...)     # the row, the order's move and its history event
    of_order(conn, order_id)                     # what was recorded, oldest first

`gateway.fulfilment` decides; this module only reads and writes. Every order state written
passes `gateway.states.move(OrderState, old, new)`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update

from gateway.errors import GatewayError
from gateway.states import OrderState, move
from gateway.store import tables as t
from gateway.store.db import add_event, db_now

__all__ = ["available_stock", "latest_order_of", "locked_order", "of_order", "record"]

_SUPERSEDED = (OrderState.SUPERSEDED.value,)


def locked_order(conn: Connection, given: str, *, partner: str | None = None, prefer: tuple[str, ...] = ()) -> dict[str, Any]:
    """The current version of the order whose id starts with `given` (6 characters at least)
    or whose PO number is `given` (of `partner` when given), locked for the caller's
    transaction on PostgreSQL; GatewayError naming what to do when none or several match.
    Of several versions, the newest in a state of `prefer` (a change held after shipping is
    newer than the version that shipped), else the newest."""
    o = t.orders
    ident = given.strip()
    by_id = o.c.id.startswith(ident, autoescape=True) if len(ident) >= 6 else None
    cond = o.c.po_number == ident if by_id is None else or_(by_id, o.c.po_number == ident)
    q = select(o).where(cond, o.c.state.notin_(_SUPERSEDED))
    if partner is not None:
        q = q.where(o.c.partner == partner)
    q = q.order_by(o.c.version.desc(), o.c.created_at.desc()).limit(20)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    rows = [dict(r._mapping) for r in conn.execute(q)]
    if not rows:
        raise GatewayError(f"no order has an id or PO number {ident!r}; `gateway orders` lists them")
    keys = {r["order_key"] for r in rows}
    if len(rows) > 1 and (len(keys) > 1 or None in keys):
        ids = ", ".join(f"{r['id'][:8]} (PO {r['po_number']}, {r['partner'] or '-'})" for r in rows[:5])
        raise GatewayError(f"{ident!r} matches several orders: {ids}; give the order id")
    return next((r for r in rows if r["state"] in prefer), rows[0])


def record(
    conn: Connection,
    order: dict[str, Any],
    kind: str,
    data: dict[str, Any],
    *,
    new_state: OrderState | None,
    detail: str,
    carrier: str | None = None,
    service: str | None = None,
    tracking: str | None = None,
    number: str | None = None,
    day: dt.date | None = None,
    total: Decimal | None = None,
    by: str | None = None,
) -> int:
    """Store one shipment or invoice of `order` (a row from `locked_order`), move the order to
    `new_state` (None: it stays where it is, e.g. a second shipment) and add a `kind` event
    with `detail` to its history; returns the new row's id."""
    now = db_now(conn)
    if new_state is not None and new_state.value != order["state"]:
        move(OrderState, order["state"], new_state)
        done = conn.execute(
            update(t.orders).where(t.orders.c.id == order["id"], t.orders.c.state == order["state"]).values(state=new_state.value, updated_at=now)
        )
        if done.rowcount != 1:
            raise GatewayError(f"order {order['id'][:8]} changed while its {kind} was recorded; try again")
    s = t.shipments
    row_id = conn.execute(
        insert(s).returning(s.c.id).values(
            order_id=order["id"], kind=kind, carrier=carrier, service=service, tracking=tracking, number=number,
            day=day, total=total, data=data, recorded_by=by or None, created_at=now,
        )
    ).scalar_one()
    add_event(conn, kind, detail, order_id=order["id"], message_id=order["message_id"], at=now)
    return int(row_id)


def of_order(conn: Connection, order_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The shipments and invoices recorded for an order, oldest first."""
    s = t.shipments
    q = select(s).where(s.c.order_id == order_id)
    if kind is not None:
        q = q.where(s.c.kind == kind)
    return [dict(r._mapping) for r in conn.execute(q.order_by(s.c.id))]


def latest_order_of(conn: Connection, partner: str, channel: str) -> dict[str, Any] | None:
    """The partner's most recent order of `channel` (x12, edifact): where a report that answers
    no order takes its envelope from when the partner's config names no ids of ours."""
    o = t.orders
    row = conn.execute(
        select(o.c.id, o.c.data).where(o.c.partner == partner, o.c.channel == channel, o.c.data.is_not(None)).order_by(o.c.created_at.desc()).limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def available_stock(conn: Connection, skus: list[str] | None = None) -> dict[str, Decimal]:
    """SKU -> on hand less reserved, summed over its warehouses (every SKU, or those in `skus`;
    one asked for but not stocked counts 0)."""
    st = t.stock
    q = select(st.c.sku, func.sum(st.c.on_hand - st.c.reserved)).group_by(st.c.sku)
    if skus is not None:
        q = q.where(st.c.sku.in_(skus))
    found = {r[0]: Decimal(str(r[1] or 0)) for r in conn.execute(q)}
    if skus is not None:
        return {sku: found.get(sku, Decimal(0)) for sku in skus}
    return found

"""Read-only listings for people: what `gateway orders`, `messages`, `show` and `status` print.

Nothing here writes. Each function opens its own connection and returns plain typed values
(dataclasses, and rows as TypedDicts), so the CLI and the HTTP API format them without
knowing the tables. Dead letters (orders and documents) are listed by
`gateway.store.dead_letters`, held orders by the review step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, TypedDict, cast

from sqlalchemy import or_, select

from gateway.errors import GatewayError
from gateway.parts import label, part_route
from gateway.store import tables as t
from gateway.store.db import Store
from gateway.store.outbox import part_routes

__all__ = [
    "AckRow",
    "DeliveryRow",
    "EventRow",
    "MessageListing",
    "MessageOutcome",
    "OrderDetail",
    "OrderListing",
    "list_messages",
    "list_orders",
    "message_outcome",
    "order_detail",
    "archived_messages",
    "metrics_snapshot",
    "decided_orders",
    "recent_event_details",
]


@dataclass(frozen=True, slots=True)
class OrderListing:
    """One line of `gateway orders`."""

    id: str
    po_number: str | None
    partner: str | None
    line_count: int
    state: str
    reason: str | None
    display_name: str | None  # the message it came from


@dataclass(frozen=True, slots=True)
class MessageListing:
    """One line of `gateway messages`."""

    id: str
    received_at: dt.datetime
    source: str
    display_name: str | None
    size: int
    state: str
    order_count: int
    rejected_count: int
    reason: str | None
    error: str | None
    warnings: list[str]


class DeliveryRow(TypedDict):
    """One outbox row of an order, as `gateway show` lists it."""

    id: int
    connector: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    receipt: dict[str, Any] | None
    part: int  # a split order's part (gateway.parts); 0: the whole order
    part_of: int  # how many parts the order was split into (0: not split)
    part_label: str  # "part 2 of 3, warehouse WEST"; "" for the whole order


class AckRow(TypedDict):
    """An acknowledgement or confirmation e-mail generated for the order's message."""

    id: int
    kind: str
    control_number: str | None
    channel: str | None
    state: str
    attempts: int
    error: str | None
    partner_ack: str | None  # the partner's acknowledgement of it: accepted, accepted_with_errors, rejected
    ack_code: str | None
    ack_errors: str | None
    overdue_at: Any  # set when the partner did not acknowledge it in time


class EventRow(TypedDict):
    """One line of an order's history."""

    at: dt.datetime
    kind: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class OrderDetail:
    """Everything `gateway show` prints about one order (the latest of its versions).

    `order`, `versions` and `message` are whole rows of the orders and messages tables, as
    mappings by column name (their columns are documented in `gateway.store.tables`).
    """

    order: dict[str, Any]
    versions: list[dict[str, Any]]
    message: dict[str, Any]
    deliveries: list[DeliveryRow]
    acks: list[AckRow]
    history: list[EventRow]


def list_orders(
    store: Store,
    *,
    state: str | None = None,
    limit: int = 50,
    partner: str | None = None,
    channel: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[OrderListing]:
    """The most recent orders first, optionally only those in `state`, from `partner` or
    `channel`, read from `since` (inclusive) to `until` (exclusive)."""
    o, m = t.orders, t.messages
    query = (
        select(o.c.id, o.c.po_number, o.c.partner, o.c.line_count, o.c.state, o.c.reason, m.c.display_name)
        .join(m, m.c.id == o.c.message_id)
        .order_by(o.c.created_at.desc())
        .limit(limit)
    )
    if state:
        query = query.where(o.c.state == state)
    if partner:
        query = query.where(o.c.partner == partner)
    if channel:
        query = query.where(o.c.channel == channel)
    if since is not None:
        query = query.where(o.c.created_at >= since)
    if until is not None:
        query = query.where(o.c.created_at < until)
    with store.engine.connect() as conn:
        return [OrderListing(**r._asdict()) for r in conn.execute(query)]


def list_messages(store: Store, *, state: str | None = None, limit: int = 50) -> list[MessageListing]:
    """The most recently received messages first, optionally only those in `state`."""
    m = t.messages
    query = (
        select(
            m.c.id, m.c.received_at, m.c.source, m.c.display_name, m.c.size, m.c.state, m.c.order_count,
            m.c.rejected_count, m.c.reason, m.c.error, m.c.warnings,
        )
        .order_by(m.c.received_at.desc())
        .limit(limit)
    )
    if state:
        query = query.where(m.c.state == state)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [MessageListing(**{**r._asdict(), "warnings": list(r.warnings or [])}) for r in rows]


def order_detail(store: Store, given: str) -> OrderDetail:
    """The order whose id starts with `given` or whose PO number is `given`, with its versions,
    deliveries, acknowledgements and history. GatewayError when none or several orders match
    (the versions of one order are one match)."""
    o = t.orders
    with store.engine.connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                select(o)
                .where(or_(o.c.id.startswith(given, autoescape=True), o.c.po_number == given))
                .order_by(o.c.version, o.c.created_at)
                .limit(20)
            ).mappings()
        ]
        if not rows:
            raise GatewayError(f"no order with id or PO number {given!r}; `gateway orders` lists them")
        keys = {r["order_key"] for r in rows}
        if len(rows) > 1 and (len(keys) > 1 or None in keys):
            ids = ", ".join(f"{r['id'][:8]} (PO {r['po_number']})" for r in rows)
            raise GatewayError(f"{given!r} matches several orders: {ids}; give more of the id")
        order = rows[-1]  # versions of one order: the latest is shown, the others listed
        ob, ev = t.outbox, t.events
        rows_out = [
            dict(r)
            for r in conn.execute(
                select(ob.c.id, ob.c.connector, ob.c.state, ob.c.attempts, ob.c.last_status, ob.c.last_error, ob.c.receipt,
                       ob.c.part, ob.c.part_of)
                .where(ob.c.order_id == order["id"], ob.c.kind == "order")
                .order_by(ob.c.id)
            ).mappings()
        ]
        split = part_routes(conn, {(order["id"], r["part_of"]) for r in rows_out if r["part"]})
        deliveries = []
        for r in rows_out:
            mine = part_route(split.get((order["id"], r["part_of"])), r["part"])
            r["part_label"] = label(r["part"], r["part_of"], mine.get("warehouse") if mine else None)
            deliveries.append(cast(DeliveryRow, r))
        outbox_ids = [d["id"] for d in deliveries]
        history = [
            cast(EventRow, dict(r))
            for r in conn.execute(
                select(ev.c.at, ev.c.kind, ev.c.detail)
                .where(
                    or_(
                        ev.c.order_id == order["id"],
                        ev.c.outbox_id.in_(outbox_ids or [-1]),
                        (ev.c.message_id == order["message_id"]) & ev.c.order_id.is_(None),
                    )
                )
                .order_by(ev.c.at, ev.c.id)
            ).mappings()
        ]
        message = dict(conn.execute(select(t.messages).where(t.messages.c.id == order["message_id"])).mappings().one())
        acks = [
            cast(AckRow, dict(r))
            for r in conn.execute(
                select(
                    ob.c.id, ob.c.kind, ob.c.control_number, ob.c.connector.label("channel"), ob.c.state, ob.c.attempts,
                    ob.c.last_error.label("error"), ob.c.ack_status.label("partner_ack"), ob.c.ack_code, ob.c.ack_errors,
                    ob.c.overdue_at,
                )
                .where(
                    ob.c.kind != "order",
                    ob.c.message_id == order["message_id"],
                    or_(ob.c.order_id.is_(None), ob.c.order_id == order["id"]),
                )
                .order_by(ob.c.id)
            ).mappings()
        ]
    return OrderDetail(order=order, versions=rows, message=message, deliveries=deliveries, acks=acks, history=history)


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """What became of one stored message: its state and reason, and the states of its orders."""

    state: str
    reason: str | None
    order_states: frozenset[str]


def message_outcome(store: Store, message_id: str) -> MessageOutcome | None:
    """The message's state, reason and its orders' states; None for an unknown message."""
    m, o = t.messages, t.orders
    with store.engine.connect() as conn:
        msg = conn.execute(select(m.c.state, m.c.reason).where(m.c.id == message_id)).one_or_none()
        states = frozenset(conn.execute(select(o.c.state).where(o.c.message_id == message_id)).scalars())
    if msg is None:
        return None
    return MessageOutcome(state=msg.state, reason=msg.reason, order_states=states)


def recent_event_details(store: Store, kind: str, *, limit: int) -> list[str | None]:
    """The `detail` of the newest `limit` events of `kind`, newest first."""
    ev = t.events
    with store.engine.connect() as conn:
        return list(conn.execute(select(ev.c.detail).where(ev.c.kind == kind).order_by(ev.c.id.desc()).limit(limit)).scalars())


def archived_messages(conn: Any, since: dt.datetime, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Messages received since `since` that were read (parsed) or refused after reading, oldest
    first: what `gateway replay-archive` reads again. Bodies are not loaded here."""
    m = t.messages
    query = (
        select(m.c.id, m.c.received_at, m.c.display_name, m.c.format, m.c.partner, m.c.state, m.c.reason, m.c.error)
        .where(m.c.received_at >= since, or_(m.c.state == "parsed", (m.c.state == "quarantined") & (m.c.attempts > 0)))
        .order_by(m.c.received_at, m.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [dict(r._mapping) for r in conn.execute(query)]


def decided_orders(conn: Any, message_id: str) -> dict[int, dict[str, Any]]:
    """doc_index -> (po_number, state, reason, data) of the orders read from a message (as read,
    not a person's edited versions)."""
    o = t.orders
    rows = conn.execute(
        select(o.c.doc_index, o.c.po_number, o.c.state, o.c.reason, o.c.data)
        .where(o.c.message_id == message_id, o.c.doc_index >= 0)
    )
    return {r.doc_index: dict(r._mapping) for r in rows}


def metrics_snapshot(conn: Any, now: dt.datetime) -> dict[str, Any]:
    """What `/metrics` exposes, counted by the database: orders and messages by state, outbox
    rows by kind, connector and state, the age of the oldest due row (by `now`, the database's
    clock), and the exception queue by state and reason."""
    from sqlalchemy import func

    m, o, ob = t.messages, t.orders, t.outbox
    oldest = conn.execute(
        select(func.min(ob.c.next_attempt_at)).where(ob.c.state == "pending", ob.c.next_attempt_at <= now)
    ).scalar()
    waiting = conn.execute(
        select(o.c.state, o.c.reason, func.count()).where(o.c.state.in_(["held", "quarantined"])).group_by(o.c.state, o.c.reason)
    ).all()
    return {
        "messages": dict(conn.execute(select(m.c.state, func.count()).group_by(m.c.state)).all()),
        "orders": dict(conn.execute(select(o.c.state, func.count()).group_by(o.c.state)).all()),
        "outbox": [tuple(r) for r in conn.execute(select(ob.c.kind, ob.c.connector, ob.c.state, func.count()).group_by(ob.c.kind, ob.c.connector, ob.c.state))],
        "oldest_due_seconds": max(0.0, (now - _aware(oldest)).total_seconds()) if oldest is not None else 0.0,
        "exceptions": [(state, (reason or "").split(":")[0], n) for state, reason, n in waiting],
    }


def _aware(value: Any) -> dt.datetime:
    when: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)

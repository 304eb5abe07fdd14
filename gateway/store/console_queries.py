"""Read queries for the web console (gateway.console): order search, a message's raw
bytes, and the state of each source and partner. Nothing here writes.

The order page itself reads `gateway.store.queries.order_detail` (what `gateway show`
prints), and the exception queue and dead letters their own repositories, so the console
and the CLI always show the same thing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select

from gateway.states import DeliveryState, MessageState, OrderState
from gateway.store import tables as t
from gateway.store.cursors import source_cursors
from gateway.store.db import Store, as_utc

__all__ = ["OrderFilter", "OrderHit", "PartnerState", "SourceState", "message_body", "partner_states", "search_choices", "search_orders", "source_states"]


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """What a person searches orders by; every field is optional and they combine (AND)."""

    po_number: str | None = None  # exact, or a prefix ending in *
    partner: str | None = None
    channel: str | None = None
    state: str | None = None
    received_from: dt.date | None = None  # the order's creation date, inclusive
    received_to: dt.date | None = None


@dataclass(frozen=True, slots=True)
class OrderHit:
    """One line of the order search."""

    id: str
    po_number: str | None
    partner: str | None
    channel: str
    state: str
    reason: str | None
    line_count: int
    version: int
    created_at: dt.datetime


def search_orders(store: Store, f: OrderFilter, *, limit: int = 50, offset: int = 0) -> tuple[list[OrderHit], int]:
    """Orders matching `f`, newest first (one page of `limit`), and how many match in all."""
    o = t.orders
    where: list[Any] = []
    if f.po_number:
        if f.po_number.endswith("*"):
            where.append(o.c.po_number.startswith(f.po_number[:-1], autoescape=True))
        else:
            where.append(o.c.po_number == f.po_number)
    if f.partner:
        where.append(o.c.partner == f.partner)
    if f.channel:
        where.append(o.c.channel == f.channel)
    if f.state:
        where.append(o.c.state == f.state)
    if f.received_from:
        where.append(o.c.created_at >= _day(f.received_from))
    if f.received_to:
        where.append(o.c.created_at < _day(f.received_to + dt.timedelta(days=1)))
    cond = and_(True, *where)
    cols = (o.c.id, o.c.po_number, o.c.partner, o.c.channel, o.c.state, o.c.reason, o.c.line_count, o.c.version, o.c.created_at)
    with store.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(o).where(cond)).scalar_one()
        rows = conn.execute(select(*cols).where(cond).order_by(o.c.created_at.desc(), o.c.id).limit(limit).offset(offset)).all()
    hits = [OrderHit(**{**r._asdict(), "created_at": as_utc(r.created_at)}) for r in rows]
    return hits, int(total)


def search_choices(store: Store) -> dict[str, list[str]]:
    """The partners and channels that have orders, for the search form's drop-downs."""
    o = t.orders
    with store.engine.connect() as conn:
        partners = [p for p in conn.execute(select(o.c.partner).distinct().order_by(o.c.partner)).scalars() if p]
        channels = [c for c in conn.execute(select(o.c.channel).distinct().order_by(o.c.channel)).scalars() if c]
    return {"partners": partners, "channels": channels, "states": [s.value for s in OrderState]}


def message_body(store: Store, message_id: str) -> bytes | None:
    """The raw bytes of a stored message, as received."""
    b = t.message_bodies
    with store.engine.connect() as conn:
        body = conn.execute(select(b.c.body).where(b.c.message_id == message_id)).scalar()
    return None if body is None else bytes(body)


@dataclass(frozen=True, slots=True)
class SourceState:
    """How one source is doing, as far as the store can tell."""

    source: str
    last_received_at: dt.datetime | None  # the newest message it delivered
    cursor: str | None  # how far a polling source has read (its own format)
    cursor_at: dt.datetime | None  # when the cursor last moved: the last poll that found something
    messages: int
    backlog: int  # stored, not yet processed
    refused: int
    last_error: str | None  # why its newest refused message was refused


def source_states(store: Store) -> list[SourceState]:
    """Every source that delivered a message or keeps a cursor, by name."""
    m, c = t.messages, source_cursors
    with store.engine.connect() as conn:
        counts = conn.execute(
            select(
                m.c.source,
                func.max(m.c.received_at),
                func.count(),
                func.sum(_flag(m.c.state == MessageState.RECEIVED)),
                func.sum(_flag(m.c.state == MessageState.QUARANTINED)),
            ).group_by(m.c.source)
        ).all()
        cursors = {r.source: (r.value, as_utc(r.updated_at)) for r in conn.execute(select(c))}
        errors: dict[str, str] = {}
        for r in conn.execute(
            select(m.c.source, m.c.reason, m.c.error).where(m.c.state == MessageState.QUARANTINED).order_by(m.c.received_at.desc()).limit(500)
        ):
            errors.setdefault(r.source, f"{r.reason or ''}: {r.error or ''}".strip(": "))
    states: dict[str, SourceState] = {}
    for source, last, n, backlog, refused in counts:
        cur = cursors.get(source, (None, None))
        states[source] = SourceState(source, as_utc(last), cur[0], cur[1], int(n), int(backlog or 0), int(refused or 0), errors.get(source))
    for source, (value, at) in cursors.items():
        states.setdefault(source, SourceState(source, None, value, at, 0, 0, 0, None))
    return [states[k] for k in sorted(states)]


@dataclass(frozen=True, slots=True)
class PartnerState:
    """How one trading partner is doing: its orders, what waits, and its acknowledgements."""

    partner: str
    orders: int
    last_order_at: dt.datetime | None
    waiting: int  # held or quarantined: the exception queue
    dead: int  # deliveries of its orders that gave up
    acks_overdue: int  # our documents it did not acknowledge in time
    last_error: str | None  # the newest reason one of its orders waits


def partner_states(store: Store, configured: list[str]) -> list[PartnerState]:
    """Every configured partner, and every other partner name seen on an order, by name."""
    o, ob = t.orders, t.outbox
    with store.engine.connect() as conn:
        orders = {
            r[0]: r[1:]
            for r in conn.execute(
                select(
                    o.c.partner,
                    func.count(),
                    func.max(o.c.created_at),
                    func.sum(_flag(o.c.state.in_([OrderState.HELD, OrderState.QUARANTINED]))),
                ).group_by(o.c.partner)
            )
            if r[0]
        }
        dead: dict[str, int] = dict(
            conn.execute(
                select(o.c.partner, func.count())
                .select_from(ob.join(o, o.c.id == ob.c.order_id))
                .where(ob.c.kind == "order", ob.c.state == DeliveryState.DEAD)
                .group_by(o.c.partner)
            ).all()
        )
        overdue: dict[str, int] = dict(
            conn.execute(
                select(ob.c.partner, func.count())
                .where(ob.c.kind != "order", ob.c.overdue_at.is_not(None), ob.c.ack_status.is_(None))
                .group_by(ob.c.partner)
            ).all()
        )
        errors: dict[str, str] = {}
        for r in conn.execute(
            select(o.c.partner, o.c.reason, o.c.error)
            .where(o.c.state.in_([OrderState.HELD, OrderState.QUARANTINED]))
            .order_by(o.c.created_at.desc())
            .limit(500)
        ):
            if r.partner:
                errors.setdefault(r.partner, f"{r.reason or ''}: {r.error or ''}".strip(": "))
    names = sorted({*configured, *orders, *(p for p in overdue if p)})
    result = []
    for name in names:
        n, last, waiting = orders.get(name, (0, None, 0))
        result.append(
            PartnerState(name, int(n), as_utc(last), int(waiting or 0), int(dead.get(name, 0)), int(overdue.get(name, 0)), errors.get(name))
        )
    return result


def _flag(cond: Any) -> Any:
    from sqlalchemy import Integer, case, cast

    return cast(case((cond, 1), else_=0), Integer)


def _day(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


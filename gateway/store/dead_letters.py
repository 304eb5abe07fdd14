"""Dead letters: deliveries that gave up, for a person to look at and replay.

    list_dead(store)             orders that did not reach a connector (`gateway dead-letters`)
    list_dead_documents(store)   acknowledgements and confirmation e-mails that were not sent
    replay(store, [12, 14])      queue them again ("all": every dead letter)

Orders and documents are rows of one outbox (`gateway.store.outbox`), so one replay serves
both: the retry policy starts afresh, the idempotency key stays (a target that did get an
earlier attempt sees a repeat), and an order with no dead row left is `validated` again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select, update

from gateway.states import DeliveryState, OrderState, move
from gateway.store import Store, add_events, as_utc
from gateway.store import tables as t
from gateway.store.documents import describe
from gateway.store.outbox import ORDER, event_row, utc

__all__ = ["DeadDocument", "DeadLetter", "list_dead", "list_dead_documents", "replay"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery of an order that needs a person: what failed, how often, and why."""

    outbox_id: int
    order_id: str
    po_number: str | None
    partner: str | None
    connector: str
    attempts: int
    last_status: int | None
    last_error: str | None
    first_attempt_at: dt.datetime | None
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class DeadDocument:
    """An acknowledgement or confirmation e-mail that was not sent."""

    outbox_id: int
    kind: str
    control_number: str | None
    partner: str | None
    channel: str
    message_id: str | None
    order_id: str | None
    attempts: int
    last_error: str | None

    @property
    def what(self) -> str:
        return describe(self.kind, self.control_number, self.partner)


def list_dead(store: Store, *, connector: str | None = None, limit: int | None = None) -> list[DeadLetter]:
    """Dead deliveries of orders, oldest first, with what a person needs to decide on a replay."""
    o, od = t.outbox, t.orders
    query = (
        select(
            o.c.id,
            o.c.order_id,
            od.c.po_number,
            od.c.partner,
            o.c.connector,
            o.c.attempts,
            o.c.last_status,
            o.c.last_error,
            o.c.first_attempt_at,
            o.c.updated_at,
        )
        .join(od, od.c.id == o.c.order_id)
        .where(o.c.state == DeliveryState.DEAD, o.c.kind == ORDER)
        .order_by(o.c.updated_at, o.c.id)
    )
    if connector is not None:
        query = query.where(o.c.connector == connector)
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        return [
            DeadLetter(
                outbox_id=r.id,
                order_id=r.order_id,
                po_number=r.po_number,
                partner=r.partner,
                connector=r.connector,
                attempts=r.attempts,
                last_status=r.last_status,
                last_error=r.last_error,
                first_attempt_at=as_utc(r.first_attempt_at),
                updated_at=as_utc(r.updated_at),  # type: ignore[arg-type]
            )
            for r in conn.execute(query)
        ]


def list_dead_documents(store: Store, *, limit: int | None = None) -> list[DeadDocument]:
    """Dead acknowledgements and confirmation e-mails, oldest first."""
    o = t.outbox
    query = (
        select(o.c.id, o.c.kind, o.c.control_number, o.c.partner, o.c.connector, o.c.message_id, o.c.order_id, o.c.attempts, o.c.last_error)
        .where(o.c.state == DeliveryState.DEAD, o.c.kind != ORDER)
        .order_by(o.c.updated_at, o.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        return [
            DeadDocument(r.id, r.kind, r.control_number, r.partner, r.connector, r.message_id, r.order_id, r.attempts, r.last_error)
            for r in conn.execute(query)
        ]


def replay(store: Store, ids: Iterable[int] | Literal["all"], *, now: dt.datetime | None = None) -> int:
    """Put dead deliveries (orders and documents) back in the queue: `ids` (outbox ids) or
    "all". Returns how many.

    Attempts and the first-attempt time are reset, so the retry policy starts afresh; the
    idempotency key stays, so a target that did receive an earlier attempt sees a repeat.
    Rows that are not dead are left alone. An order with no dead row left is `validated` again.
    """
    o = t.outbox
    query = select(
        o.c.id, o.c.order_id, o.c.connector, o.c.attempts, o.c.last_error, o.c.kind, o.c.message_id, o.c.partner, o.c.control_number
    ).where(o.c.state == DeliveryState.DEAD)
    if ids != "all":
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return 0
        query = query.where(o.c.id.in_(wanted))
    with store.begin() as conn:
        now = utc(now) if now is not None else store.db_now(conn)  # due at once by the database's clock
        if store.supports_skip_locked:
            query = query.with_for_update(of=o)
        rows = conn.execute(query.order_by(o.c.id)).all()
        if not rows:
            return 0
        events = []
        again = move(DeliveryState, DeliveryState.DEAD, DeliveryState.PENDING)
        for r in rows:
            conn.execute(
                update(o)
                .where(o.c.id == r.id, o.c.state == DeliveryState.DEAD)
                .values(
                    state=again.value,
                    attempts=0,
                    first_attempt_at=None,
                    next_attempt_at=now,
                    lease_until=None,
                    updated_at=now,
                    replays=o.c.replays + 1,
                )
            )
            if r.kind == ORDER:
                detail = f"dead delivery to {r.connector} queued again after {r.attempts} attempts"
            else:
                detail = f"{describe(r.kind, r.control_number, r.partner)} queued again after {r.attempts} attempt(s)"
            events.append(event_row("replayed", detail + (f"; last error: {r.last_error}" if r.last_error else ""), r, now))
        for order_id in sorted({r.order_id for r in rows if r.kind == ORDER}):
            still_dead = conn.execute(
                select(func.count())
                .select_from(o)
                .where(o.c.order_id == order_id, o.c.kind == ORDER, o.c.state == DeliveryState.DEAD)
            ).scalar_one()
            if not still_dead:
                conn.execute(
                    update(t.orders)
                    .where(t.orders.c.id == order_id, t.orders.c.state == OrderState.DEAD)
                    .values(state=move(OrderState, OrderState.DEAD, OrderState.VALIDATED).value, updated_at=now)
                )
        add_events(conn, events)
    return len(rows)

"""Dead letters: deliveries that gave up, for a person to look at and replay.

    list_dead(store, DeadFilter(partner="ACME"))   orders that did not reach a connector (`gateway dead-letters`)
    attempts_of(store, [12, 14])  each one's attempts, errors and times (its events), for context
    list_dead_documents(store)    acknowledgements and confirmation e-mails that were not sent
    replay(store, [12, 14], by="ana")  queue them again ("all": every dead letter)
    discard(store, [12], reason=..., by="ana")   a person decides it never goes: `discarded`
    retire(conn, order_id, ...)   an edit replaced the order (gateway.processing.dead_letters)

Every action by a person names who (`by`) and lands in the order's history. A discarded
delivery is never claimed again; an order with no dead delivery left after a discard is
`discarded`, so its state says the delivery never went.

Orders and documents are rows of one outbox (`gateway.store.outbox`), so one replay serves
both: the retry policy starts afresh, the idempotency key stays (a target that did get an
earlier attempt sees a repeat), and an order with no dead row left is `validated` again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, func, select, update

from gateway.errors import GatewayError
from gateway.parts import describe as part_name
from gateway.states import DeliveryState, OrderState, move
from gateway.store import Store, add_events, as_utc
from gateway.store import tables as t
from gateway.store.db import db_now as store_now
from gateway.store.documents import describe
from gateway.store.outbox import ORDER, event_row, utc

__all__ = [
    "Attempt",
    "DeadDocument",
    "DeadFilter",
    "DeadLetter",
    "attempts_of",
    "dead_deliveries",
    "discard",
    "list_dead",
    "list_dead_documents",
    "order_of",
    "replay",
    "retire",
]


@dataclass(frozen=True, slots=True)
class DeadFilter:
    """Which dead deliveries of orders: every field given must match (None: any)."""

    connector: str | None = None  # the connector's name, exactly
    partner: str | None = None  # the order's partner, exactly
    error: str | None = None  # a piece of the last error (matched literally, case as given)
    since: dt.datetime | None = None  # died at or after (aware UTC)
    until: dt.datetime | None = None  # died before (aware UTC)
    order: str | None = None  # the first characters of the order id (at least 6)
    po: str | None = None  # the PO number, exactly (every version of it)
    part: int | None = None  # a split order's part (gateway.parts; 0: whole-order deliveries)

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One thing that happened to a delivery: a failed try, its death, a replay, a send."""

    at: dt.datetime
    kind: str  # retry_scheduled | dead | replayed | sent | discarded | ...
    detail: str | None


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
    part: int = 0  # a split order's part (gateway.parts); 0: the whole order
    part_of: int = 0  # how many parts the order was split into

    @property
    def target(self) -> str:
        """The connector, and the part when it is one: "shipstation part 2 of 3"."""
        return part_name(self.connector, self.part, self.part_of)


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


def list_dead(
    store: Store, which: DeadFilter | None = None, *, connector: str | None = None, limit: int | None = None
) -> list[DeadLetter]:
    """Dead deliveries of orders, oldest first, with what a person needs to decide on a replay."""
    which = which or DeadFilter(connector=connector)
    if connector is not None and which.connector is None:
        which = dataclasses.replace(which, connector=connector)
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
            o.c.part,
            o.c.part_of,
        )
        .join(od, od.c.id == o.c.order_id)
        .where(o.c.state == DeliveryState.DEAD, o.c.kind == ORDER, *_matching(which))
        .order_by(o.c.updated_at, o.c.id)
    )
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
                part=r.part,
                part_of=r.part_of,
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


def replay(store: Store, ids: Iterable[int] | Literal["all"], *, by: str | None = None, now: dt.datetime | None = None) -> int:
    """Put dead deliveries (orders and documents) back in the queue: `ids` (outbox ids) or
    "all". Returns how many.

    Attempts and the first-attempt time are reset, so the retry policy starts afresh; the
    idempotency key stays, so a target that did receive an earlier attempt sees a repeat.
    Rows that are not dead are left alone. An order with no dead row left is `validated` again.
    `by` names who asked (the history records it).
    """
    who = f" by {_words(by, 'who you are (--by NAME)')}" if by is not None else ""
    o = t.outbox
    query = select(
        o.c.id, o.c.order_id, o.c.connector, o.c.attempts, o.c.last_error, o.c.kind, o.c.message_id, o.c.partner, o.c.control_number,
        o.c.part, o.c.part_of,
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
                detail = f"dead delivery to {part_name(r.connector, r.part, r.part_of)} queued again{who} after {r.attempts} attempts"
            else:
                detail = f"{describe(r.kind, r.control_number, r.partner)} queued again{who} after {r.attempts} attempt(s)"
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


def _matching(which: DeadFilter) -> list[Any]:
    """WHERE clauses over outbox `o` joined with orders `od` for a filter; text is matched
    literally (LIKE wildcards in it are escaped)."""
    o, od = t.outbox, t.orders
    where: list[Any] = []
    if which.connector is not None:
        where.append(o.c.connector == which.connector)
    if which.partner is not None:
        where.append(od.c.partner == which.partner)
    if which.error is not None:
        where.append(o.c.last_error.contains(which.error, autoescape=True))
    if which.since is not None:
        where.append(o.c.updated_at >= utc(which.since))
    if which.until is not None:
        where.append(o.c.updated_at < utc(which.until))
    if which.order is not None:
        ident = which.order.strip()
        if len(ident) < 6:
            raise GatewayError("give at least the first 6 characters of the order id (see `gateway dead-letters`)")
        where.append(od.c.id.startswith(ident, autoescape=True))
    if which.po is not None:
        where.append(od.c.po_number == which.po)
    if which.part is not None:
        where.append(o.c.part == which.part)
    return where


def attempts_of(store: Store, outbox_ids: Iterable[int]) -> dict[int, list[Attempt]]:
    """outbox id -> its delivery events (failed tries with their errors, death, replays,
    discards), oldest first: the context a person reads before deciding."""
    wanted = sorted({int(i) for i in outbox_ids})
    found: dict[int, list[Attempt]] = {i: [] for i in wanted}
    e = t.events
    with store.engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            rows = conn.execute(
                select(e.c.outbox_id, e.c.at, e.c.kind, e.c.detail)
                .where(e.c.outbox_id.in_(wanted[i : i + 500]))
                .order_by(e.c.at, e.c.id)
            )
            for r in rows:
                found[r.outbox_id].append(Attempt(as_utc(r.at), r.kind, r.detail))  # type: ignore[arg-type]
    return found


def order_of(store: Store, outbox_id: int) -> str:
    """The order id of the dead delivery of an order `outbox_id`; GatewayError when it is not one."""
    o = t.outbox
    with store.engine.connect() as conn:
        row = conn.execute(select(o.c.order_id, o.c.state, o.c.kind).where(o.c.id == int(outbox_id))).first()
    if row is None or row.kind != ORDER or row.state != DeliveryState.DEAD:
        raise GatewayError(f"no dead letter with id {outbox_id} (`gateway dead-letters` lists them)")
    return str(row.order_id)


def dead_deliveries(conn: Connection, order_id: str) -> list[Any]:
    """(id, connector, action, after_id, target_reference, attempts, last_error, kind,
    order_id, message_id, part, part_of) of the order's dead deliveries, locked for the caller's change."""
    o = t.outbox
    query = (
        select(o.c.id, o.c.connector, o.c.action, o.c.after_id, o.c.target_reference, o.c.attempts, o.c.last_error,
               o.c.kind, o.c.order_id, o.c.message_id, o.c.part, o.c.part_of)
        .where(o.c.order_id == order_id, o.c.kind == ORDER, o.c.state == DeliveryState.DEAD)
        .order_by(o.c.id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=o)
    return list(conn.execute(query))


def discard(store: Store, ids: Iterable[int], *, reason: str, by: str, now: dt.datetime | None = None) -> int:
    """A person decides dead deliveries of orders (outbox ids) never go: they become
    `discarded`, the reason and who in the order's history; an order with no dead delivery
    left is `discarded`. Rows that are not dead deliveries of orders are left alone. How many."""
    who, why = _words(by, "who you are (--by NAME)"), _words(reason, "why (--reason TEXT)", 2000)
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return 0
    o = t.outbox
    with store.begin() as conn:
        now = utc(now) if now is not None else store.db_now(conn)
        query = select(o.c.id, o.c.order_id, o.c.connector, o.c.attempts, o.c.kind, o.c.message_id, o.c.part, o.c.part_of).where(
            o.c.id.in_(wanted), o.c.state == DeliveryState.DEAD, o.c.kind == ORDER
        )
        if store.supports_skip_locked:
            query = query.with_for_update(of=o)
        rows = conn.execute(query.order_by(o.c.id)).all()
        events = [
            event_row("discarded", f"dead delivery to {part_name(r.connector, r.part, r.part_of)} discarded by {who} after {r.attempts} attempt(s): {why}", r, now)
            for r in rows
        ]
        _to_discarded(conn, [r.id for r in rows], now)
        _settle_discarded(conn, {r.order_id for r in rows}, now, events, f"discarded by {who}: {why}")
        add_events(conn, events)
    return len(rows)


def retire(conn: Connection, rows: list[Any], *, by: str, replacement: str, version: int) -> None:
    """The dead deliveries `rows` (from `dead_deliveries`) of an order a person's edit replaced
    with version `version` (order `replacement`): `discarded`, and said so in the history.
    The edit itself supersedes the order (gateway.processing.exception_queue)."""
    now = store_now(conn)
    _to_discarded(conn, [r.id for r in rows], now)
    add_events(
        conn,
        [
            event_row(
                "discarded",
                f"dead delivery to {part_name(r.connector, r.part, r.part_of)} replaced by edited version {version} ({replacement[:8]}), edited by {by}",
                r,
                now,
            )
            for r in rows
        ],
    )


def _to_discarded(conn: Connection, ids: list[int], now: dt.datetime) -> None:
    if not ids:
        return
    o = t.outbox
    state = move(DeliveryState, DeliveryState.DEAD, DeliveryState.DISCARDED).value
    conn.execute(
        update(o).where(o.c.id.in_(ids), o.c.state == DeliveryState.DEAD).values(state=state, lease_until=None, updated_at=now)
    )


def _settle_discarded(conn: Connection, order_ids: Iterable[str], now: dt.datetime, events: list[dict[str, Any]], why: str) -> None:
    """Each dead order with no dead delivery left becomes `discarded`."""
    o, od = t.outbox, t.orders
    for order_id in sorted(order_ids):
        left = conn.execute(
            select(func.count()).select_from(o).where(o.c.order_id == order_id, o.c.kind == ORDER, o.c.state == DeliveryState.DEAD)
        ).scalar_one()
        if left:
            continue
        state = move(OrderState, OrderState.DEAD, OrderState.DISCARDED).value
        done = conn.execute(update(od).where(od.c.id == order_id, od.c.state == OrderState.DEAD).values(state=state, updated_at=now))
        if done.rowcount:
            events.append({"kind": "order_discarded", "detail": why, "order_id": order_id, "outbox_id": None, "at": now})


def _words(text: str | None, what: str, limit: int = 100) -> str:
    value = " ".join((text or "").split())
    if not value:
        raise GatewayError(f"say {what}: the order's history records it")
    return value[:limit]

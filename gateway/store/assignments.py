"""The exception queue's assignments: which team (and person) a waiting order belongs to, and
when the team was told (`gateway.processing.notify`). An order's row is inserted in the
transaction that queues its notification (an insert that skips orders another node took),
and a reminder is claimed (reminded_at set, by an
UPDATE that only one node can win) in the transaction that queues it: never told twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.states import OrderState
from gateway.store import tables as t

__all__ = ["assign_person", "claim_reminders", "for_order", "of_orders", "record", "unannounced"]

a = t.order_assignments
o = t.orders
_WAITING = (OrderState.HELD.value, OrderState.QUARANTINED.value)


def unannounced(conn: Connection, limit: int = 500) -> list[dict[str, Any]]:
    """Held and quarantined orders that have no assignment yet (newly waiting), oldest first."""
    query = (
        select(o.c.id, o.c.created_at, o.c.state, o.c.partner, o.c.channel, o.c.po_number, o.c.reason, o.c.error)
        .select_from(o.outerjoin(a, a.c.order_id == o.c.id))
        .where(o.c.state.in_(_WAITING), a.c.order_id.is_(None))
        .order_by(o.c.created_at, o.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def record(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert assignment rows (order_id, team, assigned_at, notified_at), skipping orders that
    have one already (another node's pass took them meanwhile); the order ids inserted here."""
    if not rows:
        return set()
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(a).on_conflict_do_nothing(index_elements=["order_id"]).returning(a.c.order_id)
    full = [{"assignee": None, "assigned_by": None, "reminded_at": None, **r} for r in rows]
    return set(conn.execute(stmt, full).scalars())


def claim_reminders(conn: Connection, team: str, waiting_since: dt.datetime, now: dt.datetime, limit: int = 500) -> list[dict[str, Any]]:
    """Take the team's orders that still wait and arrived before `waiting_since` and were not
    reminded of yet: their reminded_at is set to `now` here (a concurrent pass finds them taken).
    Returns them (id, created_at, state, partner, channel, po_number, reason, error)."""
    due = (
        select(a.c.order_id)
        .select_from(a.join(o, o.c.id == a.c.order_id))
        .where(a.c.team == team, a.c.reminded_at.is_(None), o.c.state.in_(_WAITING), o.c.created_at < waiting_since)
        .order_by(o.c.created_at)
        .limit(limit)
    )
    ids = list(conn.execute(due).scalars())
    if not ids:
        return []
    taken = list(
        conn.execute(update(a).where(a.c.order_id.in_(ids), a.c.reminded_at.is_(None)).values(reminded_at=now).returning(a.c.order_id)).scalars()
    )
    if not taken:
        return []
    rows = conn.execute(
        select(o.c.id, o.c.created_at, o.c.state, o.c.partner, o.c.channel, o.c.po_number, o.c.reason, o.c.error).where(o.c.id.in_(taken)).order_by(o.c.created_at, o.c.id)
    )
    return [dict(r._mapping) for r in rows]


def assign_person(conn: Connection, order_id: str, *, team: str | None, assignee: str, by: str, now: dt.datetime) -> dict[str, Any] | None:
    """Give a waiting order to a person (and `team`, when given); the previous assignment (None: none)."""
    old = conn.execute(select(a).where(a.c.order_id == order_id)).first()
    values: dict[str, Any] = {"assignee": assignee, "assigned_by": by, "assigned_at": now}
    if team is not None:
        values["team"] = team
    if old is None:
        # Not announced yet: the notification pass still tells the team (notified_at stays null
        # only for a row it wrote itself), so record the person and leave announcing to it.
        conn.execute(a.insert().values(order_id=order_id, team=team, notified_at=None, reminded_at=None, **{k: v for k, v in values.items() if k != "team"}))
        return None
    conn.execute(update(a).where(a.c.order_id == order_id).values(**values))
    return dict(old._mapping)


def of_orders(conn: Connection, order_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """order id -> {team, assignee, assigned_by, assigned_at, notified_at, reminded_at}."""
    ids = list(order_ids)
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        for r in conn.execute(select(a).where(a.c.order_id.in_(ids[i : i + 500]))):
            row = dict(r._mapping)
            out[row.pop("order_id")] = row
    return out


def for_order(store: Any, order_id: str) -> dict[str, Any] | None:
    """The assignment of one order, for `gateway show` (a Store; read-only)."""
    with store.engine.connect() as conn:
        return of_orders(conn, [order_id]).get(order_id)

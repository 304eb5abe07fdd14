"""What the rules found about orders, and the order history they read.

    rule_findings(order_id, seq, rule, outcome, code, message, line, data)
    rule_decisions(order_id, outcome, account, fingerprint, decided_at, decided_by)

Written by the decide step (gateway.processing.decide) in the batch's transaction; read by
`gateway show` (every reason with its line), by `gateway approve` (was it held by a rule?),
and as order history (orders per account, content already seen) by the rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update

from gateway.store import tables as t
from gateway.store.db import utcnow

__all__ = ["decided_at", "decision_of", "findings_of", "for_order", "forget", "insert", "order_counts", "person_decided", "seen"]

f, d = t.rule_findings, t.rule_decisions
_CHUNK = 500

# The rules' two history look-ups run for every chunk of 50 new orders: built once, so
# SQLAlchemy neither builds the statement nor works out its cache key again each time (236 ->
# 92 us and 289 -> 103 us per call, timed in a loop of 500 calls on SQLite). `before` is a far
# future unless replaying an archive.
_NEVER = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
_COUNTS = (
    select(d.c.account, func.count())
    .where(d.c.account.in_(bindparam("names", expanding=True)), d.c.outcome != "reject", d.c.decided_at < bindparam("before", type_=t.TZ))
    .group_by(d.c.account)
)
_SEEN = (
    select(d.c.fingerprint, t.orders.c.id, t.orders.c.po_number, t.orders.c.channel)
    .join(t.orders, t.orders.c.id == d.c.order_id)
    .where(
        d.c.fingerprint.in_(bindparam("fps", expanding=True)),
        d.c.decided_at >= bindparam("since", type_=t.TZ),
        d.c.decided_at < bindparam("before", type_=t.TZ),
        d.c.outcome != "reject",
    )
)


def insert(conn: Connection, findings: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> None:
    if findings:
        conn.execute(f.insert(), findings)
    if decisions:
        conn.execute(d.insert(), decisions)


def findings_of(conn: Connection, order_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(f.c.rule, f.c.outcome, f.c.code, f.c.message, f.c.line, f.c.data).where(f.c.order_id == order_id).order_by(f.c.seq))
    return [dict(r._mapping) for r in rows]


def for_order(store: Any, order_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(decision, findings) of one order, for `gateway show` (a Store; read-only)."""
    with store.engine.connect() as conn:
        return decision_of(conn, order_id), findings_of(conn, order_id)


def decision_of(conn: Connection, order_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(d).where(d.c.order_id == order_id)).first()
    return dict(row._mapping) if row is not None else None


def person_decided(conn: Connection, order_id: str, outcome: str, by: str) -> None:
    """A person approved (accept) or rejected an order the rules held."""
    conn.execute(update(d).where(d.c.order_id == order_id).values(outcome=outcome, decided_by=by or "a person", decided_at=utcnow()))


def forget(conn: Connection, order_ids: Iterable[str]) -> None:
    ids = list(order_ids)
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        conn.execute(delete(f).where(f.c.order_id.in_(part)))
        conn.execute(delete(d).where(d.c.order_id.in_(part)))


def order_counts(conn: Connection, accounts: Collection[str], *, before: dt.datetime | None = None) -> dict[str, int]:
    """Orders decided before (`before`: that time; `gateway replay-archive`), by account
    (rejected ones not counted)."""
    out: dict[str, int] = {}
    names = list(accounts)
    for i in range(0, len(names), _CHUNK):
        rows = conn.execute(_COUNTS, {"names": names[i : i + _CHUNK], "before": before or _NEVER})
        out.update({r[0]: int(r[1]) for r in rows})
    return out


def decided_at(conn: Connection, message_id: str) -> dt.datetime | None:
    """When the rules first decided one of the message's orders (None: they never did)."""
    o = t.orders
    value = conn.execute(select(func.min(d.c.decided_at)).join(o, o.c.id == d.c.order_id).where(o.c.message_id == message_id)).scalar()
    return value if isinstance(value, dt.datetime) else None


def seen(conn: Connection, fingerprints: Collection[str], since: dt.datetime, *, before: dt.datetime | None = None) -> dict[str, str]:
    """Fingerprints of orders decided since `since` (not rejected), each with the order it was;
    `before`: only those decided before that time (`gateway replay-archive`)."""
    out: dict[str, str] = {}
    fps = list(fingerprints)
    for i in range(0, len(fps), _CHUNK):
        rows = conn.execute(_SEEN, {"fps": fps[i : i + _CHUNK], "since": since, "before": before or _NEVER})
        for r in rows:
            out.setdefault(r.fingerprint, f"order {r.id[:8]} PO {r.po_number} ({r.channel})")
    return out

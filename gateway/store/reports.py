"""Operations reports: what `gateway report` prints and the web console will chart.

Read-only. Every function takes the store and a period (`since` inclusive, `until` exclusive,
both aware UTC; None leaves that end open) and returns typed rows, so the CLI, CSV export and
a console format them without knowing the tables. The definitions (README "Reports"):

    volumes          orders read per UTC day, channel and partner (as read: a person's
                     corrected versions are not new orders)
    touchless        of the orders read (repeats of an order already counted, `duplicate` and
                     `stale`, left out), those dispatched without a person's action: never held,
                     refused, edited, released or replayed
    exceptions       orders read that were held or refused at some point, by reason code
    cycle time       from the receipt of the message to the order's dispatch (every delivery
                     sent), p50 and p95, per channel and overall
    dead-letter age  deliveries and documents given up, per kind and connector, with how long
                     since they gave up (now: the database's clock)

An order belongs to the period in which it was read (`orders.created_at`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Date, and_, cast, exists, func, select
from sqlalchemy.sql.elements import ColumnElement

from gateway.store import tables as t
from gateway.store.db import Store

__all__ = [
    "duration",
    "CycleTime",
    "DeadLetterAge",
    "ExceptionRate",
    "PERSON_EVENTS",
    "Touchless",
    "VolumeRow",
    "cycle_time",
    "dead_letter_age",
    "exceptions",
    "percentile",
    "touchless",
    "volumes",
]

#: History events that mean a person or an exception touched an order: an order with one of
#: these is not touchless.
PERSON_EVENTS = ("held", "quarantined", "edited", "released", "replayed")
#: Orders that repeat one already counted: left out of rates.
REPEATS = ("duplicate", "stale")
DISPATCHED = ("dispatched", "shipped")


@dataclass(frozen=True, slots=True)
class VolumeRow:
    """Orders read on one UTC day from one channel and partner."""

    day: dt.date
    channel: str
    partner: str | None
    orders: int


@dataclass(frozen=True, slots=True)
class Touchless:
    """The touchless rate of one channel (channel "*": all channels)."""

    channel: str
    orders: int  # read in the period, repeats left out
    dispatched: int  # of those, dispatched (or shipped) by now
    touchless: int  # dispatched without a person's action
    rate: float  # touchless / orders (0 when there are no orders)


@dataclass(frozen=True, slots=True)
class ExceptionRate:
    """Orders held or refused for one reason (reason "*": any reason)."""

    reason: str
    orders: int
    rate: float  # of the orders read in the period, repeats left out


@dataclass(frozen=True, slots=True)
class CycleTime:
    """Receipt of the message to dispatch of the order, for one channel (channel "*": all)."""

    channel: str
    orders: int  # dispatched orders measured
    p50_seconds: float | None
    p95_seconds: float | None
    max_seconds: float | None


@dataclass(frozen=True, slots=True)
class DeadLetterAge:
    """Dead letters of one kind ("order", "997", "855", ...) to one connector or channel."""

    kind: str
    connector: str
    count: int
    oldest_dead_since: dt.datetime
    oldest_age_seconds: float
    median_age_seconds: float


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank percentile `p` (0-100) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def _period(col: Any, since: dt.datetime | None, until: dt.datetime | None) -> ColumnElement[bool]:
    parts = [col >= since] if since is not None else []
    if until is not None:
        parts.append(col < until)
    return and_(True, *parts)


def _as_read() -> ColumnElement[bool]:
    return t.orders.c.doc_index >= 0  # a person's corrected versions are stored with a negative index


def _day(conn: Any, col: Any) -> Any:
    if conn.dialect.name == "sqlite":
        return func.date(col)
    return cast(func.timezone("UTC", col), Date)


def _aware(value: Any) -> dt.datetime:
    when: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def volumes(store: Store, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[VolumeRow]:
    """Orders read per UTC day, channel and partner, oldest day first."""
    o = t.orders
    with store.engine.connect() as conn:
        day = _day(conn, o.c.created_at).label("day")
        rows = conn.execute(
            select(day, o.c.channel, o.c.partner, func.count())
            .where(_period(o.c.created_at, since, until), _as_read())
            .group_by(day, o.c.channel, o.c.partner)
            .order_by(day, o.c.channel, o.c.partner)
        ).all()
    return [
        VolumeRow(day=r[0] if isinstance(r[0], dt.date) else dt.date.fromisoformat(r[0]), channel=r[1], partner=r[2], orders=int(r[3]))
        for r in rows
    ]


def _touched() -> Any:
    e = t.events
    return exists().where(e.c.order_id == t.orders.c.id, e.c.kind.in_(PERSON_EVENTS))


def touchless(store: Store, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[Touchless]:
    """The touchless rate per channel, then all channels together (channel "*")."""
    o = t.orders
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(o.c.channel, o.c.state, _touched().label("touched"), func.count())
            .where(_period(o.c.created_at, since, until), _as_read(), o.c.state.not_in(REPEATS))
            .group_by(o.c.channel, o.c.state, "touched")
        ).all()
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for channel, state, touched, n in rows:
        for key in (channel, "*"):
            c = counts[key]
            c[0] += n
            if state in DISPATCHED:
                c[1] += n
                if not touched:
                    c[2] += n
    counts.setdefault("*", [0, 0, 0])
    return [
        Touchless(channel=k, orders=v[0], dispatched=v[1], touchless=v[2], rate=(v[2] / v[0]) if v[0] else 0.0)
        for k, v in sorted(counts.items(), key=lambda kv: (kv[0] == "*", kv[0]))
    ]


def exceptions(store: Store, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[ExceptionRate]:
    """Orders held or refused at some point, by reason code, most frequent first, then every
    reason together (reason "*"). The reason is the order's own while it waits or stays
    refused; for one a person has since approved, the rules' first hold or reject code; else
    `RESOLVED`."""
    o, e, f = t.orders, t.events, t.rule_findings
    was_exception = exists().where(e.c.order_id == o.c.id, e.c.kind.in_(("held", "quarantined")))
    first_code = (
        select(f.c.code)
        .where(f.c.order_id == o.c.id, f.c.outcome != "accept")
        .order_by(f.c.seq)
        .limit(1)
        .scalar_subquery()
    )
    with store.engine.connect() as conn:
        total = conn.execute(
            select(func.count()).where(_period(o.c.created_at, since, until), _as_read(), o.c.state.not_in(REPEATS))
        ).scalar_one()
        rows = conn.execute(
            select(o.c.reason, first_code)
            .where(_period(o.c.created_at, since, until), _as_read(), o.c.state.not_in(REPEATS), was_exception)
        ).all()
    by_reason: dict[str, int] = defaultdict(int)
    for reason, code in rows:
        by_reason[(reason or code or "RESOLVED").split(":")[0]] += 1
    result = [
        ExceptionRate(reason=r, orders=n, rate=n / total if total else 0.0)
        for r, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    result.append(ExceptionRate(reason="*", orders=len(rows), rate=len(rows) / total if total else 0.0))
    return result


def cycle_time(store: Store, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[CycleTime]:
    """Receipt to dispatch per channel, then every channel (channel "*"), for the orders read in
    the period that are dispatched (their first `dispatched` event)."""
    o, m, e = t.orders, t.messages, t.events
    dispatched_at = func.min(e.c.at)
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(o.c.channel, m.c.received_at, dispatched_at)
            .select_from(o.join(m, m.c.id == o.c.message_id).join(e, and_(e.c.order_id == o.c.id, e.c.kind == "dispatched")))
            .where(_period(o.c.created_at, since, until), _as_read())
            .group_by(o.c.id, o.c.channel, m.c.received_at)
        ).all()
    spans: dict[str, list[float]] = defaultdict(list)
    for channel, received, done in rows:
        seconds = max(0.0, (_aware(done) - _aware(received)).total_seconds())
        spans[channel].append(seconds)
        spans["*"].append(seconds)
    spans.setdefault("*", [])
    return [
        CycleTime(
            channel=k, orders=len(v), p50_seconds=percentile(v, 50), p95_seconds=percentile(v, 95),
            max_seconds=max(v) if v else None,
        )
        for k, v in sorted(spans.items(), key=lambda kv: (kv[0] == "*", kv[0]))
    ]


def dead_letter_age(store: Store, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[DeadLetterAge]:
    """Dead letters now (given up in the period), per kind and connector, oldest first."""
    ob = t.outbox
    with store.engine.connect() as conn:
        now = store.db_now(conn)
        rows = conn.execute(
            select(ob.c.kind, ob.c.connector, ob.c.updated_at)
            .where(ob.c.state == "dead", _period(ob.c.updated_at, since, until))
        ).all()
    groups: dict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
    for kind, connector, at in rows:
        groups[(kind, connector)].append(_aware(at))
    result = []
    for (kind, connector), times in groups.items():
        ages = [max(0.0, (now - at).total_seconds()) for at in times]
        result.append(
            DeadLetterAge(
                kind=kind, connector=connector, count=len(times), oldest_dead_since=min(times),
                oldest_age_seconds=max(ages), median_age_seconds=percentile(ages, 50) or 0.0,
            )
        )
    return sorted(result, key=lambda r: r.oldest_dead_since)


def duration(seconds: float | None) -> str:
    """Seconds as people read them in a report (`gateway report`, the console's reports page)."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"

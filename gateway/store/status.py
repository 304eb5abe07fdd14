"""`gateway status`: the backlog per stage, throughput and the oldest waiting item, now.

Read-only, one connection, ages on the database's clock (a node whose clock is off reports the
same as any other). Stages, in the order work flows:

    messages     stored, waiting to be read (state received)
    orders       accepted, waiting for every delivery to be sent (state validated)
    deliveries   order deliveries queued or being sent (outbox kind order, pending or in flight)
    documents    acknowledgements and confirmation e-mails queued or being sent
    held         orders waiting for a person (held, or a change waiting for its original) and
                 documents held for want of an outbound channel
    quarantined  orders refused, waiting for a person to correct, release or leave them
    dead         deliveries and documents given up (replayable)

Throughput counts, over the last 5 and 60 minutes, the messages received, the orders
dispatched (by their last update) and the documents sent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from gateway.store import tables as t
from gateway.store.db import Store

__all__ = ["Stage", "Status", "Throughput", "status"]


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage's backlog: how many wait there and since when the oldest has waited."""

    name: str
    waiting: int
    oldest_since: dt.datetime | None
    oldest_age_seconds: float | None


@dataclass(frozen=True, slots=True)
class Throughput:
    """Work done in the last `minutes`."""

    minutes: int
    messages_received: int
    orders_dispatched: int
    documents_sent: int


@dataclass(frozen=True, slots=True)
class Status:
    """What `gateway status` prints."""

    at: dt.datetime
    stages: list[Stage]
    throughput: list[Throughput]


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    when: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def status(store: Store, windows: tuple[int, ...] = (5, 60)) -> Status:
    """The backlog per stage and the throughput over each of `windows` (minutes)."""
    m, o, ob = t.messages, t.orders, t.outbox
    active = ("pending", "in_flight")
    stages_sql: list[tuple[str, Any, Any]] = [
        ("messages", m.c.received_at, m.c.state == "received"),
        ("orders", o.c.updated_at, o.c.state == "validated"),
        ("deliveries", ob.c.created_at, (ob.c.kind == "order") & ob.c.state.in_(active)),
        ("documents", ob.c.created_at, (ob.c.kind != "order") & ob.c.state.in_(active)),
        ("held", o.c.updated_at, o.c.state.in_(("held", "waiting"))),
        ("quarantined", o.c.updated_at, o.c.state == "quarantined"),
        ("dead", ob.c.updated_at, ob.c.state == "dead"),
    ]
    with store.engine.connect() as conn:
        now = store.db_now(conn)
        stages: list[Stage] = []
        for name, col, where in stages_sql:
            n, oldest = conn.execute(select(func.count(), func.min(col)).where(where)).one()
            if name == "held":  # documents held for want of a channel wait for a person too
                dn, doldest = conn.execute(select(func.count(), func.min(ob.c.created_at)).where(ob.c.state == "held")).one()
                n += dn
                oldest = min((x for x in (_aware(oldest), _aware(doldest)) if x is not None), default=None)
            since = _aware(oldest)
            stages.append(Stage(name, int(n), since, max(0.0, (now - since).total_seconds()) if since else None))
        throughput = []
        for minutes in windows:
            start = now - dt.timedelta(minutes=minutes)
            throughput.append(
                Throughput(
                    minutes=minutes,
                    messages_received=conn.execute(select(func.count()).where(m.c.received_at >= start)).scalar_one(),
                    orders_dispatched=conn.execute(
                        select(func.count()).where(o.c.state.in_(("dispatched", "shipped")), o.c.updated_at >= start)
                    ).scalar_one(),
                    documents_sent=conn.execute(
                        select(func.count()).where(ob.c.kind != "order", ob.c.state == "sent", ob.c.updated_at >= start)
                    ).scalar_one(),
                )
            )
    return Status(at=now, stages=stages, throughput=throughput)

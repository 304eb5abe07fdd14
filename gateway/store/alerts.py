"""Alerts in the store: what was raised, what was sent, when each team last heard, which
episodes are open, and how each source's polls go (gateway.processing.alerts).

    alerts(id, team, kind, key, summary, detail, created_at, sent_at)   unique (team, kind, key)
    alert_sends(team, kind, last_sent_at)                              the rate limit
    alert_episodes(key, since, opened_at)                              a silent source, failing polls
    source_health(source, watched_since, last_poll_at, last_ok_at, last_error_at, last_error, errors)

Every claim is a single statement only one node can win, on SQLite and PostgreSQL alike:
an alert is raised by an insert that skips a (team, kind, key) already there; an episode is
opened by an insert that skips an open one and closed by a delete only one node sees
succeed; a message is sent for (team, kind) by an insert that skips an existing row or an
UPDATE whose condition (last sent before the interval) a concurrent winner makes false.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.store import tables as t
from gateway.store.db import Store
from gateway.store.tables import TZ, metadata

__all__ = [
    "alert_episodes",
    "alerts",
    "alert_sends",
    "claim_send",
    "close_episode",
    "dead_letters",
    "known_keys",
    "last_messages",
    "listing",
    "mark_sent",
    "metrics_snapshot",
    "open_episode",
    "open_episodes",
    "pending",
    "pending_teams",
    "raise_alerts",
    "record_poll",
    "source_health",
    "watch",
]

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team", String(63), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("key", String(300), nullable=False),  # what it is about: "outbox:12:0", "silent:inbox:<since>"
    Column("summary", Text, nullable=False),  # one line for people
    Column("detail", JSON, nullable=True),  # the item as the webhook lists it
    Column("created_at", TZ, nullable=False),
    Column("sent_at", TZ, nullable=True),  # null: pending (held back by the rate limit)
    UniqueConstraint("team", "kind", "key", name="uq_alerts_team_kind_key"),
    Index("ix_alerts_pending", "team", "kind", "sent_at"),
)

alert_sends = Table(
    "alert_sends",
    metadata,
    Column("team", String(63), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("last_sent_at", TZ, nullable=False),
)

alert_episodes = Table(
    "alert_episodes",
    metadata,
    Column("key", String(200), primary_key=True),  # "silent:<source>", "poll:<source>"
    Column("since", TZ, nullable=False),  # when the trouble began (last message, first failed poll)
    Column("opened_at", TZ, nullable=False),
)

source_health = Table(
    "source_health",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("watched_since", TZ, nullable=False),  # a source that never sent is silent from here
    Column("last_poll_at", TZ, nullable=True),
    Column("last_ok_at", TZ, nullable=True),
    Column("last_error_at", TZ, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("errors", Integer, nullable=False, default=0, server_default="0"),  # failed polls in a row
)


def _insert(conn: Connection, table: Table) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def record_poll(conn: Connection, source: str, now: dt.datetime, error: str | None) -> int:
    """Record one poll of `source` (error None: it succeeded); the failed polls in a row now."""
    h = source_health
    if error is None:
        values: dict[str, Any] = {"last_poll_at": now, "last_ok_at": now, "errors": 0}
        new = {"source": source, "watched_since": now, **values}
        conn.execute(_insert(conn, h).values(**new).on_conflict_do_update(index_elements=["source"], set_=values))
        return 0
    first = {"source": source, "watched_since": now, "last_poll_at": now, "last_error_at": now, "last_error": error[:2000], "errors": 1}
    stmt = _insert(conn, h).values(**first)
    stmt = stmt.on_conflict_do_update(
        index_elements=["source"], set_={"last_poll_at": now, "last_error_at": now, "last_error": error[:2000], "errors": h.c.errors + 1}
    )
    conn.execute(stmt)
    return int(conn.execute(select(h.c.errors).where(h.c.source == source)).scalar_one())


def watch(conn: Connection, sources: Iterable[str], now: dt.datetime) -> dict[str, dict[str, Any]]:
    """Start watching `sources` (a row each, kept if there) and return every source's health row."""
    rows = [{"source": s, "watched_since": now, "errors": 0} for s in sources]
    if rows:
        conn.execute(_insert(conn, source_health).on_conflict_do_nothing(index_elements=["source"]), rows)
    return {r.source: dict(r._mapping) for r in conn.execute(select(source_health))}


def last_messages(conn: Connection, sources: Collection[str]) -> dict[str, dt.datetime]:
    """When each of `sources` last delivered a message we stored."""
    if not sources:
        return {}
    m = t.messages
    query = select(m.c.source, func.max(m.c.received_at)).where(m.c.source.in_(list(sources))).group_by(m.c.source)
    return {s: _aware(at) for s, at in conn.execute(query) if at is not None}


def dead_letters(conn: Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """Dead outbox rows (deliveries and documents, not team notices), newest first, with the
    partner and channel of the order they carry: id, kind, connector, replays, last_error,
    updated_at, partner, channel, po_number."""
    ob, o = t.outbox, t.orders
    query = (
        select(
            ob.c.id, ob.c.kind, ob.c.connector, ob.c.replays, ob.c.last_error, ob.c.updated_at,
            func.coalesce(o.c.partner, ob.c.partner).label("partner"), o.c.channel, o.c.po_number,
        )
        .select_from(ob.outerjoin(o, o.c.id == ob.c.order_id))
        .where(ob.c.state == "dead", ob.c.kind != "notice")
        .order_by(ob.c.updated_at.desc(), ob.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def partner_ack_problems(conn: Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """Documents we sent that the partner rejected, or did not acknowledge in time (marked
    overdue by the scheduled check), newest first: id, kind, partner, control_number,
    ack_status, ack_errors, overdue_at, updated_at."""
    ob = t.outbox
    query = (
        select(ob.c.id, ob.c.kind, ob.c.partner, ob.c.control_number, ob.c.ack_status, ob.c.ack_errors, ob.c.overdue_at, ob.c.updated_at)
        .where(ob.c.kind.notin_(("order", "notice")), or_(ob.c.ack_status == "rejected", and_(ob.c.overdue_at.is_not(None), ob.c.ack_status.is_(None))))
        .order_by(ob.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def known_keys(conn: Connection, kind: str, keys: Collection[str]) -> set[str]:
    """Which of `keys` were raised already (for any team)."""
    if not keys:
        return set()
    return set(conn.execute(select(alerts.c.key).where(alerts.c.kind == kind, alerts.c.key.in_(list(keys)))).scalars())


def raise_alerts(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert alerts (team, kind, key, summary, detail, created_at); one already raised is
    skipped. How many are new."""
    if not rows:
        return 0
    stmt = _insert(conn, alerts).on_conflict_do_nothing(index_elements=["team", "kind", "key"]).returning(alerts.c.id)
    return len(list(conn.execute(stmt, [{"sent_at": None, **r} for r in rows]).scalars()))


def open_episode(conn: Connection, key: str, since: dt.datetime, now: dt.datetime) -> bool:
    """Open the episode `key` (a silent source, failing polls); False when it is open already."""
    stmt = _insert(conn, alert_episodes).values(key=key, since=since, opened_at=now).on_conflict_do_nothing(index_elements=["key"])
    return bool(conn.execute(stmt.returning(alert_episodes.c.key)).first())


def close_episode(conn: Connection, key: str) -> dt.datetime | None:
    """Close the episode `key`; when it began, or None when it was not open (or another node closed it)."""
    row = conn.execute(delete(alert_episodes).where(alert_episodes.c.key == key).returning(alert_episodes.c.since)).first()
    return None if row is None else _aware(row[0])


def open_episodes(conn: Connection) -> dict[str, dt.datetime]:
    return {k: _aware(v) for k, v in conn.execute(select(alert_episodes.c.key, alert_episodes.c.since))}


def pending_teams(conn: Connection) -> list[tuple[str, str]]:
    """(team, kind) pairs with alerts not sent yet."""
    query = select(alerts.c.team, alerts.c.kind).where(alerts.c.sent_at.is_(None)).group_by(alerts.c.team, alerts.c.kind)
    return [(str(a), str(b)) for a, b in conn.execute(query)]


def claim_send(conn: Connection, team: str, kind: str, now: dt.datetime, min_interval: dt.timedelta) -> bool:
    """Take the right to send `team` a message of `kind` now: True when none was sent within
    `min_interval` and no other node took it meanwhile (the row is then stamped `now`)."""
    s = alert_sends
    first = _insert(conn, s).values(team=team, kind=kind, last_sent_at=now).on_conflict_do_nothing(index_elements=["team", "kind"])
    if conn.execute(first.returning(s.c.team)).first():
        return True
    won = conn.execute(
        update(s).where(s.c.team == team, s.c.kind == kind, s.c.last_sent_at <= now - min_interval).values(last_sent_at=now).returning(s.c.team)
    ).first()
    return won is not None


def pending(conn: Connection, team: str, kind: str) -> list[dict[str, Any]]:
    """The team's unsent alerts of `kind`, oldest first: id, key, summary, detail, created_at."""
    a = alerts
    query = select(a.c.id, a.c.key, a.c.summary, a.c.detail, a.c.created_at).where(a.c.team == team, a.c.kind == kind, a.c.sent_at.is_(None)).order_by(a.c.id)
    return [dict(r._mapping) for r in conn.execute(query)]


def mark_sent(conn: Connection, ids: Collection[int], now: dt.datetime) -> set[int]:
    """Stamp the alerts sent; the ids stamped here (one another node stamped first is left out)."""
    if not ids:
        return set()
    stmt = update(alerts).where(alerts.c.id.in_(list(ids)), alerts.c.sent_at.is_(None)).values(sent_at=now).returning(alerts.c.id)
    return {int(i) for i in conn.execute(stmt).scalars()}


def listing(store: Store, *, limit: int = 100, pending_only: bool = False, team: str | None = None) -> list[dict[str, Any]]:
    """Recent alerts, newest first (`gateway alerts`): id, team, kind, key, summary, created_at, sent_at."""
    a = alerts
    query = select(a.c.id, a.c.team, a.c.kind, a.c.key, a.c.summary, a.c.created_at, a.c.sent_at).order_by(a.c.id.desc()).limit(limit)
    if pending_only:
        query = query.where(a.c.sent_at.is_(None))
    if team is not None:
        query = query.where(a.c.team == team)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def metrics_snapshot(conn: Connection, now: dt.datetime, partners: Collection[str], sources: Collection[str]) -> dict[str, Any]:
    """What `/metrics` adds for alerting, counted by the database. Partners not in `partners`
    count as "other" and sources not in `sources` are left out, so the labels stay bounded."""
    o, ob, m = t.orders, t.outbox, t.messages
    known = set(partners)
    by: dict[tuple[str, str, str], int] = {}
    for channel, partner, state, n in conn.execute(select(o.c.channel, o.c.partner, o.c.state, func.count()).group_by(o.c.channel, o.c.partner, o.c.state)):
        label = partner if partner in known else ("none" if partner is None else "other")
        key = (str(channel), str(label), str(state))
        by[key] = by.get(key, 0) + int(n)
    depth, oldest = conn.execute(select(func.count(), func.min(ob.c.created_at)).where(ob.c.state.in_(["pending", "in_flight"]))).one()
    dead: dict[Any, Any] = dict(conn.execute(select(ob.c.kind, func.count()).where(ob.c.state == "dead").group_by(ob.c.kind)).all())
    watched = list(sources)
    seen = dict(conn.execute(select(m.c.source, func.max(m.c.received_at)).where(m.c.source.in_(watched)).group_by(m.c.source)).all()) if watched else {}
    health = {r.source: r for r in conn.execute(select(source_health).where(source_health.c.source.in_(watched)))} if watched else {}
    ages: dict[str, float] = {}
    for s in watched:
        at = seen.get(s)
        base = _aware(at) if at is not None else (_aware(health[s].watched_since) if s in health else None)
        if base is not None:
            ages[s] = max(0.0, (now - base).total_seconds())
    latencies = _stage_latencies(conn)
    unsent: dict[Any, Any] = dict(conn.execute(select(alerts.c.kind, func.count()).where(alerts.c.sent_at.is_(None)).group_by(alerts.c.kind)).all())
    return {
        "orders_by": sorted((c, p, s, n) for (c, p, s), n in by.items()),
        "outbox_depth": int(depth),
        "outbox_oldest_seconds": max(0.0, (now - _aware(oldest)).total_seconds()) if oldest is not None else 0.0,
        "dead_letters": {str(k): int(n) for k, n in dead.items()},
        "source_age": ages,
        "poll_errors": {s: int(health[s].errors) for s in watched if s in health},
        "silent": {k.split(":", 1)[1] for k in open_episodes(conn) if k.startswith("silent:")},
        "alerts_pending": {str(k): int(n) for k, n in unsent.items()},
        "stage_latency": latencies,
    }


_RECENT = 500  # stage latencies are taken over this many most recent orders / deliveries


def _stage_latencies(conn: Connection) -> dict[str, dict[str, float]]:
    """Median and 95th percentile, in seconds, of the recent orders' stages: from the message's
    receipt to the order (receive_to_order) and from the order to its delivery's success
    (order_to_sent). Counted in Python over a bounded sample: SQLite has no percentiles."""
    o, ob, m = t.orders, t.outbox, t.messages
    made = conn.execute(
        select(m.c.received_at, o.c.created_at).select_from(o.join(m, m.c.id == o.c.message_id)).order_by(o.c.created_at.desc()).limit(_RECENT)
    ).all()
    sent = conn.execute(
        select(o.c.created_at, ob.c.updated_at).select_from(ob.join(o, o.c.id == ob.c.order_id))
        .where(ob.c.kind == "order", ob.c.state == "sent").order_by(ob.c.id.desc()).limit(_RECENT)
    ).all()
    out: dict[str, dict[str, float]] = {}
    for stage, pairs in (("receive_to_order", made), ("order_to_sent", sent)):
        spans = sorted(max(0.0, (_aware(b) - _aware(a)).total_seconds()) for a, b in pairs)
        if spans:
            out[stage] = {q: spans[min(len(spans) - 1, int(float(q) * len(spans)))] for q in ("0.5", "0.95")}
    return out


def _aware(value: Any) -> dt.datetime:
    when: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)

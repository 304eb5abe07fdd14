"""The acknowledgement queue: claims, results, dead letters and replay over the `acks` table.

Acknowledgements (TA1, 997, 999, CONTRL, 855, ORDRSP) and confirmation e-mails are stored by
processing in the same transaction as what they answer, `pending`. Only the dispatch job
sends them (`gateway.acks.delivery`), and only after claiming them here:

    pending ──claim──> in_flight ──mark_sent──> sent
       ^                  │  │
       │   mark_failed    │  └──mark_failed (policy used up) / permanent error──> dead
       └──(transient)─────┘                                                        │
       └─────────────────────────────── replay ────────────────────────────────────┘

    held     no outbound channel configured for the partner (shown, never claimed)

The rules are the outbox's (`gateway.store.outbox`):

* A claim is committed before anything is sent and counts the attempt. On PostgreSQL it
  uses ``SELECT ... FOR UPDATE SKIP LOCKED``, so two gateway nodes (or two dispatch jobs)
  never claim the same row; on SQLite every write transaction is BEGIN IMMEDIATE.
* Leases and retry times are measured by the **database clock** (`db_now`), never the
  node's: a node whose clock runs ahead cannot take over a row that is still being sent.
* A claim whose lease ran out (the sender died) is claimed again, unless the retry policy
  is used up: then it goes to `dead` (a crash loop never resends forever).
* A result is recorded only against its own claim (state `in_flight` and the same attempt
  count); `mark_sent` is the exception: a message that left is recorded even by a late
  sender, unless the row is `dead` or already `sent`.
* Every state change writes an `events` row in the same transaction, so `gateway show`
  tells the whole story.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, and_, func, or_, select, text, update

from gateway.retry import RetryPolicy
from gateway.states import AckState, move
from gateway.store import Store, add_event, as_utc
from gateway.store import tables as t

__all__ = [
    "ClaimedAck",
    "DeadAck",
    "claim_due",
    "db_now",
    "due_count",
    "list_dead",
    "mark_failed",
    "mark_sent",
    "replay",
]

_DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class ClaimedAck:
    """One acknowledgement claimed for sending (the row as the channel needs it)."""

    id: int
    attempts: int  # including this one
    first_attempt_at: dt.datetime
    message_id: str | None
    order_id: str | None
    partner: str | None
    kind: str
    control_number: str | None
    channel: str
    body: str
    created_at: dt.datetime


@dataclass(frozen=True)
class DeadAck:
    """An acknowledgement that gave up, as `gateway dead-letters` lists it."""

    id: int
    kind: str
    control_number: str | None
    partner: str | None
    channel: str | None
    message_id: str | None
    order_id: str | None
    attempts: int
    error: str | None


def db_now(conn: Connection) -> dt.datetime:
    """The database's clock (UTC), the one clock every node agrees on."""
    if conn.dialect.name == "postgresql":
        value = conn.execute(text("SELECT statement_timestamp()")).scalar_one()
        return as_utc(value)  # type: ignore[return-value]
    raw = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return dt.datetime.fromisoformat(str(raw)).replace(tzinfo=dt.UTC)


def _due(now: dt.datetime) -> Any:
    a = t.acks
    return or_(
        and_(a.c.state == AckState.PENDING, or_(a.c.next_attempt_at.is_(None), a.c.next_attempt_at <= now)),
        and_(a.c.state == AckState.IN_FLIGHT, a.c.lease_until <= now),
    )


def claim_due(store: Store, *, lease_seconds: float, limit: int, policy: RetryPolicy | None = None) -> list[ClaimedAck]:
    """Claim up to `limit` due acknowledgements and commit the claim before anything is sent."""
    policy = policy or _DEFAULT_POLICY
    a = t.acks
    claimed: list[ClaimedAck] = []
    with store.begin() as conn:
        now = db_now(conn)
        query = select(a).where(_due(now)).order_by(a.c.id).limit(limit)
        if store.supports_skip_locked:
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).mappings().all()
        for r in rows:
            first = as_utc(r["first_attempt_at"]) or now
            what = _what(r)
            if r["state"] == AckState.IN_FLIGHT and policy.exhausted(r["attempts"], first, now):
                why = (
                    f"attempt {r['attempts']} never finished (the sender stopped: crash, kill or out of memory) "
                    "and the retry policy is used up; not tried again"
                )
                _to_dead(conn, r, why, now)
                continue
            conn.execute(
                update(a)
                .where(a.c.id == r["id"])
                .values(state=move(AckState, r["state"], AckState.IN_FLIGHT), attempts=r["attempts"] + 1, first_attempt_at=first, lease_until=now + dt.timedelta(seconds=lease_seconds))
            )
            if r["state"] == AckState.IN_FLIGHT:
                add_event(conn, "ack_rescued", f"{what}: the previous attempt never finished; trying again", message_id=r["message_id"], order_id=r["order_id"])
            claimed.append(
                ClaimedAck(
                    id=r["id"], attempts=r["attempts"] + 1, first_attempt_at=first, message_id=r["message_id"],
                    order_id=r["order_id"], partner=r["partner"], kind=r["kind"], control_number=r["control_number"],
                    channel=r["channel"] or "", body=r["body"], created_at=as_utc(r["created_at"]),  # type: ignore[arg-type]
                )
            )
    return claimed


def mark_sent(store: Store, claim: ClaimedAck, where: str) -> bool:
    """Record that `claim` left (`where` says how, for the history). False if already recorded."""
    a = t.acks
    with store.begin() as conn:
        now = db_now(conn)
        old = conn.execute(select(a.c.state).where(a.c.id == claim.id)).scalar()
        if old not in (AckState.IN_FLIGHT, AckState.PENDING):
            return False  # already sent, or dead (a person decides)
        done = conn.execute(
            update(a)
            .where(a.c.id == claim.id, a.c.state == old)
            .values(state=move(AckState, old, AckState.SENT), sent_at=now, error=None, lease_until=None)
        ).rowcount
        if done:
            add_event(conn, "ack_sent", f"{_what(claim)} {where}", message_id=claim.message_id, order_id=claim.order_id)
    return bool(done)


def mark_failed(
    store: Store,
    claim: ClaimedAck,
    error: str,
    *,
    permanent: bool,
    policy: RetryPolicy | None = None,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> Literal["retry", "dead", "stale"]:
    """Record a failed attempt: retried later per `policy`, or `dead` (permanent, or used up).

    "stale" when the row is no longer this claim's (another sender took it over)."""
    policy = policy or _DEFAULT_POLICY
    a = t.acks
    with store.begin() as conn:
        now = db_now(conn)
        row = conn.execute(
            select(a).where(a.c.id == claim.id, a.c.state == AckState.IN_FLIGHT, a.c.attempts == claim.attempts)
        ).mappings().first()
        if row is None:
            return "stale"
        if permanent or policy.exhausted(claim.attempts, claim.first_attempt_at, now):
            why = error if permanent else f"{error}; gave up after {claim.attempts} attempt(s)"
            _to_dead(conn, row, why, now)
            return "dead"
        delay = policy.next_delay(claim.attempts, retry_after, rand)
        conn.execute(
            update(a)
            .where(a.c.id == claim.id)
            .values(state=move(AckState, row["state"], AckState.PENDING), error=error[:2000], lease_until=None, next_attempt_at=now + dt.timedelta(seconds=delay))
        )
        add_event(
            conn, "ack_retry", f"{_what(claim)} not delivered (attempt {claim.attempts}): {error}; next try in {delay:.0f} s",
            message_id=claim.message_id, order_id=claim.order_id,
        )
    return "retry"


def due_count(store: Store) -> int:
    """Acknowledgements waiting to be sent now (pending and due, or with an expired lease)."""
    with store.engine.connect() as conn:
        now = db_now(conn)
        return int(conn.execute(select(func.count()).select_from(t.acks).where(_due(now))).scalar_one())


def list_dead(store: Store) -> list[DeadAck]:
    """Dead acknowledgements, oldest first."""
    a = t.acks
    with store.engine.connect() as conn:
        rows = conn.execute(select(a).where(a.c.state == AckState.DEAD).order_by(a.c.id)).mappings().all()
    return [
        DeadAck(r["id"], r["kind"], r["control_number"], r["partner"], r["channel"], r["message_id"], r["order_id"], r["attempts"], r["error"])
        for r in rows
    ]


def replay(store: Store, ids: Iterable[int] | Literal["all"]) -> int:
    """Queue dead acknowledgements again with a fresh retry policy; returns how many."""
    a = t.acks
    query = select(a).where(a.c.state == AckState.DEAD)
    if ids != "all":
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return 0
        query = query.where(a.c.id.in_(wanted))
    with store.begin() as conn:
        if store.supports_skip_locked:
            query = query.with_for_update()
        rows = conn.execute(query.order_by(a.c.id)).mappings().all()
        for r in rows:
            conn.execute(
                update(a)
                .where(a.c.id == r["id"], a.c.state == AckState.DEAD)
                .values(state=move(AckState, r["state"], AckState.PENDING), attempts=0, first_attempt_at=None, next_attempt_at=None, lease_until=None)
            )
            add_event(
                conn, "ack_replayed",
                f"{_what(r)} queued again after {r['attempts']} attempt(s)" + (f"; last error: {r['error']}" if r["error"] else ""),
                message_id=r["message_id"], order_id=r["order_id"],
            )
    return len(rows)


def _to_dead(conn: Connection, row: Any, why: str, now: dt.datetime) -> None:
    a = t.acks
    state = move(AckState, row["state"], AckState.DEAD)
    conn.execute(update(a).where(a.c.id == row["id"]).values(state=state, error=why[:2000], lease_until=None))
    add_event(conn, "ack_dead", f"{_what(row)} not delivered: {why}", message_id=row["message_id"], order_id=row["order_id"])


def _what(row: Any) -> str:
    get = row.get if isinstance(row, dict) or hasattr(row, "get") else lambda k: getattr(row, k)
    kind, control, partner = get("kind"), get("control_number"), get("partner")
    if kind == "MAILREPLY":
        return f"confirmation e-mail to {partner or 'the sender'}"
    return f"{kind} {control or ''} for {partner or '-'}".replace("  ", " ")

"""The outbox: one row per (order, connector), written in the same transaction as the order.

A row is `pending` until a worker claims it (`in_flight`, with a lease), then `sent`, back to
`pending` with a later `next_attempt_at` after a transient failure, or `dead` for a person.
A claim whose lease ran out (the worker crashed) is claimed again, with the same
idempotency key, so the target can recognise the repeat.

    pending ──claim──> in_flight ──mark_sent──> sent
       ^                  │  │
       │   mark_failed    │  └──mark_dead / mark_failed (policy exhausted)──> dead
       └──(transient)─────┘                                                   │
       └────────────────────────────── replay ────────────────────────────────┘

Rules every function here keeps:

* A claim is committed **before** the connector is called, and it counts the attempt, so an
  input that kills the process (OOM, segfault) uses up attempts instead of looping forever
  (Oban's lifeline rule). A claim rescued from an expired lease whose policy is already
  exhausted goes straight to `dead` ("crash loop").
* On PostgreSQL claims use ``SELECT ... FOR UPDATE SKIP LOCKED``: several gateway nodes never
  claim the same row. On SQLite the store opens every transaction with BEGIN IMMEDIATE, which
  serializes claims on that file.
* A result is recorded only against the claim it belongs to (state `in_flight` and the same
  attempt count), so a worker whose lease expired cannot undo what the worker that took the
  row over did. The one exception is `mark_sent`: an effect that happened is recorded even by
  a late worker (the row is not `dead` or already `sent`), because the target now holds it.
* Every state change writes an `events` row in the same transaction, and the order's state
  follows its rows: all rows `sent` gives `dispatched`, any row `dead` gives `dead`, a replay
  that leaves no `dead` row gives `validated` again.

Actions and ordering. A row's `action` is ``create`` (the first version of an order), or
``update`` / ``cancel`` for a later version that changes or cancels it. Such a row names in
`after_id` the outbox row that delivered the previous version to the same connector, and is
not claimed until that row is `sent`: a target never sees a change before the order it
changes, and versions reach it one after the other. When a waiting row is claimed without a
`target_reference` of its own, it takes the ``reference`` from its predecessor's receipt (the
target's id of the order) and keeps it on the row.

A predecessor that is `dead` keeps its successors waiting, still `pending` (they are not dead
letters and `list_dead` does not show them; `next_due` ignores them, so a dispatcher does not
wait for them). Replaying the dead predecessor, once it is `sent`, releases them in order.
A predecessor that no longer exists holds nothing back.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, and_, case, exists, func, or_, select, update

from gateway.connector import Delivery, Receipt
from gateway.retry import RetryPolicy
from gateway.store import Store, add_events, as_utc
from gateway.store import tables as t

__all__ = [
    "ACTIONS",
    "ClaimedDelivery",
    "DeadLetter",
    "claim_due",
    "idempotency_key",
    "list_dead",
    "mark_dead",
    "mark_failed",
    "mark_sent",
    "new_deliveries",
    "next_due",
    "replay",
]

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f1c9a52-3c1e-4a57-9d0b-6e0b8f9f2a10")
_ERROR_CHARS = 2_000  # last_error and event details are for people, not archives


def idempotency_key(order_id: str, connector: str) -> str:
    """Stable for the life of the delivery: every attempt and every replay sends the same key."""
    return str(uuid.uuid5(_NAMESPACE, f"{order_id}\x1f{connector}"))


ACTIONS = ("create", "update", "cancel")


def new_deliveries(
    order_id: str,
    connectors: Iterable[str],
    now: dt.datetime,
    *,
    action: str = "create",
    after: Mapping[str, int] | None = None,
    references: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """Rows for `insert(outbox)`, one per connector, due at once.

    `action` is create, update or cancel. For a later version of an order, `after` maps a
    connector to the outbox id of the delivery of the previous version to it (the row waits
    until that one is `sent`), and `references` to the target's id of the order when it is
    already known (otherwise it is taken from the predecessor's receipt at claim time).
    Connectors missing from either mapping get None.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown outbox action {action!r}; expected one of {', '.join(ACTIONS)}")
    after = after or {}
    references = references or {}
    return [
        {
            "order_id": order_id,
            "connector": name,
            "idempotency_key": idempotency_key(order_id, name),
            "state": "pending",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "next_attempt_at": now,
            "action": action,
            "after_id": after.get(name),
            "target_reference": _reference_text(references.get(name)),
        }
        for name in connectors
    ]


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """One outbox row this worker holds until `lease_until`; `attempts` counts this attempt."""

    outbox_id: int
    order_id: str
    connector: str
    idempotency_key: str
    attempts: int
    first_attempt_at: dt.datetime
    lease_until: dt.datetime
    order: dict[str, Any]
    rescued: bool = False  # taken over from a worker whose lease expired
    action: str = "create"  # create | update | cancel
    target_reference: str | None = None  # for update/cancel: the target's id of the order

    def delivery(self) -> Delivery:
        """What the connector is handed."""
        return Delivery(
            outbox_id=self.outbox_id,
            order_id=self.order_id,
            idempotency_key=self.idempotency_key,
            attempt=self.attempts,
            order=self.order,
            action=self.action,
            target_reference=self.target_reference,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that needs a person: what failed, how often, and why."""

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


# -- claiming ----------------------------------------------------------------------------------


def claim_due(
    store: Store,
    *,
    now: dt.datetime,
    lease_seconds: float,
    limit: int,
    connectors: Collection[str] | None = None,
    policies: Mapping[str, RetryPolicy] | None = None,
) -> list[ClaimedDelivery]:
    """Claim up to `limit` due rows and commit the claim before anything is sent.

    Due means `pending` with `next_attempt_at <= now`, or `in_flight` whose lease ran out
    (`lease_until <= now`: the worker holding it died). Each claimed row becomes `in_flight`
    until `now + lease_seconds`, its attempt is counted and `first_attempt_at` set on the
    first one. `connectors` limits the claim to rows this node can send (None: any).
    `policies` (by connector; default policy otherwise) decides whether a rescued row has
    already used up its attempts, in which case it goes to `dead` instead of being claimed.

    A row with an `after_id` is due only once that predecessor is `sent` (see the module
    docstring); without a `target_reference` of its own it gets the predecessor's receipt
    reference, stored on the row with the claim.
    """
    now = _utc(now)
    if connectors is not None and not connectors:
        return []
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    o = t.outbox
    due = or_(
        and_(o.c.state == "pending", o.c.next_attempt_at <= now),
        and_(o.c.state == "in_flight", o.c.lease_until <= now),
    )
    query = select(
        o.c.id,
        o.c.order_id,
        o.c.connector,
        o.c.idempotency_key,
        o.c.state,
        o.c.attempts,
        o.c.first_attempt_at,
        o.c.action,
        o.c.target_reference,
        o.c.after_id,
    ).where(due, _not_waiting())
    if connectors is not None:
        query = query.where(o.c.connector.in_(sorted(connectors)))
    query = query.order_by(o.c.next_attempt_at, o.c.id).limit(limit)
    if store.supports_skip_locked:
        query = query.with_for_update(skip_locked=True, of=o)

    claimed: list[ClaimedDelivery] = []
    with store.begin() as conn:
        rows = conn.execute(query).all()
        if not rows:
            return []
        data = _order_data(conn, {r.order_id for r in rows})
        inherited = _predecessor_references(
            conn, {r.after_id for r in rows if r.after_id is not None and not r.target_reference}
        )
        events: list[dict[str, Any]] = []
        for r in rows:
            rescued = r.state == "in_flight"
            attempts = r.attempts + 1
            first = as_utc(r.first_attempt_at) or now
            policy = (policies or {}).get(r.connector) or _DEFAULT_POLICY
            if rescued and policy.exhausted(r.attempts, first, now):
                why = (
                    f"attempt {r.attempts} to {r.connector} never finished (the worker stopped: crash, "
                    f"kill or out of memory) and the retry policy is used up; not tried again"
                )
                _to_dead(conn, r.id, r.order_id, r.connector, why, None, now, events)
                continue
            action = r.action or "create"
            reference = r.target_reference
            values: dict[str, Any] = {
                "state": "in_flight",
                "attempts": attempts,
                "first_attempt_at": first,
                "lease_until": lease_until,
                "updated_at": now,
            }
            if not reference and r.after_id is not None and inherited.get(r.after_id):
                reference = values["target_reference"] = inherited[r.after_id]
            conn.execute(update(o).where(o.c.id == r.id).values(**values))
            detail = f"attempt {attempts} of {policy.max_attempts} to {r.connector}"
            if action != "create":
                detail = f"{action} {detail}" + (
                    f" (target reference {reference})" if reference else ""
                )
            if rescued:
                detail += f" (attempt {r.attempts} never finished: its lease expired)"
            events.append(_event("attempt", detail, r.order_id, r.id, now))
            claimed.append(
                ClaimedDelivery(
                    outbox_id=r.id,
                    order_id=r.order_id,
                    connector=r.connector,
                    idempotency_key=r.idempotency_key,
                    attempts=attempts,
                    first_attempt_at=first,
                    lease_until=lease_until,
                    order=data.get(r.order_id) or {},
                    rescued=rescued,
                    action=action,
                    target_reference=reference or None,
                )
            )
        add_events(conn, events)
    return claimed


def next_due(store: Store, *, connectors: Collection[str] | None = None) -> dt.datetime | None:
    """When the earliest unfinished row becomes claimable (None: nothing is pending or in flight).

    For a pending row that is `next_attempt_at`; for an in-flight one, the end of its lease.
    Rows waiting for their predecessor to be sent are left out: they become due when it is
    sent (which a pending predecessor already accounts for), never on their own.
    """
    o = t.outbox
    claimable_at = case(
        (o.c.state == "in_flight", func.coalesce(o.c.lease_until, o.c.next_attempt_at)),
        else_=o.c.next_attempt_at,
    )
    query = select(func.min(claimable_at)).where(
        o.c.state.in_(["pending", "in_flight"]), _not_waiting()
    )
    if connectors is not None:
        query = query.where(o.c.connector.in_(sorted(connectors)))
    with store.engine.connect() as conn:
        value = conn.execute(query).scalar()
    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns the raw text from an expression
        value = dt.datetime.fromisoformat(value)
    return as_utc(value)


# -- recording results -------------------------------------------------------------------------


def mark_sent(
    store: Store,
    claim: ClaimedDelivery,
    receipt: Receipt,
    *,
    now: dt.datetime,
) -> bool:
    """Record a delivery the target accepted. False if the row was already settled.

    Accepted even when this worker's lease expired meanwhile (the target holds the order now);
    the order becomes `dispatched` once all of its rows are sent.
    """
    now = _utc(now)
    o = t.outbox
    stored_receipt = {"status": receipt.status, "reference": receipt.reference, "detail": receipt.detail}
    with store.begin() as conn:
        result = conn.execute(
            update(o)
            .where(o.c.id == claim.outbox_id, o.c.state.in_(["in_flight", "pending"]))
            .values(
                state="sent",
                lease_until=None,
                last_status=receipt.status,
                last_error=None,
                receipt=stored_receipt,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            log.warning("outbox %s to %s: already settled; result of attempt %s ignored", claim.outbox_id, claim.connector, claim.attempts)
            return False
        parts = [
            f"HTTP {receipt.status}" if receipt.status else "accepted",
            f"by {claim.connector}",
        ]
        if claim.action != "create":
            parts.insert(0, f"{claim.action}:")
        if receipt.reference:
            parts.append(f"as {receipt.reference}")
        detail = " ".join(parts) + f" (attempt {claim.attempts})"
        events = [_event("sent", detail, claim.order_id, claim.outbox_id, now)]
        _settle_order(conn, claim.order_id, now, events)
        add_events(conn, events)
    return True


def mark_failed(
    store: Store,
    claim: ClaimedDelivery,
    *,
    error: str,
    status: int | None = None,
    retry_after: float | None = None,
    policy: RetryPolicy,
    now: dt.datetime,
    rand: Callable[[], float] = random.random,
) -> Literal["retry", "dead", "lost"]:
    """Record a transient failure: schedule the next attempt, or dead-letter it when the
    policy is exhausted. "lost" when this worker no longer holds the claim.

    The wait is `policy.next_delay(attempts, retry_after)`: exponential back-off with full
    jitter, never shorter than the server's Retry-After (itself capped by the policy).
    """
    now = _utc(now)
    o = t.outbox
    error = _short(error)
    with store.begin() as conn:
        events: list[dict[str, Any]] = []
        if policy.exhausted(claim.attempts, claim.first_attempt_at, now):
            if claim.attempts >= policy.max_attempts:
                why = f"{error}; gave up after {claim.attempts} attempts (max_attempts {policy.max_attempts})"
            else:
                age = (now - claim.first_attempt_at).total_seconds()
                why = (
                    f"{error}; gave up after {claim.attempts} attempts over {_duration(age)} "
                    f"(max_age_seconds {policy.max_age_seconds:g})"
                )
            if not _to_dead(conn, claim.outbox_id, claim.order_id, claim.connector, why, status, now, events, claim=claim):
                return "lost"
            add_events(conn, events)
            return "dead"
        delay = policy.next_delay(claim.attempts, retry_after, rand)
        result = conn.execute(
            update(o)
            .where(*_held(claim))
            .values(
                state="pending",
                lease_until=None,
                next_attempt_at=now + dt.timedelta(seconds=delay),
                last_status=status,
                last_error=error,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            log.warning("outbox %s to %s: claim lost (lease expired); failure of attempt %s ignored", claim.outbox_id, claim.connector, claim.attempts)
            return "lost"
        detail = f"{error}; retry {claim.attempts} of {policy.max_attempts - 1} in {delay:.1f} s"
        if retry_after:
            detail += f" (server asked for {retry_after:.0f} s)"
        events.append(_event("retry_scheduled", detail, claim.order_id, claim.outbox_id, now))
        add_events(conn, events)
    return "retry"


def mark_dead(
    store: Store,
    claim: ClaimedDelivery,
    *,
    error: str,
    status: int | None = None,
    now: dt.datetime,
) -> bool:
    """Dead-letter a delivery that failed permanently; its order becomes `dead`."""
    now = _utc(now)
    events: list[dict[str, Any]] = []
    with store.begin() as conn:
        why = f"{_short(error)} (attempt {claim.attempts}; not retried)"
        if not _to_dead(conn, claim.outbox_id, claim.order_id, claim.connector, why, status, now, events, claim=claim):
            return False
        add_events(conn, events)
    return True


# -- dead letters and replay -------------------------------------------------------------------


def list_dead(store: Store, *, connector: str | None = None, limit: int | None = None) -> list[DeadLetter]:
    """Dead deliveries, oldest first, with what a person needs to decide on a replay."""
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
        .where(o.c.state == "dead")
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


def replay(store: Store, ids: Iterable[int] | Literal["all"], *, now: dt.datetime | None = None) -> int:
    """Put dead deliveries back in the queue: `ids` (outbox ids) or "all". Returns how many.

    Attempts and the first-attempt time are reset, so the retry policy starts afresh; the
    idempotency key stays, so a target that did receive an earlier attempt sees a repeat.
    Rows that are not dead are left alone. An order with no dead row left is `validated` again.
    """
    now = _utc(now or dt.datetime.now(dt.UTC))
    o = t.outbox
    query = select(o.c.id, o.c.order_id, o.c.connector, o.c.attempts, o.c.last_error).where(o.c.state == "dead")
    if ids != "all":
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return 0
        query = query.where(o.c.id.in_(wanted))
    with store.begin() as conn:
        if store.supports_skip_locked:
            query = query.with_for_update(of=o)
        rows = conn.execute(query.order_by(o.c.id)).all()
        if not rows:
            return 0
        events = []
        for r in rows:
            conn.execute(
                update(o)
                .where(o.c.id == r.id, o.c.state == "dead")
                .values(
                    state="pending",
                    attempts=0,
                    first_attempt_at=None,
                    next_attempt_at=now,
                    lease_until=None,
                    updated_at=now,
                )
            )
            events.append(
                _event(
                    "replayed",
                    f"dead delivery to {r.connector} queued again after {r.attempts} attempts"
                    + (f"; last error: {r.last_error}" if r.last_error else ""),
                    r.order_id,
                    r.id,
                    now,
                )
            )
        for order_id in sorted({r.order_id for r in rows}):
            still_dead = conn.execute(
                select(func.count()).select_from(o).where(o.c.order_id == order_id, o.c.state == "dead")
            ).scalar_one()
            if not still_dead:
                conn.execute(
                    update(t.orders)
                    .where(t.orders.c.id == order_id, t.orders.c.state == "dead")
                    .values(state="validated", updated_at=now)
                )
        add_events(conn, events)
    return len(rows)


# -- helpers -----------------------------------------------------------------------------------

_DEFAULT_POLICY = RetryPolicy()


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("outbox times must be timezone-aware (UTC)")
    return value.astimezone(dt.UTC)


def _held(claim: ClaimedDelivery) -> tuple[Any, ...]:
    """The row is still ours: in flight under the same attempt this worker claimed."""
    o = t.outbox
    return (o.c.id == claim.outbox_id, o.c.state == "in_flight", o.c.attempts == claim.attempts)


def _event(kind: str, detail: str, order_id: str, outbox_id: int | None, at: dt.datetime) -> dict[str, Any]:
    return {"kind": kind, "detail": _short(detail), "order_id": order_id, "outbox_id": outbox_id, "at": at}


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def _not_waiting() -> Any:
    """The outbox row is not waiting for its predecessor (`after_id`) to be sent."""
    o = t.outbox
    prev = o.alias("prev")
    return ~exists().where(prev.c.id == o.c.after_id, prev.c.state != "sent")


def _reference_text(value: object) -> str | None:
    """A target reference as stored (the column holds 200 characters); None for nothing."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text[:200] or None


def _predecessor_references(conn: Connection, ids: set[int]) -> dict[int, str]:
    """outbox id -> the `reference` in that row's receipt, for the sent rows among `ids`."""
    if not ids:
        return {}
    o = t.outbox
    rows = conn.execute(
        select(o.c.id, o.c.receipt).where(o.c.id.in_(sorted(ids)), o.c.state == "sent")
    )
    found: dict[int, str] = {}
    for r in rows:
        receipt = r.receipt
        reference = _reference_text(receipt.get("reference")) if isinstance(receipt, dict) else None
        if reference:
            found[r.id] = reference
    return found


def _order_data(conn: Connection, order_ids: set[str]) -> dict[str, dict[str, Any]]:
    rows = conn.execute(select(t.orders.c.id, t.orders.c.data).where(t.orders.c.id.in_(sorted(order_ids))))
    return {r.id: r.data for r in rows if isinstance(r.data, dict)}


def _to_dead(
    conn: Connection,
    outbox_id: int,
    order_id: str,
    connector: str,
    why: str,
    status: int | None,
    now: dt.datetime,
    events: list[dict[str, Any]],
    *,
    claim: ClaimedDelivery | None = None,
) -> bool:
    o = t.outbox
    where = _held(claim) if claim is not None else (o.c.id == outbox_id, o.c.state == "in_flight")
    result = conn.execute(
        update(o)
        .where(*where)
        .values(state="dead", lease_until=None, last_status=status, last_error=_short(why), updated_at=now)
    )
    if result.rowcount != 1:
        log.warning("outbox %s to %s: claim lost (lease expired); dead-letter ignored", outbox_id, connector)
        return False
    log.warning("outbox %s to %s is dead: %s", outbox_id, connector, why)
    events.append(_event("dead", why, order_id, outbox_id, now))
    _settle_order(conn, order_id, now, events)
    return True


def _settle_order(conn: Connection, order_id: str, now: dt.datetime, events: list[dict[str, Any]]) -> None:
    """Move the order to `dispatched` (all rows sent) or `dead` (any row dead)."""
    o = t.outbox
    counts: dict[str, int] = dict(
        conn.execute(
            select(o.c.state, func.count()).where(o.c.order_id == order_id).group_by(o.c.state)
        ).all()
    )
    total = sum(counts.values())
    if counts.get("dead"):
        target, kind = "dead", "order_dead"
        names = conn.execute(
            select(o.c.connector).where(o.c.order_id == order_id, o.c.state == "dead").order_by(o.c.connector)
        ).scalars().all()
        detail = f"delivery to {', '.join(names)} failed for good; replay it once the cause is fixed"
    elif total and counts.get("sent") == total:
        target, kind = "dispatched", "dispatched"
        names = conn.execute(
            select(o.c.connector).where(o.c.order_id == order_id).order_by(o.c.connector)
        ).scalars().all()
        detail = f"delivered to {', '.join(names)}"
    else:
        return
    result = conn.execute(
        update(t.orders)
        .where(t.orders.c.id == order_id, t.orders.c.state != target)
        .values(state=target, updated_at=now)
    )
    if result.rowcount == 1:
        events.append(_event(kind, detail, order_id, None, now))

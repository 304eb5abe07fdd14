"""The outbox: one row per delivery, written in the same transaction as what it delivers.

A row delivers an order to one connector (kind "order", one row per order and connector), or
a document we generated to one channel: an acknowledgement (997, 999, TA1, 855, CONTRL,
ORDRSP) or a confirmation e-mail (MAILREPLY), queued by `gateway.store.documents`, its bytes
in `body` and its channel in `connector`. Both go the same road: the same claims, leases,
retry policy, dead letters and replay (`gateway.store.dead_letters`). A document row does not
move its order's state; a document with no channel is `held` (shown, never claimed).

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
* Every state change writes an `events` row in the same transaction (a document's are
  `ack_*` events on its message), and the order's state follows its order rows: all `sent`
  gives `dispatched`, any `dead` gives `dead`, a replay that leaves no `dead` row gives
  `validated` again.

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

Steps. A connector configured with ``after: [erp]`` (`TargetConfigBase.after`) is a step that
depends on another: `claim_due` and `next_due` take the configuration's steps (connector ->
every connector it comes after, `GatewayConfig.steps`) and leave such a row `pending`, never
claimed, while a row of the same order to one of those connectors is not `sent`. The rule
lives in the claim, not in a column, so an order queued before a connector gained `after:`
obeys it too. Like an `after_id` wait, a step waiting on a dead predecessor is not a dead
letter, costs no attempt and is released when the predecessor is replayed and sent; a
predecessor the order has no row for (routing left it out) holds nothing back. When the step
is claimed it gets each earlier step's receipt reference (`ClaimedDelivery.steps`, also
``order["steps"][name]["reference"]`` for a payload mapping), and its attempt event names
them. A step that succeeded is never sent again because a later one failed: each row
retries on its own. `step_progress` describes an order whose steps are partly sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, and_, bindparam, case, exists, func, or_, select, true, update

from gateway.connector import Delivery, Receipt
from gateway.parts import WHOLE, part_count, part_key, restrict
from gateway.parts import describe as part_name
from gateway.retry import RetryPolicy
from gateway.states import DeliveryState, OrderState, move
from gateway.store import Store, add_events, as_utc
from gateway.store import tables as t
from gateway.store.documents import describe

__all__ = [
    "loggable",
    "ACTIONS",
    "ORDER",
    "ClaimedDelivery",
    "Failed",
    "Refused",
    "Result",
    "Sent",
    "StepProgress",
    "claim_due",
    "due_count",
    "idempotency_key",
    "mark_dead",
    "mark_failed",
    "mark_sent",
    "new_deliveries",
    "next_due",
    "part_routes",
    "record",
    "step_progress",
]

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f1c9a52-3c1e-4a57-9d0b-6e0b8f9f2a10")
_ERROR_CHARS = 2_000  # last_error and event details are for people, not archives


def idempotency_key(order_id: str, connector: str) -> str:
    """Stable for the life of the delivery: every attempt and every replay sends the same key."""
    return str(uuid.uuid5(_NAMESPACE, f"{order_id}\x1f{connector}"))


ACTIONS = ("create", "update", "cancel")
ORDER = "order"  # the kind of a row that delivers an order (any other kind is a document)


def new_deliveries(
    order_id: str,
    connectors: Iterable[str],
    now: dt.datetime,
    *,
    action: str = "create",
    after: Mapping[str, int] | None = None,
    references: Mapping[str, str | None] | None = None,
    parts: Mapping[str, int] | None = None,
    part_numbers: Mapping[str, Collection[int]] | None = None,
    part_after: Mapping[tuple[str, int], int] | None = None,
    part_references: Mapping[tuple[str, int], str | None] | None = None,
) -> list[dict[str, Any]]:
    """Rows for `insert(outbox)`, one per connector (or per connector and part), due at once.

    `action` is create, update or cancel. For a later version of an order, `after` maps a
    connector to the outbox id of the delivery of the previous version to it (the row waits
    until that one is `sent`), and `references` to the target's id of the order when it is
    already known (otherwise it is taken from the predecessor's receipt at claim time).
    Connectors missing from either mapping get None.

    `parts` maps a connector that gets a split order once per part to the number of parts
    (gateway.parts): it gets rows 1..n (only those `part_numbers` lists, when it lists the
    connector), each with its own idempotency key, and `part_after` / `part_references` by
    (connector, part) in place of `after` / `references`.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown outbox action {action!r}; expected one of {', '.join(ACTIONS)}")
    after = after or {}
    references = references or {}
    parts = parts or {}
    part_numbers = part_numbers or {}
    part_after = part_after or {}
    part_references = part_references or {}
    rows: list[dict[str, Any]] = []
    for name in connectors:
        count = parts.get(name, 0)
        numbers = sorted(part_numbers[name]) if name in part_numbers else range(1, count + 1)
        for part in numbers if count > 1 else (WHOLE,):
            key = (name, part)
            rows.append(
                {
                    "order_id": order_id,
                    "connector": name,
                    "idempotency_key": part_key(idempotency_key(order_id, name), part),
                    "state": move(DeliveryState, None, DeliveryState.PENDING).value,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                    "next_attempt_at": now,
                    "action": action,
                    "after_id": part_after.get(key) if part else after.get(name),
                    "target_reference": _reference_text(part_references.get(key) if part else references.get(name)),
                    "part": part,
                    "part_of": count if part else 0,
                }
            )
    return rows


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """One outbox row this worker holds until `lease_until`; `attempts` counts this attempt.

    An order (`kind` "order") carries `order`; a document carries `body` and its own fields."""

    outbox_id: int
    order_id: str | None
    connector: str
    idempotency_key: str
    attempts: int
    first_attempt_at: dt.datetime
    lease_until: dt.datetime
    order: dict[str, Any]
    rescued: bool = False  # taken over from a worker whose lease expired
    action: str = "create"  # create | update | cancel
    target_reference: str | None = None  # for update/cancel: the target's id of the order
    kind: str = ORDER  # "order", or the kind of document (997, 855, MAILREPLY, ...)
    message_id: str | None = None  # a document: the message it answers
    partner: str | None = None  # a document: who it goes to
    control_number: str | None = None  # a document: its interchange control number
    body: bytes = b""  # a document: the bytes to send
    created_at: dt.datetime | None = None  # a document: when it was queued
    steps: Mapping[str, str | None] = field(default_factory=dict)  # earlier steps: connector -> its receipt reference
    part: int = WHOLE  # a split order's part (gateway.parts); 0: the whole order
    part_of: int = 0  # how many parts the order was split into (0: not split)

    @property
    def is_document(self) -> bool:
        return self.kind != ORDER

    @property
    def what(self) -> str:
        """How the history and the logs name what is delivered."""
        if self.is_document:
            return describe(self.kind, self.control_number, self.partner)
        if self.part != WHOLE:
            return f"order {self.order_id} part {self.part} of {self.part_of}"
        return f"order {self.order_id}"

    @property
    def target(self) -> str:
        """The connector, and the part when it is one: "shipstation part 2 of 3"."""
        return part_name(self.connector, self.part, self.part_of)

    def delivery(self) -> Delivery:
        """What the connector is handed (an order row)."""
        return Delivery(
            outbox_id=self.outbox_id,
            order_id=self.order_id or "",
            idempotency_key=self.idempotency_key,
            attempt=self.attempts,
            order=self.order,
            action=self.action,
            target_reference=self.target_reference,
            steps=self.steps,
        )


# -- claiming ----------------------------------------------------------------------------------


def claim_due(
    store: Store,
    *,
    now: dt.datetime | None = None,
    lease_seconds: float,
    limit: int,
    connectors: Collection[str] | None = None,
    policies: Mapping[str, RetryPolicy] | None = None,
    documents: bool = False,
    document_policy: RetryPolicy | None = None,
    steps: Mapping[str, Collection[str]] | None = None,
) -> list[ClaimedDelivery]:
    """Claim up to `limit` due rows and commit the claim before anything is sent.

    Due means `pending` with `next_attempt_at <= now`, or `in_flight` whose lease ran out
    (`lease_until <= now`: the worker holding it died). Each claimed row becomes `in_flight`
    until `now + lease_seconds`, its attempt is counted and `first_attempt_at` set on the
    first one. `connectors` limits the claim of order rows to those this node can send
    (None: any); `documents` claims document rows too (acknowledgements, confirmation
    e-mails: a node with their channels). `policies` (by connector; default policy
    otherwise; `document_policy` for documents) decides whether a rescued row has already
    used up its attempts, in which case it goes to `dead` instead of being claimed.

    `now` defaults to the database's clock, read in the claiming transaction (reliability
    F19: a node whose clock runs fast must not take over leases that have not ended).
    Tests pass their own. Each state is read by its own indexed query with its own limit
    (expired leases first, then pending rows by due time), so a claim costs what its batch
    costs, however long the queue is.

    A row with an `after_id` is due only once that predecessor is `sent` (see the module
    docstring); without a `target_reference` of its own it gets the predecessor's receipt
    reference, stored on the row with the claim.

    `steps` (connector -> the connectors it comes after) holds back a row until the rows of
    its order to those connectors are `sent`; the claim hands it their receipt references
    (see "Steps" in the module docstring).
    """
    if connectors is not None and not connectors and not documents:
        return []
    o = t.outbox
    claimable = _claimable(connectors, documents)
    columns = (
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
        o.c.replays,
        o.c.kind,
        o.c.message_id,
        o.c.partner,
        o.c.control_number,
        o.c.body,
        o.c.created_at,
        o.c.part,
        o.c.part_of,
    )

    claimed: list[ClaimedDelivery] = []
    with store.begin() as conn:
        now = utc(now) if now is not None else store.db_now(conn)
        lease_until = now + dt.timedelta(seconds=lease_seconds)
        rows: list[Any] = []
        for state, column in (("in_flight", o.c.lease_until), ("pending", o.c.next_attempt_at)):
            query = (
                select(*columns)
                .where(o.c.state == state, column <= now, claimable, _not_waiting(), _steps_done(steps))
                .order_by(column, o.c.id)
                .limit(limit - len(rows))
            )
            if store.supports_skip_locked:
                query = query.with_for_update(skip_locked=True, of=o)
            rows.extend(conn.execute(query).all())
            if len(rows) >= limit:
                break
        if not rows:
            return []
        data = _order_data(conn, {r.order_id for r in rows if r.kind == ORDER and r.order_id is not None})
        split = part_routes(conn, {(r.order_id, r.part_of) for r in rows if r.kind == ORDER and r.part and r.order_id is not None})
        inherited = _predecessor_references(
            conn, {r.after_id for r in rows if r.after_id is not None and not r.target_reference}
        )
        earlier = _step_references(conn, [r for r in rows if r.kind == ORDER], steps or {})
        events: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        gone: set[str] = set()  # orders with a row dead-lettered by this claim
        for r in rows:
            move(DeliveryState, r.state, DeliveryState.IN_FLIGHT)
            rescued = r.state == "in_flight"
            attempts = r.attempts + 1
            first = as_utc(r.first_attempt_at) or now
            document = r.kind != ORDER
            if document:
                policy = document_policy or _DEFAULT_POLICY
            else:
                policy = (policies or {}).get(r.connector) or _DEFAULT_POLICY
            if rescued and policy.exhausted(r.attempts, first, now):
                why = (
                    f"attempt {r.attempts} to {r.connector} never finished (the worker stopped: crash, "
                    f"kill or out of memory) and the retry policy is used up; not tried again"
                )
                if _to_dead(conn, r, why, None, now, events) and not document:
                    gone.add(r.order_id)
                continue
            action = r.action or "create"
            reference = r.target_reference
            if not reference and r.after_id is not None and inherited.get(r.after_id):
                reference = inherited[r.after_id]
            updates.append(
                {
                    "b_id": r.id,
                    "b_attempts": attempts,
                    "b_first": first,
                    "b_reference": reference,
                }
            )
            detail = f"attempt {attempts} of {policy.max_attempts} to {part_name(r.connector, r.part, r.part_of)}"
            if action != "create":
                detail = f"{action} {detail}" + (
                    f" (target reference {reference})" if reference else ""
                )
            done = earlier.get(r.id, {})
            if done:
                detail += " after " + ", ".join(f"{name} ({ref or 'no reference'})" for name, ref in done.items())
            if r.replays:
                # A replay counts attempts from 1 again; without this the history showed
                # "attempt 1 of 8" twice for one delivery (issue 14 #11).
                detail += f" after replay {r.replays}"
            if rescued:
                detail += f" (attempt {r.attempts} never finished: its lease expired)"
            if not document:
                events.append(event_row("attempt", detail, r, now))
            elif rescued:  # a document's history names only attempts taken over
                events.append(event_row("rescued", f"{describe(r.kind, r.control_number, r.partner)}: {detail}", r, now))
            claimed.append(
                ClaimedDelivery(
                    outbox_id=r.id,
                    order_id=r.order_id,
                    connector=r.connector,
                    idempotency_key=r.idempotency_key,
                    attempts=attempts,
                    first_attempt_at=first,
                    lease_until=lease_until,
                    order=_with_steps(_payload(data, split, r), done),
                    rescued=rescued,
                    action=action,
                    target_reference=reference or None,
                    kind=r.kind,
                    message_id=r.message_id,
                    partner=r.partner,
                    control_number=r.control_number,
                    body=bytes(r.body or b""),
                    created_at=as_utc(r.created_at),
                    steps=done,
                    part=r.part,
                    part_of=r.part_of,
                )
            )
        if updates:
            # One statement for the batch: the rows are locked (PostgreSQL) or the whole
            # store is (SQLite's BEGIN IMMEDIATE), so nobody claimed them since the select.
            conn.execute(
                update(o)
                .where(o.c.id == bindparam("b_id"))
                .values(
                    state=DeliveryState.IN_FLIGHT.value,
                    attempts=bindparam("b_attempts"),
                    first_attempt_at=bindparam("b_first"),
                    lease_until=lease_until,
                    updated_at=now,
                    target_reference=bindparam("b_reference"),
                ),
                updates,
            )
        _settle_orders(conn, gone, now, events, lock=store.supports_skip_locked)
        add_events(conn, events)
    return claimed


def due_count(store: Store, *, steps: Mapping[str, Collection[str]] | None = None) -> int:
    """How many rows (orders and documents) are due now or in flight past their due time (by
    the database's clock). A step waiting for an earlier step (`steps`, as `claim_due` takes
    them) is not due: `gateway run --once` does not wait for a step behind a dead one."""
    o = t.outbox
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(o)
                .where(o.c.state.in_([DeliveryState.PENDING, DeliveryState.IN_FLIGHT]))
                .where(o.c.next_attempt_at <= store.db_now(conn), _steps_done(steps))
            ).scalar_one()
        )


def next_due(
    store: Store,
    *,
    connectors: Collection[str] | None = None,
    documents: bool = False,
    steps: Mapping[str, Collection[str]] | None = None,
) -> dt.datetime | None:
    """When the earliest unfinished row becomes claimable (None: nothing is pending or in flight).

    For a pending row that is `next_attempt_at`; for an in-flight one, the end of its lease.
    `connectors` and `documents` choose the rows as `claim_due` does.
    Rows waiting for their predecessor to be sent are left out: they become due when it is
    sent (which a pending predecessor already accounts for), never on their own; so are
    steps waiting for an earlier step (`steps`, as `claim_due` takes them).
    """
    o = t.outbox
    claimable_at = case(
        (o.c.state == "in_flight", func.coalesce(o.c.lease_until, o.c.next_attempt_at)),
        else_=o.c.next_attempt_at,
    )
    query = select(func.min(claimable_at)).where(
        o.c.state.in_(["pending", "in_flight"]), _claimable(connectors, documents), _not_waiting(), _steps_done(steps)
    )
    with store.engine.connect() as conn:
        value = conn.execute(query).scalar()
    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns the raw text from an expression
        value = dt.datetime.fromisoformat(value)
    return as_utc(value)


# -- recording results -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """The target accepted the delivery."""

    receipt: Receipt


@dataclass(frozen=True, slots=True)
class Failed:
    """A transient failure: retried per `policy`, dead once it is exhausted."""

    error: str
    policy: RetryPolicy
    status: int | None = None
    retry_after: float | None = None  # seconds the server asked for (Retry-After)


@dataclass(frozen=True, slots=True)
class Refused:
    """A permanent failure: dead at once, for a person to fix and replay."""

    error: str
    status: int | None = None


Result = Sent | Failed | Refused
Verdict = Literal["sent", "retry", "dead", "lost"]


def record(
    store: Store,
    results: Sequence[tuple[ClaimedDelivery, Result]],
    *,
    now: dt.datetime | None = None,
    rand: Callable[[], float] = random.random,
) -> list[Verdict]:
    """Record the results of several claimed deliveries in one transaction.

    Returns one verdict per result, in order: "sent", "retry" (scheduled again), "dead", or
    "lost" (this worker no longer holds the claim, or the row was settled already: nothing
    was changed for it). `now` defaults to the database's clock. The orders whose rows
    changed are settled (`dispatched` / `dead`) in the same transaction, each under a lock
    on its order row, so two transactions that finish the last two rows of one order
    cannot both miss that the order is done (issue 14 #16).

    This is the whole recording API: `claim_due` hands out `ClaimedDelivery`s, a caller
    sends them however it likes and reports each one here (`mark_sent`, `mark_failed` and
    `mark_dead` are the one-result forms).
    """
    if not results:
        return []
    verdicts: list[Verdict] = []
    with store.begin() as conn:
        now = utc(now) if now is not None else store.db_now(conn)
        events: list[dict[str, Any]] = []
        touched: set[str] = set()
        sent = _record_sent(conn, [(c, r.receipt) for c, r in results if isinstance(r, Sent)], now, events)
        for claim, result in results:
            if isinstance(result, Sent):
                verdict: Verdict = "sent" if claim.outbox_id in sent else "lost"
            elif isinstance(result, Failed):
                verdict = _record_failed(conn, claim, result, now, events, rand)
            else:
                why = f"{_short(result.error)} (attempt {claim.attempts}; not retried)"
                ok = _to_dead(conn, claim, why, result.status, now, events)
                verdict = "dead" if ok else "lost"
            if verdict in ("sent", "dead") and not claim.is_document and claim.order_id is not None:
                touched.add(claim.order_id)
            verdicts.append(verdict)
        _settle_orders(conn, touched, now, events, lock=store.supports_skip_locked)
        add_events(conn, events)
    return verdicts


def mark_sent(
    store: Store,
    claim: ClaimedDelivery,
    receipt: Receipt,
    *,
    now: dt.datetime | None = None,
) -> bool:
    """Record a delivery the target accepted. False if the row was already settled.

    Accepted even when this worker's lease expired meanwhile (the target holds the order now);
    the order becomes `dispatched` once all of its rows are sent.
    """
    return record(store, [(claim, Sent(receipt))], now=now) == ["sent"]


def mark_failed(
    store: Store,
    claim: ClaimedDelivery,
    *,
    error: str,
    status: int | None = None,
    retry_after: float | None = None,
    policy: RetryPolicy,
    now: dt.datetime | None = None,
    rand: Callable[[], float] = random.random,
) -> Literal["retry", "dead", "lost"]:
    """Record a transient failure: schedule the next attempt, or dead-letter it when the
    policy is exhausted. "lost" when this worker no longer holds the claim.

    The wait is `policy.next_delay(attempts, retry_after)`: exponential back-off with full
    jitter, never shorter than the server's Retry-After (itself capped by the policy).
    """
    [verdict] = record(store, [(claim, Failed(error, policy, status, retry_after))], now=now, rand=rand)
    return "lost" if verdict == "sent" else verdict


def mark_dead(
    store: Store,
    claim: ClaimedDelivery,
    *,
    error: str,
    status: int | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Dead-letter a delivery that failed permanently; its order becomes `dead`."""
    return record(store, [(claim, Refused(error, status))], now=now) == ["dead"]


def _record_sent(
    conn: Connection,
    sent: list[tuple[ClaimedDelivery, Receipt]],
    now: dt.datetime,
    events: list[dict[str, Any]],
) -> set[int]:
    """Mark the accepted deliveries `sent` in one statement; the outbox ids that were.

    A row already settled (sent, or dead-lettered meanwhile) is left alone and logged. The
    update is tried first for all of them, under a savepoint, and only checked row by row
    when it did not change them all (a lease that ran out and another worker settled the
    row: rare). Reading every row first (and on PostgreSQL locking it) cost a third of the
    dispatcher's recording time (issue 14, dispatch throughput); the update itself locks the
    rows it changes and re-checks their state under the lock (READ COMMITTED), in id order
    so that two transactions settling the same rows cannot deadlock."""
    if not sent:
        return set()
    sent = sorted(sent, key=lambda item: item[0].outbox_id)
    o = t.outbox
    open_states = [DeliveryState.IN_FLIGHT.value, DeliveryState.PENDING.value]
    for old in open_states:
        move(DeliveryState, old, DeliveryState.SENT)
    mark = (
        update(o)
        .where(o.c.id == bindparam("b_id"), or_(*(o.c.state == state for state in open_states)))  # (no IN: executemany)
        .values(
            state=DeliveryState.SENT.value,
            lease_until=None,
            last_status=bindparam("b_status"),
            last_error=None,
            receipt=bindparam("b_receipt", type_=o.c.receipt.type),
            updated_at=now,
        )
    )
    savepoint = conn.begin_nested()
    if conn.execute(mark, [_sent_row(c, r) for c, r in sent]).rowcount == len(sent):
        savepoint.commit()
        events.extend(_sent_event(c, r, now) for c, r in sent)
        return {c.outbox_id for c, _ in sent}
    savepoint.rollback()
    query = select(o.c.id).where(o.c.id.in_([c.outbox_id for c, _ in sent]), o.c.state.in_(open_states))
    if conn.dialect.name != "sqlite":
        query = query.order_by(o.c.id).with_for_update()
    open_ids = set(conn.execute(query).scalars())
    rows = []
    for claim, receipt in sent:
        if claim.outbox_id not in open_ids:
            log.warning("outbox %s to %s: already settled; result of attempt %s ignored", claim.outbox_id, claim.connector, claim.attempts)
            continue
        rows.append(_sent_row(claim, receipt))
        events.append(_sent_event(claim, receipt, now))
    if rows:
        conn.execute(mark, rows)
    return open_ids


def _sent_row(claim: ClaimedDelivery, receipt: Receipt) -> dict[str, Any]:
    return {
        "b_id": claim.outbox_id,
        "b_status": receipt.status,
        "b_receipt": {"status": receipt.status, "reference": receipt.reference, "detail": receipt.detail},
    }


def _sent_event(claim: ClaimedDelivery, receipt: Receipt, now: dt.datetime) -> dict[str, Any]:
    if claim.is_document:
        how = str(receipt.detail.get("sent") or f"sent through {claim.connector}")
        return event_row("sent", f"{claim.what} {how}", claim, now)
    parts = [
        f"HTTP {receipt.status}" if receipt.status else "accepted",
        f"by {claim.target}",  # a split order's part names itself: "by shipstation part 1 of 2"
    ]
    if claim.action != "create":
        parts.insert(0, f"{claim.action}:")
    if receipt.reference:
        parts.append(f"as {receipt.reference}")
    return event_row("sent", " ".join(parts) + f" (attempt {claim.attempts})", claim, now)


def _record_failed(
    conn: Connection,
    claim: ClaimedDelivery,
    failure: Failed,
    now: dt.datetime,
    events: list[dict[str, Any]],
    rand: Callable[[], float],
) -> Verdict:
    o = t.outbox
    policy = failure.policy
    error = _short(failure.error)
    if policy.exhausted(claim.attempts, claim.first_attempt_at, now):
        if claim.attempts >= policy.max_attempts:
            why = f"{error}; gave up after {claim.attempts} attempts (max_attempts {policy.max_attempts})"
        else:
            age = (now - claim.first_attempt_at).total_seconds()
            why = (
                f"{error}; gave up after {claim.attempts} attempts over {_duration(age)} "
                f"(max_age_seconds {policy.max_age_seconds:g})"
            )
        ok = _to_dead(conn, claim, why, failure.status, now, events)
        return "dead" if ok else "lost"
    delay = policy.next_delay(claim.attempts, failure.retry_after, rand)
    result = conn.execute(
        update(o)
        .where(*_held(claim))
        .values(
            state=move(DeliveryState, DeliveryState.IN_FLIGHT, DeliveryState.PENDING).value,
            lease_until=None,
            next_attempt_at=now + dt.timedelta(seconds=delay),
            last_status=failure.status,
            last_error=error,
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        log.warning("outbox %s to %s: claim lost (lease expired); failure of attempt %s ignored", claim.outbox_id, claim.connector, claim.attempts)
        return "lost"
    detail = f"{error}; retry {claim.attempts} of {policy.max_attempts - 1} in {delay:.1f} s"
    if failure.retry_after:
        detail += f" (server asked for {failure.retry_after:.0f} s)"
    if claim.is_document:
        detail = f"{claim.what} not delivered (attempt {claim.attempts}): {detail}"
    events.append(event_row("retry_scheduled", detail, claim, now))
    return "retry"


# -- helpers -----------------------------------------------------------------------------------

_DEFAULT_POLICY = RetryPolicy()


def utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("outbox times must be timezone-aware (UTC)")
    return value.astimezone(dt.UTC)


def _held(claim: ClaimedDelivery) -> tuple[Any, ...]:
    """The row is still ours: in flight under the same attempt this worker claimed."""
    o = t.outbox
    return (o.c.id == claim.outbox_id, o.c.state == DeliveryState.IN_FLIGHT, o.c.attempts == claim.attempts)


# A document's events say so: its history is read on its message (`gateway show`).
_DOCUMENT_EVENTS = {"sent": "ack_sent", "retry_scheduled": "ack_retry", "dead": "ack_dead", "replayed": "ack_replayed", "rescued": "ack_rescued"}


def event_row(kind: str, detail: str, row: Any, at: dt.datetime) -> dict[str, Any]:
    """An events row about outbox `row` (a claim or a selected row: an order's or a document's)."""
    if isinstance(row, ClaimedDelivery):
        outbox_id, order_id, doc_kind, message_id = row.outbox_id, row.order_id, row.kind, row.message_id
    else:
        outbox_id, order_id, doc_kind, message_id = row.id, row.order_id, row.kind, row.message_id
    if doc_kind == ORDER:
        return {"kind": kind, "detail": _short(detail), "order_id": order_id, "outbox_id": outbox_id, "at": at}
    return {
        "kind": _DOCUMENT_EVENTS.get(kind, f"ack_{kind}"), "detail": _short(detail), "order_id": order_id,
        "message_id": message_id, "outbox_id": outbox_id, "at": at,
    }


def _claimable(connectors: Collection[str] | None, documents: bool) -> Any:
    """The rows a node may claim: orders to `connectors` (None: any), and documents if asked."""
    o = t.outbox
    orders = o.c.kind == ORDER
    if connectors is not None:
        orders = and_(orders, o.c.connector.in_(sorted(connectors)))
    return or_(orders, o.c.kind != ORDER) if documents else orders


def loggable(why: str, status: int | None) -> str:
    """What a log line says about a failed delivery: an answer's status, not its body, which may
    echo the order's personal data (reliability S4). The full text stays with the delivery
    (`gateway dead-letters`, `gateway show`)."""
    if status is None:
        return why
    return f"HTTP {status} (the answer is kept with the delivery: gateway show / dead-letters)"


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


def _steps_done(steps: Mapping[str, Collection[str]] | None) -> Any:
    """The outbox row is not a step waiting for an earlier step of its order to be sent."""
    o = t.outbox
    conditions = []
    for i, (name, earlier) in enumerate(sorted((steps or {}).items())):
        if not earlier:
            continue
        sib = o.alias(f"step_{i}")
        waiting = exists().where(
            sib.c.order_id == o.c.order_id,
            sib.c.kind == ORDER,
            sib.c.connector.in_(sorted(earlier)),
            sib.c.state != DeliveryState.SENT.value,
        )
        conditions.append(or_(o.c.connector != name, o.c.kind != ORDER, ~waiting))
    return and_(true(), *conditions)


def _step_references(conn: Connection, rows: Sequence[Any], steps: Mapping[str, Collection[str]]) -> dict[int, dict[str, str | None]]:
    """outbox id -> {earlier step: its receipt reference} for the claimed `rows` that are steps."""
    wanted = [r for r in rows if steps.get(r.connector) and r.order_id is not None]
    if not wanted:
        return {}
    o = t.outbox
    names = sorted({n for r in wanted for n in steps[r.connector]})
    sent: dict[tuple[str, str], str | None] = {}
    for s in conn.execute(
        select(o.c.order_id, o.c.connector, o.c.receipt).where(
            o.c.order_id.in_(sorted({r.order_id for r in wanted})),
            o.c.kind == ORDER,
            o.c.connector.in_(names),
            o.c.state == DeliveryState.SENT.value,
        )
    ):
        receipt = s.receipt
        sent[(s.order_id, s.connector)] = _reference_text(receipt.get("reference")) if isinstance(receipt, dict) else None
    return {
        r.id: {n: sent[(r.order_id, n)] for n in sorted(steps[r.connector]) if (r.order_id, n) in sent} for r in wanted
    }


def _with_steps(order: dict[str, Any], done: Mapping[str, str | None]) -> dict[str, Any]:
    """The order a step is handed: with ``steps.<name>.reference`` of each earlier step."""
    if not done:
        return order
    return {**order, "steps": {name: {"reference": ref} for name, ref in done.items()}}


@dataclass(frozen=True, slots=True)
class StepProgress:
    """Where an order whose deliveries are partly sent stands (`gateway show` / `orders`)."""

    sent: tuple[str, ...]  # connectors that have it
    waiting: tuple[tuple[str, str], ...]  # (connector, why it is not sent yet)

    def describe(self) -> str:
        done = ", ".join(self.sent) or "nothing"
        open_ = "; ".join(f"{name} {why}" for name, why in self.waiting)
        return f"partly sent: {done} done; {open_}"


def step_progress(
    store: Store, order_ids: Collection[str], steps: Mapping[str, Collection[str]] | None = None
) -> dict[str, StepProgress]:
    """For each of `order_ids` with some order rows sent and others not: what is done and why
    each other step waits (for an earlier step, for its next retry, in flight, dead)."""
    if not order_ids:
        return {}
    o = t.outbox
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(o.c.order_id, o.c.connector, o.c.state, o.c.attempts, o.c.last_error, o.c.next_attempt_at, o.c.part, o.c.part_of)
            .where(o.c.order_id.in_(sorted(order_ids)), o.c.kind == ORDER)
            .order_by(o.c.order_id, o.c.connector, o.c.part)
        ).all()
    by_order: dict[str, list[Any]] = {}
    for r in rows:
        by_order.setdefault(r.order_id, []).append(r)
    out: dict[str, StepProgress] = {}
    for order_id, mine in by_order.items():
        state: dict[str, str] = {}
        for r in mine:  # a connector is done when all of its parts are
            if state.get(r.connector) in (None, DeliveryState.SENT):
                state[r.connector] = r.state
        sent = tuple(part_name(r.connector, r.part, r.part_of) for r in mine if r.state == DeliveryState.SENT)
        if not sent or len(sent) == len(mine):
            continue
        waiting = []
        for r in mine:
            if r.state == DeliveryState.SENT:
                continue
            before = [n for n in sorted((steps or {}).get(r.connector, ())) if n in state and state[n] != DeliveryState.SENT]
            if before and r.state == DeliveryState.PENDING:
                why = f"waits for {', '.join(before)}"
            elif r.state == DeliveryState.PENDING and r.attempts:
                why = f"retrying after attempt {r.attempts} ({_short(r.last_error or 'failed')[:80]}); next at {str(as_utc(r.next_attempt_at))[:19]}"
            else:
                why = {"pending": "queued", "in_flight": "being sent", "dead": "dead (replay it)"}.get(r.state, r.state)
            waiting.append((part_name(r.connector, r.part, r.part_of), why))
        out[order_id] = StepProgress(sent, tuple(waiting))
    return out


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


def _order_data(conn: Connection, order_ids: set[str]) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
    """The canonical order of each delivery and its route (gateway.routing; None: not routed)."""
    rt = t.order_routes
    rows = conn.execute(
        select(t.orders.c.id, t.orders.c.data, rt.c.route)
        .select_from(t.orders.outerjoin(rt, rt.c.order_id == t.orders.c.id))
        .where(t.orders.c.id.in_(sorted(order_ids)))
    )
    return {r.id: (r.data, r.route if isinstance(r.route, dict) else None) for r in rows if isinstance(r.data, dict)}


_VERSIONS_BACK = 50  # how far a part looks back through an order's versions for its split


def part_routes(conn: Connection, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
    """(order id, parts) -> the route that split it into that many parts: the order's own, or,
    for a later version (a change or cancellation, which keeps the split it changes, see
    gateway.versions) that was not routed again into as many parts, the nearest earlier
    version's."""
    rt, od = t.order_routes, t.orders
    found: dict[tuple[str, int], dict[str, Any]] = {}
    looking = {key: key[0] for key in wanted}  # (order, parts) -> the version looked at now
    for _ in range(_VERSIONS_BACK):
        if not looking:
            break
        ids = sorted(set(looking.values()))
        routes = {r.order_id: r.route for r in conn.execute(select(rt.c.order_id, rt.c.route).where(rt.c.order_id.in_(ids)))}
        earlier = {r.id: r.supersedes for r in conn.execute(select(od.c.id, od.c.supersedes).where(od.c.id.in_(ids)))}
        for key, at in list(looking.items()):
            route = routes.get(at)
            if isinstance(route, dict) and part_count(route) == key[1]:
                found[key] = route
                del looking[key]
            elif earlier.get(at):
                looking[key] = earlier[at]
            else:
                del looking[key]
    return found


def _payload(
    data: Mapping[str, tuple[dict[str, Any], dict[str, Any] | None]], split: Mapping[tuple[str, int], dict[str, Any]], row: Any
) -> dict[str, Any]:
    """What a claimed order row delivers: the whole order with its route, or one part of it
    (gateway.parts)."""
    order, route = data.get(row.order_id) or ({}, None)
    if not row.part:
        return restrict(order, route, WHOLE, 0)
    return restrict(order, split.get((row.order_id, row.part_of)), row.part, row.part_of)


def _to_dead(
    conn: Connection,
    row: Any,
    why: str,
    status: int | None,
    now: dt.datetime,
    events: list[dict[str, Any]],
) -> bool:
    """Dead-letter `row`: a claim (only while this worker holds it) or a selected in-flight row."""
    o = t.outbox
    if isinstance(row, ClaimedDelivery):
        outbox_id, connector, where = row.outbox_id, row.connector, _held(row)
        document = row.is_document
    else:
        outbox_id, connector = row.id, row.connector
        where = (o.c.id == outbox_id, o.c.state == DeliveryState.IN_FLIGHT)
        document = row.kind != ORDER
    result = conn.execute(
        update(o)
        .where(*where)
        .values(state=move(DeliveryState, DeliveryState.IN_FLIGHT, DeliveryState.DEAD).value, lease_until=None, last_status=status, last_error=_short(why), updated_at=now)
    )
    if result.rowcount != 1:
        log.warning("outbox %s to %s: claim lost (lease expired); dead-letter ignored", outbox_id, connector)
        return False
    log.warning("outbox %s to %s is dead: %s", outbox_id, connector, loggable(why, status))
    if document:
        what = describe(row.kind, row.control_number, row.partner)
        events.append(event_row("dead", f"{what} not delivered: {why}", row, now))
    else:
        events.append(event_row("dead", why, row, now))
    return True


def _settle_orders(
    conn: Connection, order_ids: Collection[str], now: dt.datetime, events: list[dict[str, Any]], *, lock: bool
) -> None:
    """Move each order to `dispatched` (all rows sent) or `dead` (any row dead).

    With `lock` (PostgreSQL) the order rows are locked first, in id order (no deadlock
    between two batches), and the rows counted after: under READ COMMITTED the count then
    sees every transaction that settled before this one, so the last of two concurrent
    finishers always sees both rows sent (issue 14 #16). SQLite serializes writers anyway.
    """
    if not order_ids:
        return
    ids = sorted(order_ids)
    od, o = t.orders, t.outbox
    current_query = select(od.c.id, od.c.state).where(od.c.id.in_(ids)).order_by(od.c.id)
    if lock:
        current_query = current_query.with_for_update()
    current = {r.id: r.state for r in conn.execute(current_query)}
    counts: dict[str, dict[str, int]] = {}
    names: dict[str, dict[str, list[str]]] = {}
    for r in conn.execute(
        select(o.c.order_id, o.c.state, o.c.connector, o.c.part, o.c.part_of)
        .where(o.c.order_id.in_(ids), o.c.kind == ORDER)
        .order_by(o.c.connector, o.c.part)
    ):
        # A split order's parts count one by one: dispatched once every part is sent.
        by_state = counts.setdefault(r.order_id, {})
        by_state[r.state] = by_state.get(r.state, 0) + 1
        names.setdefault(r.order_id, {}).setdefault(r.state, []).append(part_name(r.connector, r.part, r.part_of))
    done: dict[str, list[str]] = {"dead": [], "dispatched": []}
    details: dict[str, str] = {}
    for order_id in ids:
        by_state = counts.get(order_id, {})
        total = sum(by_state.values())
        if by_state.get("dead"):
            done["dead"].append(order_id)
            sent = names[order_id].get("sent")
            details[order_id] = (
                f"delivery to {', '.join(names[order_id]['dead'])} failed for good; replay it once the cause is fixed"
                + (f" (partly sent: {', '.join(sent)} took it)" if sent else "")
            )
        elif total and by_state.get("sent") == total:
            done["dispatched"].append(order_id)
            details[order_id] = f"delivered to {', '.join(names[order_id]['sent'])}"
    for target, kind in (("dead", "order_dead"), ("dispatched", "dispatched")):
        if not done[target]:
            continue
        for old in {current[i] for i in done[target] if i in current and current[i] != target}:
            move(OrderState, old, target)
        changed = conn.execute(
            update(od)
            .where(od.c.id.in_(done[target]), od.c.state != target)
            .values(state=target, updated_at=now)
            .returning(od.c.id)
        ).scalars().all()
        for order_id in sorted(changed):
            events.append({"kind": kind, "detail": _short(details[order_id]), "order_id": order_id, "outbox_id": None, "at": now})

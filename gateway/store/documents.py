"""Documents we generated, queued as outbox rows: acknowledgements (TA1, 997, 999, 855,
CONTRL, ORDRSP) and confirmation e-mails (kind MAILREPLY).

    queue(conn, message_id, [NewDocument("997", "acme", body, "folder:/srv/acme/out")])
    exists_for(conn, message_id)        # answered already? (re-processing after a crash)

Processing stores them in the transaction of what they answer and sends nothing; the
dispatcher (`gateway.dispatch.worker`) claims and sends them like orders (`gateway.store.outbox`:
the same claims, retry policy, dead letters and replay). An outbox row of a document has its
`kind`, the `message_id` it answers, `partner`, `control_number` and `body` (the bytes sent);
`connector` names its channel (`gateway.acks.channels`) and `order_id` the order it answers,
if any. A document whose partner has no outbound channel is stored `held`: shown, never
claimed. Every state written passes `gateway.states.move(DeliveryState, old, new)`.

A partner's acknowledgement of a document (gateway.acks.inbound) is recorded on its row:
`record_ack(conn, partner, ack, message_id)` matches each verdict by our interchange control
number (TA1 TA101, CONTRL UCI) or our GS06 (997/999 AK1, kept in `group_control_number` when queued) and
writes `ack_status`, `ack_code`, `ack_errors`, `ack_at` and `ack_message_id`. `mark_overdue`
stamps `overdue_at` on sent documents a partner left unacknowledged too long; `listing` shows
them (`gateway documents`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from gateway.acks.inbound import ACCEPTED, ACCEPTED_WITH_ERRORS, REJECTED, InboundAck, Verdict
from gateway.states import DeliveryState, move
from gateway.store import tables as t
from gateway.store.db import add_events, db_now

__all__ = [
    "ACK_KINDS",
    "CONFIRMATION",
    "NO_CHANNEL",
    "NewDocument",
    "answered",
    "count_overdue",
    "describe",
    "exists_for",
    "listing",
    "mark_overdue",
    "queue",
    "record_ack",
]

CONFIRMATION = "MAILREPLY"  # the kind of a confirmation e-mail
NO_CHANNEL = "-"  # the connector of a held document
# Documents that are themselves acknowledgements: a partner does not acknowledge them
# (MDN: an asynchronous AS2 receipt we owe, gateway.as2.receiver).
ACK_KINDS = ("TA1", "997", "999", "CONTRL", "MDN")
_WORST = {ACCEPTED: 0, ACCEPTED_WITH_ERRORS: 1, REJECTED: 2}


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A document to queue; `channel` None: no outbound channel, it is `held` with `held_reason`."""

    kind: str
    partner: str | None
    body: bytes
    channel: str | None
    control_number: str | None = None
    order_id: str | None = None
    held_reason: str | None = None


def describe(kind: str, control_number: str | None, partner: str | None) -> str:
    """What the history calls a document: "997 000000012 for acme", "confirmation e-mail to acme"."""
    if kind == CONFIRMATION:
        return f"confirmation e-mail to {partner or 'the sender'}"
    return f"{kind} {control_number or ''} for {partner or '-'}".replace("  ", " ")


def queue(conn: Connection, message_id: str | None, documents: Iterable[NewDocument], *, event_detail: str | None = None) -> int:
    """Insert the documents (pending, or held without a channel) in one statement, with an
    `ack_queued` / `ack_held` event each; returns how many. `event_detail` replaces the
    queued event's text (a confirmation e-mail names its recipient and orders)."""
    now = db_now(conn)  # due by the clock claims are measured on (reliability F19)
    rows = []
    events = []
    for d in documents:
        state = move(DeliveryState, None, DeliveryState.PENDING if d.channel is not None else DeliveryState.HELD)
        rows.append(
            {
                "kind": d.kind, "message_id": message_id, "order_id": d.order_id, "partner": d.partner,
                "control_number": d.control_number, "group_control_number": _gs06(d.body), "body": d.body, "connector": d.channel or NO_CHANNEL,
                "idempotency_key": str(uuid.uuid4()), "state": state.value, "attempts": 0,
                "created_at": now, "updated_at": now, "next_attempt_at": now,
                "last_error": None if d.channel is not None else d.held_reason, "action": "create",
            }
        )
        what = event_detail or describe(d.kind, d.control_number, d.partner)
        held = state == DeliveryState.HELD
        events.append(
            {
                "kind": "ack_held" if held else "ack_queued", "detail": what + (f": {d.held_reason}" if held else ""),
                "message_id": message_id, "order_id": d.order_id, "at": now,
            }
        )
    if not rows:
        return 0
    o = t.outbox
    ids = conn.execute(insert(o).returning(o.c.id, sort_by_parameter_order=True), rows).scalars().all()
    for event, outbox_id in zip(events, ids, strict=True):
        event["outbox_id"] = outbox_id
    add_events(conn, events)
    return len(rows)


def exists_for(conn: Connection, message_id: str, kind: str | None = None) -> bool:
    """Whether anything (of `kind`) was generated for the message: re-processing after a crash
    must not acknowledge or reply twice."""
    o = t.outbox
    q = select(o.c.id).where(o.c.message_id == message_id, o.c.kind != "order")
    if kind is not None:
        q = q.where(o.c.kind == kind)
    return conn.execute(q.limit(1)).first() is not None


def answered(conn: Connection, order_id: str) -> bool:
    """Whether an order response (855 / ORDRSP) was queued for the order already."""
    o = t.outbox
    q = select(o.c.id).where(o.c.order_id == order_id, o.c.kind.in_(("855", "ORDRSP")))
    return conn.execute(q.limit(1)).first() is not None


def _gs06(body: bytes) -> str | None:
    """The first GS06 of an X12 document (None for anything else): what a 997's AK1 names."""
    if not body.startswith(b"ISA") or len(body) < 106:
        return None
    element, terminator = body[3:4], body[105:106]
    start = body.find(terminator + b"GS" + element, 105, 4096)
    if start < 0:
        start = body.find(terminator + b"\nGS" + element, 105, 4096)  # a newline after each segment
        start = start + 1 if start >= 0 else start
    if start < 0:
        return None
    end = body.find(terminator, start + 1)
    parts = body[start + 1 : end if end > 0 else None].strip().split(element)
    value = parts[6].decode("ascii", "replace").strip() if len(parts) > 6 else ""
    return _number(value) or None


def _number(value: str) -> str:
    """A control number as compared: leading zeros dropped from a numeric one."""
    value = value.strip()
    return str(int(value)) if value.isdigit() else value


def record_ack(conn: Connection, partner: str | None, ack: InboundAck, message_id: str) -> list[Verdict]:
    """Record `ack` (read from message `message_id`, sent by `partner`) on the documents we sent
    that partner, with a `partner_ack` event each (in its order's history when it answers one);
    returns the verdicts that matched no document (quarantined as UNMATCHED_ACK by the caller).
    Reading the same acknowledgement again (re-processing) writes the same values, no new event."""
    o = t.outbox
    if partner is None:
        return list(ack.verdicts)
    now = db_now(conn)
    by_row: dict[int, list[Verdict]] = {}
    rows: dict[int, Any] = {}
    unmatched: list[Verdict] = []
    base = and_(o.c.partner == partner, o.c.kind != "order", o.c.kind.notin_(ACK_KINDS))
    for v in ack.verdicts:
        cond: Any
        if v.level == "interchange":  # TA1 by our ISA13 (nine digits), CONTRL by our UNB 0020
            cond = o.c.control_number.in_(sorted({v.control, v.control.zfill(9) if v.control.isdigit() else v.control}))
        else:
            cond = o.c.group_control_number == _number(v.control)
        found = conn.execute(
            select(o.c.id, o.c.kind, o.c.order_id, o.c.control_number, o.c.ack_message_id).where(base, cond).order_by(o.c.id.desc()).limit(1)
        ).first()
        if found is None:
            unmatched.append(v)
            continue
        rows[found.id] = found
        by_row.setdefault(found.id, []).append(v)
    events = []
    for row_id, verdicts in by_row.items():
        worst = max(verdicts, key=lambda v: _WORST[v.status])
        many = len(verdicts) > 1  # which set / message each error is about
        errors = [f"{v.set_control}: {e}" if many and v.set_control else e for v in verdicts for e in v.errors]
        row = rows[row_id]
        conn.execute(
            update(o).where(o.c.id == row_id).values(
                ack_status=worst.status, ack_code=worst.code[:10], ack_errors="; ".join(errors)[:4000] or None,
                ack_at=now, ack_message_id=message_id, overdue_at=None,
            )
        )
        if row.ack_message_id == message_id:
            continue
        said = worst.status.replace("_", " ")
        events.append(
            {
                "kind": "partner_ack", "order_id": row.order_id, "message_id": message_id, "outbox_id": row_id, "at": now,
                "detail": f"{describe(row.kind, row.control_number, partner)} {said} by the partner's {ack.kind} "
                f"(code {worst.code})" + (f": {'; '.join(errors)}" if errors else ""),
            }
        )
    add_events(conn, events)
    return unmatched


_SENT = (DeliveryState.SENT.value,)


def _awaiting(o: Any) -> Any:
    """Documents sent and not yet acknowledged (those a partner is expected to acknowledge)."""
    return and_(
        o.c.kind != "order", o.c.kind.notin_((*ACK_KINDS, CONFIRMATION)), o.c.ack_status.is_(None),
        o.c.state.in_(_SENT), o.c.partner.is_not(None),
    )


def mark_overdue(conn: Connection, limits: dict[str, float]) -> list[dict[str, Any]]:
    """Stamp `overdue_at` on documents sent to a partner in `limits` (partner -> minutes)
    longer ago than its limit and still unacknowledged (database clock); returns the newly
    overdue ones (id, kind, partner, control_number, order_id, sent_at) with an event each:
    what the scheduled check warns about once.
    A sent row's `updated_at` is when it was sent (nothing writes it afterwards but this)."""
    o = t.outbox
    now = db_now(conn)
    newly: list[dict[str, Any]] = []
    for partner, minutes in sorted(limits.items()):
        due = now - dt.timedelta(minutes=minutes)
        found = conn.execute(
            select(o.c.id, o.c.kind, o.c.partner, o.c.control_number, o.c.order_id, o.c.updated_at.label("sent_at"))
            .where(_awaiting(o), o.c.partner == partner, o.c.overdue_at.is_(None), o.c.updated_at <= due)
            .order_by(o.c.id)
        ).all()
        if not found:
            continue
        ids = [r.id for r in found]
        for chunk in range(0, len(ids), 500):
            conn.execute(update(o).where(o.c.id.in_(ids[chunk : chunk + 500])).values(overdue_at=now))
        newly.extend(r._asdict() for r in found)
        add_events(
            conn,
            [
                {
                    "kind": "ack_overdue", "order_id": r.order_id, "outbox_id": r.id, "at": now,
                    "detail": f"{describe(r.kind, r.control_number, partner)} not acknowledged within {minutes:g} minutes",
                }
                for r in found
            ],
        )
    return newly


def _overdue(o: Any, limits: dict[str, float], now: dt.datetime) -> Any:
    """Sent, unacknowledged, and older than its partner's limit (partner -> minutes)."""
    if not limits:
        return and_(o.c.id.is_(None), o.c.id.is_not(None))  # nothing is overdue
    return and_(
        _awaiting(o),
        or_(*(and_(o.c.partner == p, o.c.updated_at <= now - dt.timedelta(minutes=m)) for p, m in sorted(limits.items()))),
    )


def count_overdue(conn: Connection, limits: dict[str, float]) -> int:
    """Documents overdue now (database clock): sent, not acknowledged within their partner's limit."""
    o = t.outbox
    return int(conn.execute(select(func.count()).select_from(o).where(_overdue(o, limits, db_now(conn)))).scalar_one())


def listing(
    conn: Connection, limits: dict[str, float], *, overdue: bool = False, partner: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Documents we generated, newest first, with their delivery state, the partner's
    acknowledgement (`ack_status` None: none yet) and `overdue` (by `limits`, partner -> minutes)."""
    o = t.outbox
    now = db_now(conn)
    late = _overdue(o, limits, now)
    q = select(
        o.c.id, o.c.kind, o.c.partner, o.c.control_number, o.c.group_control_number, o.c.order_id, o.c.message_id,
        o.c.state, o.c.created_at, o.c.updated_at, o.c.ack_status, o.c.ack_code, o.c.ack_errors, o.c.ack_at,
        o.c.ack_message_id, late.label("overdue"),
    ).where(o.c.kind != "order")
    if overdue:
        q = q.where(late)
    if partner is not None:
        q = q.where(o.c.partner == partner)
    rows = [r._asdict() for r in conn.execute(q.order_by(o.c.id.desc()).limit(limit))]
    for r in rows:
        r["overdue"] = bool(r["overdue"])
    return rows

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
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from gateway.states import DeliveryState, move
from gateway.store import tables as t
from gateway.store.db import add_events, db_now

__all__ = ["CONFIRMATION", "NO_CHANNEL", "NewDocument", "answered", "describe", "exists_for", "queue"]

CONFIRMATION = "MAILREPLY"  # the kind of a confirmation e-mail
NO_CHANNEL = "-"  # the connector of a held document


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
                "control_number": d.control_number, "body": d.body, "connector": d.channel or NO_CHANNEL,
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

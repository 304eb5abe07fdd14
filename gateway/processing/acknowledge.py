"""What processing records for the partner: acknowledgements (997/999/TA1/855, CONTRL/
ORDRSP) and the confirmation reply to an order e-mail. Stored in the message's transaction
order as outbox rows (gateway.store.documents), never sent from here: the dispatcher
(gateway.dispatch.worker) claims and sends them like orders,
so processing performs no network I/O. Re-processing after a crash stores nothing twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.acks.outbound import AckCollector, plan_ready, store_acks
from gateway.formats.base import InterchangeClosed, InterchangeOpened
from gateway.processing.run import Run
from gateway.store import Store, add_event, utcnow
from gateway.store import documents as document_repo
from gateway.store import interchanges as interchange_repo
from gateway.store import orders as order_repo
from gateway.translate import PartnerDirectory, Rejected, Translated

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["ack_closed", "acked_already", "acknowledge", "collect_ack", "confirm", "store_ready_acks"]


def collect_ack(ev: Any, acks: AckCollector) -> None:
    if isinstance(ev, InterchangeOpened):
        acks.opened(ev.envelope, ev.source)
    elif isinstance(ev, Translated):
        acks.document(ev.envelope, ev.doc_type, ev.control_number)
    elif isinstance(ev, Rejected) and ev.envelope is not None:
        acks.document(ev.envelope, ev.doc_type, ev.control_number, ev.reason, ev.message, ev.position)


def acknowledge(store: Store, partners: PartnerDirectory, run: Run) -> None:
    """What is left to acknowledge once the input ends (the batches stored the rest)."""
    assert run.acks is not None
    run.acks.close_all()
    if not run.acks.ready():
        return
    with store.begin() as conn:
        store_ready_acks(conn, partners, run, set())
    # Sent by the dispatcher (gateway.dispatch.worker) after claiming: never from here.


def store_ready_acks(conn: Connection, partners: PartnerDirectory, run: Run, written: set[str]) -> None:
    assert run.acks is not None
    planned = plan_ready(run.acks, partners.configs, partners, conn, written=written, forced_partner=run.ack_partner)
    store_acks(conn, run.message_id, planned)


def ack_closed(ev: InterchangeClosed, repeat: str | None, run: Run) -> None:
    """Note a closed interchange for its acknowledgement, unless re-processing after a
    crash finds it acknowledged already."""
    if run.acks is None:
        return
    key = ev.envelope.interchange_key
    if key in run.acked_keys or (run.acked_before and (key is None or repeat is not None or not ev.complete)):
        run.acks.discard(ev.envelope.interchange_index)
        return
    run.acks.closed(ev, repeat)


def acked_already(store: Store, run: Run) -> None:
    """Re-processing: which interchanges of this message were acknowledged before the crash.
    An interchange's digest is written in the transaction that stores its acknowledgement."""
    with store.engine.connect() as conn:
        run.acked_before = document_repo.exists_for(conn, run.message_id)
        if run.acked_before:
            run.acked_keys = interchange_repo.settled_keys(conn, run.message_id)


def confirm(
    store: Store, partners: PartnerDirectory, smtp: Any, authserv_id: str | None, message_id: str, body: bytes, partner: str
) -> None:
    """Reply to a verified partner's order e-mail with what was understood (stored here,
    sent by the dispatcher)."""
    from email import policy

    from gateway.email_reply import (
        OrderOutcome,
        OutcomeState,
        build_confirmation,
        make_message_id,
        reply_refusal,
    )
    from gateway.formats.email import mail_headers
    from gateway.formats.email_sender import verify_sender
    from gateway.model import Order

    cfg = next((p for p in partners.configs if p.name == partner), None)
    if cfg is None or not cfg.email_confirmation:
        return
    headers: Any = mail_headers(body)
    with store.begin() as conn:
        # Re-processing after a crash must not reply twice.
        if document_repo.exists_for(conn, message_id, document_repo.CONFIRMATION):
            return
        refusal = reply_refusal(headers, own_addresses=[smtp.from_addr_spec])
        if refusal is not None:
            add_event(conn, "reply_skipped", f"no confirmation e-mail: {refusal}", message_id=message_id)
            return
        rows = order_repo.for_confirmation(conn, message_id)
        orders, outcomes = [], []
        words: dict[str, OutcomeState] = {"validated": "accepted", "dispatched": "accepted", "held": "review", "duplicate": "duplicate", "stale": "duplicate"}
        for r in rows:
            state = words.get(r["state"], "rejected")
            reason = "" if state in ("accepted", "duplicate") else (r["error"] or r["reason"] or "it could not be read")
            outcomes.append(OrderOutcome(r["po_number"], state, reason))
            if r["data"] is not None:
                data = r["data"]
                orders.append(Order.model_validate_json(data) if isinstance(data, str) else Order.model_validate(data))
        if not rows:
            return
        sender = verify_sender(headers, cfg.email_senders, cfg.email_require_auth, authserv_id).address
        if sender is None:
            return
        reply = build_confirmation(
            headers, to=sender, orders=orders, outcomes=outcomes, from_address=smtp.from_address,
            message_id=make_message_id(message_id, smtp.from_domain), now=utcnow(),
        )
        document = document_repo.NewDocument(
            kind=document_repo.CONFIRMATION, partner=partner, body=reply.as_bytes(policy=policy.SMTP), channel="smtp", order_id=rows[0]["id"]
        )
        document_repo.queue(conn, message_id, [document], event_detail=f"confirmation e-mail to {sender} listing {len(rows)} order(s)")

"""What processing records for the partner: acknowledgements (997/999/TA1/855, CONTRL/
ORDRSP) and the confirmation reply to an order e-mail. Stored in the message's transaction
order, never sent from here: the dispatch job (gateway.acks.delivery) claims and sends them,
so processing performs no network I/O. Re-processing after a crash stores nothing twice.
"""

from __future__ import annotations

from typing import Any

from gateway.acks.outbound import AckCollector, plan_acks, store_acks
from gateway.formats.base import InterchangeOpened
from gateway.processing.run import Run
from gateway.store import Store, add_event, utcnow
from gateway.store import acks as ack_repo
from gateway.store import orders as order_repo
from gateway.translate import PartnerDirectory, Rejected, Translated

__all__ = ["acknowledge", "collect_ack", "confirm"]


def collect_ack(ev: Any, acks: AckCollector) -> None:
    if isinstance(ev, InterchangeOpened):
        acks.opened(ev.envelope, ev.source)
    elif isinstance(ev, Translated):
        acks.document(ev.envelope, ev.doc_type, ev.control_number)
    elif isinstance(ev, Rejected) and ev.envelope is not None:
        acks.document(ev.envelope, ev.doc_type, ev.control_number, ev.reason, ev.message, ev.position)


def acknowledge(store: Store, partners: PartnerDirectory, run: Run, body: bytes, partner: str | None) -> None:
    assert run.acks is not None
    with store.begin() as conn:
        # Re-processing after a crash must not acknowledge twice.
        if ack_repo.exists_for(conn, run.message_id):
            return
        planned = plan_acks(run.acks, body, partners.configs, partners, conn, forced_partner=partner)
        store_acks(conn, run.message_id, planned, run.order_ids)
    # Sent by the dispatch job (gateway.acks.delivery) after claiming: never from here.


def confirm(
    store: Store, partners: PartnerDirectory, smtp: Any, authserv_id: str | None, message_id: str, body: bytes, partner: str
) -> None:
    """Reply to a verified partner's order e-mail with what was understood (stored here,
    sent by the dispatch job)."""
    from email import policy
    from email.parser import BytesHeaderParser

    from gateway.email_reply import (
        OrderOutcome,
        OutcomeState,
        build_confirmation,
        make_message_id,
        reply_refusal,
    )
    from gateway.formats.email_sender import verify_sender
    from gateway.model import Order

    cfg = next((p for p in partners.configs if p.name == partner), None)
    if cfg is None or not cfg.email_confirmation:
        return
    headers: Any = BytesHeaderParser(policy=policy.default).parsebytes(body)
    with store.begin() as conn:
        # Re-processing after a crash must not reply twice.
        if ack_repo.exists_for(conn, message_id, "MAILREPLY"):
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
        ack_repo.queue_reply(
            conn, message_id=message_id, order_id=rows[0]["id"], partner=partner, body=reply.as_string(policy=policy.SMTP), channel="smtp"
        )
        add_event(conn, "ack_queued", f"confirmation e-mail to {sender} listing {len(rows)} order(s)", message_id=message_id, order_id=rows[0]["id"])

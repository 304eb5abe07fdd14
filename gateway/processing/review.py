"""Orders and messages a person decides on: `gateway review`, `approve`, `reject`, `reprocess`.

An order the rules hold (gateway.processing.decide) waits here too, with its reasons;
approving it records who did. An order read with too little confidence is held (NEEDS_REVIEW) after version linking, so a
re-sent copy is still a duplicate and not a second order to review. Approving queues it like
any accepted order; rejecting refuses it for good. Either way the partner gets the 855/ORDRSP
the decision implies where it wants order responses (`answer`): accepted on approval (unless
one was sent already), the negative one (X12 BAK01 RJ / EDIFACT BGM 1225 27) on rejection. An
edit or release that leads to acceptance answers through the same function. Reprocessing reads a refused message again
with the current configuration (its accepted orders stay and are skipped).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.acks.outbound import plan_answer, store_acks
from gateway.errors import GatewayError
from gateway.model import Order
from gateway.processing.interchanges import take_over_reused
from gateway.store import Store, add_event, add_events, utcnow
from gateway.store import documents as document_repo
from gateway.store import findings as findings_repo
from gateway.store import messages as message_repo
from gateway.store import orders as order_repo
from gateway.store import tables as t
from gateway.store.ids import by_prefix
from gateway.translate import PartnerDirectory
from gateway.versions import Linker, Plan

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gateway.processing.stock import StockFollower

__all__ = ["Review", "hold_for_review"]

Queue = Callable[["Connection", list[tuple[dict[str, Any], Plan | None]], list[dict[str, Any]], dict[str, str]], None]


class Review:
    """A person's decisions, written through the store's repositories."""

    def __init__(self, store: Store, partners: PartnerDirectory, linker: Linker, queue: Queue):
        self.store = store
        self.partners = partners
        self.linker = linker
        self.queue = queue  # queues an approved order as processing queues an accepted one
        self.stock: StockFollower | None = None  # reserves for an approved order, releases for a refused one

    def held_for_review(self, limit: int = 100) -> list[dict[str, Any]]:
        """Orders waiting for a person (`gateway review`), oldest first."""
        with self.store.engine.connect() as conn:
            return order_repo.held(conn, limit)

    def approve(self, order_id: str, *, by: str = "") -> str:
        """Release an order held for review to its connectors; returns its full id.

        GatewayError when the id matches no held order, or more than one."""
        with self.store.begin() as conn:
            row = self._held_order(conn, order_id)
            by_rules = findings_repo.decision_of(conn, row["id"])
            held_by_rules = by_rules is not None and by_rules["outcome"] == "hold"
            if row["reason"] != "NEEDS_REVIEW" and not held_by_rules:
                raise GatewayError(
                    f"order {row['id'][:8]} is held because {row['reason']}: {row['error']} "
                    "It cannot be sent as it is; handle it in the target system and reject it here."
                )
            row["state"], row["reason"], row["error"] = "validated", None, None
            order_repo.review_decision(conn, row["id"], "validated", None, None)
            if held_by_rules:
                findings_repo.person_decided(conn, row["id"], "accept", by)
            if self.stock is not None:
                self.stock.approved(conn, row)
            events: list[dict[str, Any]] = []
            targets = self.linker.targets(row["partner"])
            note = f"approved by {by}" if by else "approved by a person"
            self.queue(conn, [(row, Plan(targets))], events, {row["id"]: f"PO {row['po_number']} {note}"})
            add_events(conn, events)
            if not document_repo.answered(conn, row["id"]):
                self.answer(conn, row, accepted=True)
        return str(row["id"])

    def reject(self, order_id: str, reason: str, *, by: str = "") -> str:
        """Refuse an order held for review (it is never sent); returns its full id."""
        if not reason.strip():
            raise GatewayError("say why the order is rejected (--reason); the partner may be told")
        with self.store.begin() as conn:
            row = self._held_order(conn, order_id)
            who = f" by {by}" if by else ""
            order_repo.review_decision(conn, row["id"], "quarantined", "REJECTED_BY_PERSON", reason.strip()[:2000])
            findings_repo.person_decided(conn, row["id"], "reject", by)
            if self.stock is not None:
                self.stock.refused(conn, row["id"])
            add_event(conn, "quarantined", order_id=row["id"], message_id=row["message_id"], detail=f"rejected{who}: {reason.strip()}")
            self.answer(conn, row, accepted=False)
        return str(row["id"])

    def answer(self, conn: Connection, row: dict[str, Any], *, accepted: bool) -> int:
        """Queue the 855/ORDRSP a person's decision on the order `row` implies, in the caller's
        transaction, where its partner wants order responses; how many (0 or 1)."""
        if row.get("data") is None or not self.partners.configs:
            return 0
        data = row["data"]
        order = Order.model_validate_json(data) if isinstance(data, str | bytes) else Order.model_validate(data)
        cfg = next((p for p in self.partners.configs if p.name == order.partner), None)
        if cfg is None or order.channel.value not in ("x12", "edifact"):
            return 0
        ack = plan_answer(order, accepted, cfg, conn, head=message_repo.head(conn, row["message_id"]), order_id=row["id"])
        return store_acks(conn, row["message_id"], [ack]) if ack is not None else 0

    def reprocess(self, message_id: str, *, by: str = "", accept_reused_control: bool = False) -> tuple[str, int]:
        """Read a refused message again with the current configuration (after a person added
        a sender to a partner, fixed a template, configured a partner, ...).

        Its refused documents are forgotten (their history stays under the message) and the
        message waits for processing again; what was accepted stays, and is skipped. Orders a
        person rejected stay rejected. Returns (full message id, documents to read again).

        `accept_reused_control`: a person checked that the message's interchanges whose control
        number was used before for other content (CONTROL_NUMBER_REUSED, e.g. a partner
        re-sending a complete file under the same ISA13) are genuine; they are read as new
        and their orders go through the usual order-level duplicate checks.
        GatewayError when the message is unknown, waiting already, or has nothing refused."""
        with self.store.begin() as conn:
            msg = by_prefix(conn, t.messages, message_id, "message", "gateway messages", "`gateway messages` lists them")
            if msg["state"] == "received":
                raise GatewayError(f"message {msg['id'][:8]} is waiting to be processed already")
            if accept_reused_control:
                keys = take_over_reused(conn, msg, self.partners)
                message_repo.reopen(conn, msg["id"], msg["state"])
                who = f" by {by}" if by else ""
                add_event(conn, "reprocess", f"reused control number accepted{who}: interchange(s) {', '.join(keys)} read as new", message_id=msg["id"])
                return str(msg["id"]), len(keys)
            if msg["reason"] == "CONTROL_NUMBER_REUSED":
                raise GatewayError(
                    f"message {msg['id'][:8]} reuses an interchange control number; read again it would be refused again. "
                    "If the partner confirms it is genuine, give --accept-reused-control"
                )
            refused = [oid for oid, why in order_repo.refused_of_message(conn, msg["id"]) if why != "REJECTED_BY_PERSON"]
            if msg["state"] != "quarantined" and not refused:
                raise GatewayError(f"message {msg['id'][:8]} has nothing refused to read again")
            if msg["state"] == "quarantined" and msg["attempts"] == 0:  # the source refused it unread
                raise GatewayError(f"message {msg['id'][:8]} was refused before it was read ({msg['reason']}); nothing is stored to read again")
            order_repo.delete_refused(conn, refused)
            findings_repo.forget(conn, refused)
            message_repo.reopen(conn, msg["id"], msg["state"])
            who = f" by {by}" if by else ""
            what = f"{len(refused)} refused document(s)" if refused else "the whole message"
            add_event(conn, "reprocess", f"read again{who} with the current configuration: {what} (was {msg['state']}{': ' + msg['reason'] if msg['reason'] else ''})", message_id=msg["id"])
        return str(msg["id"]), len(refused)

    @staticmethod
    def _held_order(conn: Connection, order_id: str) -> dict[str, Any]:
        row = by_prefix(conn, t.orders, order_id, "order", "gateway review", "`gateway review` lists the held ones")
        if row["state"] != "held":
            raise GatewayError(f"order {row['id'][:8]} (PO {row['po_number']}) is {row['state']}, not held for review")
        return row


def hold_for_review(
    rows: list[dict[str, Any]],
    review: dict[str, list[str]],
    plans: dict[str, Plan],
    events: list[dict[str, Any]],
    mapped: dict[str, str],
) -> None:
    """An order read with too little confidence waits for a person (`gateway approve`).

    Decided after linking, so a re-sent copy of an order is still a duplicate and not a
    second order to review; only a new order is held (nothing is queued for it)."""
    for row in rows:
        weak = review.get(row["id"])
        if not weak or row["state"] != "validated" or row["id"] not in plans:
            continue
        plans.pop(row["id"])
        row["state"], row["reason"] = "held", "NEEDS_REVIEW"
        row["error"] = "read with low confidence; check before approving: " + "; ".join(weak)
        lead = mapped.pop(row["id"], "") or f"PO {row['po_number']}"
        events.append(
            {
                "kind": "held",
                "order_id": row["id"],
                "message_id": row["message_id"],
                "at": utcnow(),
                "detail": f"{lead}; held for review: {row['error']}",
            }
        )

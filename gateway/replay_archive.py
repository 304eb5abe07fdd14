"""`gateway replay-archive --since DATE`: go-live safety for a mapping or rules change.

Every message received since DATE is read again from the store's archive with the current
mappings, validation and rules, and compared with what was decided when it arrived: the
decision (accept / hold / reject and its reason) and the order's content (field by field, as
the history shows changes). Nothing is stored or sent; the store is opened read-only.

What was decided then is the order's state: validated, dispatched, shipped or dead orders
were accepted, held ones held, quarantined ones rejected. A duplicate of an order received
before, or a change waiting for its original, was decided by version linking, which a replay
does not repeat: those are compared by content only. An order a person edited later is
compared as it was read. The rules see the order history as it stood when the message's
orders were decided (orders decided after, its own among them, are not seen), so a
customer's first order is still the first.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway.diff import order_diff
from gateway.errors import GatewayError
from gateway.store import findings as findings_repo
from gateway.store import messages as message_repo
from gateway.store import queries
from gateway.translate import PartnerDirectory, Rejected, Translated, translate
from gateway.validation import validate

__all__ = ["Replayed", "replay_archive"]

_THEN = {
    "validated": "accept", "dispatched": "accept", "shipped": "accept", "invoiced": "accept", "dead": "accept",
    "held": "hold", "quarantined": "reject",
}
_WINDOW = dt.timedelta(days=14)
# Decided by version linking, a person or the envelope, not by mapping and rules: a replay
# compares such orders by content only.
_NOT_REPLAYED = {
    "DUPLICATE_PO", "DUPLICATE_ORDER", "OLDER_COPY", "CHANGE_NEEDS_REVIEW", "ALREADY_SHIPPED",
    "WAITING_FOR_ORIGINAL", "TEST_INTERCHANGE", "REJECTED_BY_PERSON", "TRUNCATED",
}


@dataclass(slots=True)
class Replayed:
    """One order (or refused message) read again."""

    message_id: str
    received_at: dt.datetime
    name: str
    position: str
    po_number: str | None
    then: str  # accept / hold / reject / duplicate / waiting / edited / linked / refused / absent
    then_reason: str | None
    now: str  # accept / hold / reject / absent (no longer read)
    now_reason: str | None
    changes: list[str] = field(default_factory=list)  # content differences, as the history words them

    @property
    def decision_changed(self) -> bool:
        if self.then in ("duplicate", "waiting", "edited", "linked"):
            return self.now in ("absent",)
        return (self.then, self.then_reason) != (self.now, self.now_reason)

    @property
    def changed(self) -> bool:
        return self.decision_changed or bool(self.changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id, "received_at": self.received_at.isoformat(), "file": self.name,
            "position": self.position, "po_number": self.po_number, "then": self.then, "then_reason": self.then_reason,
            "now": self.now, "now_reason": self.now_reason, "changes": self.changes, "changed": self.changed,
        }


class _History:
    """The store's order history for the rules as it stood when a message arrived: orders
    decided after it (its own among them) are not seen."""

    def __init__(self, conn: Any, at: dt.datetime):
        self.conn, self.at = conn, at

    def order_counts(self, accounts: Collection[str]) -> Mapping[str, int]:
        return findings_repo.order_counts(self.conn, accounts, before=self.at)

    def usual_quantities(self, accounts: Collection[str]) -> Mapping[tuple[str, str], Decimal]:
        return {}

    def seen(self, fingerprints: Collection[str]) -> Mapping[str, str]:
        return findings_repo.seen(self.conn, fingerprints, self.at - _WINDOW, before=self.at)


def replay_archive(conn: Any, partners: PartnerDirectory, engine_for: Any, since: dt.datetime, *, limit: int | None = None) -> Iterator[Replayed]:
    """Read every message received since `since` again (see the module docstring).

    `engine_for(history)` builds the rules engine with the store's master data and the given
    history (None when no rules are configured). `conn` is a read-only connection."""
    for msg in queries.archived_messages(conn, since, limit=limit):
        yield from _replay(conn, partners, engine_for, msg)


def _replay(conn: Any, partners: PartnerDirectory, engine_for: Any, msg: dict[str, Any]) -> Iterator[Replayed]:
    body = message_repo.body(conn, msg["id"])
    if body is None:
        return
    decided = queries.decided_orders(conn, msg["id"])
    name = msg["display_name"] or msg["id"][:8]

    def row(position: str, po: str | None, then: str, then_reason: str | None, now: str, now_reason: str | None, changes: list[str] | None = None) -> Replayed:
        return Replayed(msg["id"], msg["received_at"], name, position, po, then, then_reason, now, now_reason, changes or [])

    read: list[Translated] = []
    refused_now: list[Rejected] = []
    try:
        for ev in translate(io.BytesIO(body), name=name, format=msg["format"], partner=msg["partner"], partners=partners, message_id=msg["id"]):
            if isinstance(ev, Translated):
                read.append(ev)
            elif isinstance(ev, Rejected):
                refused_now.append(ev)
    except GatewayError as exc:  # the whole message is refused now
        reason = getattr(exc, "reason", None) or type(exc).__name__
        if msg["state"] == "quarantined" and not decided:
            if msg["reason"] != reason:
                yield row("message", None, "refused", msg["reason"], "refused", reason)
            return
        for index, old in sorted(decided.items()):
            yield row(f"document {index + 1}", old["po_number"], *_then(old), "refused", reason)
        return
    valid = [ev for ev in read if not validate(ev.order)]
    # The history as it stood when the message's orders were decided (a batch run stores every
    # file before it decides any, so the time received would hide earlier decisions).
    at = findings_repo.decided_at(conn, msg["id"]) or msg["received_at"]
    engine = engine_for(_History(conn, at))
    decisions = dict(zip((id(ev) for ev in valid), engine.decide([ev.order for ev in valid]) if engine is not None else [], strict=False))
    seen: set[int] = set()
    for ev in read:
        seen.add(ev.index)
        problems = validate(ev.order)
        if problems:
            now, now_reason = "reject", problems[0].reason
        elif ev.review:  # read with low confidence: a person looks before any rule (as processing does)
            now, now_reason = "hold", "NEEDS_REVIEW"
        elif engine is None:
            now, now_reason = "accept", None
        else:
            decision = decisions[id(ev)]
            now, now_reason = decision.outcome.value, decision.reason
        found = decided.get(ev.index)
        if found is None:
            if msg["state"] == "quarantined" and not decided:
                yield row(ev.position, ev.order.po_number, "refused", msg["reason"], now, now_reason)
            else:
                yield row(ev.position, ev.order.po_number, "absent", None, now, now_reason)
            continue
        then, then_reason = _then(found)
        changes = order_diff(_data(found["data"]), json.loads(ev.order.model_dump_json())) if found["data"] is not None else []
        if found["po_number"] != ev.order.po_number:
            changes.insert(0, f"po_number: {found['po_number']} -> {ev.order.po_number}")
        yield row(ev.position, ev.order.po_number, then, then_reason, now, now_reason, changes)
    for rej in refused_now:
        seen.add(rej.index)
        before = decided.get(rej.index)
        then, then_reason = _then(before) if before else ("absent", None)
        yield row(rej.position, before["po_number"] if before else None, then, then_reason, "reject", rej.reason)
    for index, old in sorted(decided.items()):
        if index not in seen:
            yield row(f"document {index + 1}", old["po_number"], *_then(old), "absent", None)


def _then(old: dict[str, Any]) -> tuple[str, str | None]:
    state = old["state"]
    if old["reason"] in _NOT_REPLAYED:
        return "linked", old["reason"]
    if state in ("duplicate", "stale"):
        return "duplicate", old["reason"]
    if state in ("waiting", "superseded"):
        return ("waiting" if state == "waiting" else "edited"), old["reason"]
    return _THEN.get(state, state), old["reason"]


def _data(data: Any) -> dict[str, Any]:
    value = json.loads(data) if isinstance(data, str | bytes) else data
    return value if isinstance(value, dict) else {}

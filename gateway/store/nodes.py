"""What a gateway node asks of the store for itself: is it answering, and what a stopped node left.

A SQLite store serves one node (a lock file next to it says so), so every lease still held
when that node starts belongs to a process that died: `release_claims` hands them back at
once instead of after they expire. No state changes here, only leases: a message stays
`received`, a delivery `in_flight` until it is claimed again (its lease now ended).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text, update
from sqlalchemy.exc import SQLAlchemyError

from gateway.states import DeliveryState, MessageState
from gateway.store import tables as t
from gateway.store.db import Store, add_event, utcnow

__all__ = ["Released", "ping", "release_claims"]


@dataclass(frozen=True, slots=True)
class Released:
    """Claims a stopped node left behind and `release_claims` gave back."""

    messages: int
    deliveries: int


def ping(store: Store) -> str | None:
    """None when the store answers a trivial query; otherwise why not (for a health check)."""
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return str(exc)
    return None


def release_claims(store: Store) -> Released:
    """End every message lease and delivery lease now, with a `recovered` event if any was held.

    Only for a store this node alone uses (SQLite under the node lock)."""
    now = utcnow()
    m, o = t.messages, t.outbox
    with store.begin() as conn:
        n = conn.execute(
            update(m).where(m.c.state == MessageState.RECEIVED, m.c.lease_until.is_not(None)).values(lease_until=None)
        ).rowcount
        d = conn.execute(update(o).where(o.c.state == DeliveryState.IN_FLIGHT).values(lease_until=now)).rowcount
        if n or d:
            add_event(conn, "recovered", f"released {n} message and {d} delivery claim(s) left by a stopped gateway")
    return Released(messages=n, deliveries=d)

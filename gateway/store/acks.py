"""Acknowledgements and confirmation e-mails we generated, as the pipeline stores them.

    acks(id, message_id, order_id, partner, kind, body, state, channel, ...)

Stored here, sent by the dispatch job (gateway.acks.delivery). Every state written here
passes `gateway.states.move(AckState, old, new)` first.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from gateway.states import AckState, move
from gateway.store import tables as t
from gateway.store.db import utcnow

__all__ = ["exists_for", "queue_reply"]


def exists_for(conn: Connection, message_id: str, kind: str | None = None) -> bool:
    """Whether anything (of `kind`) was generated for the message: re-processing after a crash
    must not acknowledge or reply twice."""
    q = select(t.acks.c.id).where(t.acks.c.message_id == message_id)
    if kind is not None:
        q = q.where(t.acks.c.kind == kind)
    return conn.execute(q.limit(1)).first() is not None


def queue_reply(conn: Connection, *, message_id: str, order_id: str, partner: str, body: str, channel: str) -> None:
    """A confirmation e-mail (kind MAILREPLY) waiting to be sent."""
    state = move(AckState, None, AckState.PENDING)
    conn.execute(
        t.acks.insert().values(
            created_at=utcnow(), message_id=message_id, order_id=order_id, partner=partner, kind="MAILREPLY",
            control_number=None, body=body, state=state.value, channel=channel,
        )
    )

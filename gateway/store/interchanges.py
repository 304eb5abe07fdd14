"""EDI interchanges seen before: one row per (sender, control number) key, for repeat detection.

    interchanges(key PK, message_id, digest, created_at)

A row is registered (digest None) in the transaction that writes the interchange's first
orders; its digest is filled in once its trailer was read. The same key with the same digest
is a duplicate; with another digest, a reused control number (CONTROL_NUMBER_REUSED).
Interchanges have no state column, so nothing here passes `gateway.states`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from gateway.store import tables as t

__all__ = ["any_of_message", "known", "register", "set_digests", "settled_keys", "take_over"]

ix = t.interchanges


def known(conn: Connection, keys: list[str]) -> dict[str, Any]:
    """key -> (key, message_id, digest) of the interchanges already registered."""
    if not keys:
        return {}
    return {r.key: r for r in conn.execute(select(ix.c.key, ix.c.message_id, ix.c.digest).where(ix.c.key.in_(keys)))}


def register(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """New interchanges (key, message_id, digest None, created_at)."""
    if rows:
        conn.execute(ix.insert(), rows)


def set_digests(conn: Connection, digests: list[tuple[str, str]]) -> None:
    """(key, digest) of interchanges whose trailer was read."""
    if digests:
        conn.execute(
            update(ix).where(ix.c.key == bindparam("k")).values(digest=bindparam("d")),
            [{"k": k, "d": d} for k, d in digests],
        )


def any_of_message(conn: Connection, message_id: str) -> bool:
    """Whether the message registered interchanges before (it is being read again)."""
    return conn.execute(select(ix.c.id).where(ix.c.message_id == message_id).limit(1)).first() is not None


def settled_keys(conn: Connection, message_id: str) -> set[str]:
    """Keys of the message's interchanges whose trailer was read (digest written)."""
    return set(conn.execute(select(ix.c.key).where(ix.c.message_id == message_id, ix.c.digest.is_not(None))).scalars())


def take_over(conn: Connection, keys: list[str], message_id: str) -> None:
    """A person accepted a reused control number: these keys now belong to `message_id` and
    are read as new (digest forgotten)."""
    if keys:
        conn.execute(update(ix).where(ix.c.key.in_(keys)).values(message_id=message_id, digest=None))

"""Received messages and their raw bodies: what the pipeline stores, claims, finishes and reopens.

    messages(id, sha256, dedupe_key, state, lease_until, attempts, ...) ──1 message_bodies(body)

Every state written here passes `gateway.states.move(MessageState, old, new)` first, so a move
the state tables do not allow raises instead of being stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.states import MessageState, move
from gateway.store import tables as t
from gateway.store.db import utcnow

__all__ = [
    "body",
    "claim",
    "claim_next",
    "extend_lease",
    "find_same",
    "finish",
    "head",
    "insert",
    "load",
    "read_body",
    "release",
    "reopen",
    "start_attempt",
]

m = t.messages


def _same(sha: str, key: str | None) -> Any:
    return m.c.sha256 == sha if key is None else or_(m.c.sha256 == sha, m.c.dedupe_key == key)


def find_same(conn: Connection, sha: str, key: str | None) -> Any:
    """The (id, sha256) of a stored message with these bytes or this source dedupe key, or None."""
    return conn.execute(select(m.c.id, m.c.sha256).where(_same(sha, key)).limit(1)).first()


def insert(conn: Connection, row: dict[str, Any], body: bytes) -> str | None:
    """Store a new message row and its body; returns None when that worked, else the id of the
    identical message another node stored between our look and our insert."""
    move(MessageState, None, row["state"])
    try:
        with conn.begin_nested():
            conn.execute(m.insert().values(**row))
            _insert_body(conn, row["id"], body)
    except IntegrityError:
        return str(conn.execute(select(m.c.id).where(_same(row["sha256"], row["dedupe_key"])).limit(1)).scalar_one())
    return None


# Bodies larger than this are written into SQLite in pieces (see _insert_body).
_BLOB_PIECE = 1 << 20


def _insert_body(conn: Connection, message_id: str, body: bytes) -> None:
    """Store a message's bytes. On SQLite a large body is written through incremental blob
    I/O, a megabyte at a time into a zeroblob of its size: binding it whole made SQLite copy
    it twice (the bound value, then the record), which for a 50 MB file was 100 MB of peak
    memory that the process kept afterwards (issue 14 #18)."""
    mb = t.message_bodies
    raw: Any = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
    if raw is None or len(body) <= _BLOB_PIECE or not hasattr(raw, "blobopen"):
        conn.execute(mb.insert().values(message_id=message_id, body=body))
        return
    rowid = conn.execute(mb.insert().values(message_id=message_id, body=func.zeroblob(len(body)))).lastrowid
    view = memoryview(body)
    with raw.blobopen("message_bodies", "body", rowid) as blob:
        for start in range(0, len(body), _BLOB_PIECE):
            blob.write(view[start : start + _BLOB_PIECE])


def claim_next(conn: Connection, limit: int, lease_until: dt.datetime, *, skip_locked: bool, max_bytes: int | None = None) -> list[str]:
    """Lease up to `limit` waiting messages (oldest first) whose lease is free or ran out; a
    group is cut where their bodies pass `max_bytes` together (a large message comes alone)."""
    now = utcnow()
    q = (
        select(m.c.id, m.c.size)
        .where(m.c.state == MessageState.RECEIVED.value)
        .where((m.c.lease_until.is_(None)) | (m.c.lease_until < now))
        .order_by(m.c.received_at)
        .limit(limit)
    )
    if skip_locked:
        q = q.with_for_update(skip_locked=True)
    ids: list[str] = []
    size = 0
    for row in conn.execute(q):
        size += row.size or 0
        if ids and max_bytes is not None and size > max_bytes:
            break
        ids.append(row.id)
    if ids:
        conn.execute(update(m).where(m.c.id.in_(ids)).values(lease_until=lease_until))
    return ids


def release(conn: Connection, ids: list[str]) -> None:
    """Give back the leases of claimed messages that will not be processed now."""
    if ids:
        conn.execute(update(m).where(m.c.id.in_(ids), m.c.state == MessageState.RECEIVED.value).values(lease_until=None))


def claim(conn: Connection, message_id: str, now: dt.datetime, lease_until: dt.datetime) -> bool:
    """Lease one waiting message; False when it is processed or another node holds it."""
    done = conn.execute(
        update(m)
        .where(m.c.id == message_id, m.c.state == MessageState.RECEIVED.value)
        .where((m.c.lease_until.is_(None)) | (m.c.lease_until < now))
        .values(lease_until=lease_until)
    )
    return bool(done.rowcount)


def load(conn: Connection, message_id: str) -> dict[str, Any]:
    """The message row (raises if it does not exist)."""
    return dict(conn.execute(select(m).where(m.c.id == message_id)).mappings().one())


def start_attempt(conn: Connection, message_id: str, attempts: int, now: dt.datetime, lease_until: dt.datetime) -> None:
    """Count one more processing attempt (before the work) and renew the lease."""
    conn.execute(update(m).where(m.c.id == message_id).values(attempts=attempts, updated_at=now, lease_until=lease_until))


def extend_lease(conn: Connection, message_id: str, lease_until: dt.datetime) -> None:
    """Heartbeat: a long file keeps its claim while it makes progress."""
    conn.execute(update(m).where(m.c.id == message_id).values(lease_until=lease_until))


def body(conn: Connection, message_id: str) -> bytes | None:
    """The raw bytes as received (None if the message has no stored body)."""
    found = conn.execute(select(t.message_bodies.c.body).where(t.message_bodies.c.message_id == message_id)).scalar_one_or_none()
    return None if found is None else bytes(found)


def head(conn: Connection, message_id: str, size: int = 4096) -> bytes:
    """The first `size` bytes of a stored message (its interchange header), without reading
    the rest of a large body."""
    mb = t.message_bodies
    found = conn.execute(select(func.substr(mb.c.body, 1, size)).where(mb.c.message_id == message_id)).scalar_one_or_none()
    return b"" if found is None else bytes(found)


def read_body(conn: Connection, message_id: str) -> bytes:
    """A stored message's bytes. On SQLite read through incremental blob I/O: one copy of a
    large body in memory, not SQLite's buffer and then Python's (issue 14 #18)."""
    mb = t.message_bodies
    if conn.dialect.name == "sqlite":
        rowid = conn.exec_driver_sql("SELECT rowid FROM message_bodies WHERE message_id = ?", (message_id,)).scalar()
        raw: Any = conn.connection.driver_connection
        if rowid is not None and hasattr(raw, "blobopen"):
            with raw.blobopen("message_bodies", "body", rowid, readonly=True) as blob:
                return bytes(blob.read())
    return bytes(conn.execute(select(mb.c.body).where(mb.c.message_id == message_id)).scalar_one())


def finish(conn: Connection, message_id: str, old: str | None, state: str, values: dict[str, Any]) -> None:
    """Write the outcome of processing (`state` plus reason, error, counts ...); frees the lease."""
    move(MessageState, old, state)
    conn.execute(update(m).where(m.c.id == message_id).values(state=state, lease_until=None, updated_at=utcnow(), **values))


def reopen(conn: Connection, message_id: str, old: str) -> None:
    """`gateway reprocess`: the message waits to be read again from its first attempt."""
    move(MessageState, old, MessageState.RECEIVED)
    conn.execute(
        update(m)
        .where(m.c.id == message_id)
        .values(state=MessageState.RECEIVED.value, reason=None, error=None, attempts=0, lease_until=None, updated_at=utcnow())
    )

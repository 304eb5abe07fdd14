"""Step 1: store the raw bytes, their sha256 and where they came from, in one committed
transaction. The caller acknowledges the source only after this returns: nothing lost. The
same bytes (or the same source dedupe key) received again are recognised here and become a
no-op: nothing doubled.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway import crashpoints
from gateway.connector import RawMessage
from gateway.store import Store, add_event, new_id, utcnow
from gateway.store import messages as message_repo

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["ReceiveResult", "display_name", "receive", "receive_in", "receive_many"]


@dataclass(slots=True)
class ReceiveResult:
    message_id: str
    duplicate: bool


def display_name(name: str) -> str:
    """A file or attachment name made safe to show: basename only, no control characters."""
    name = unicodedata.normalize("NFKC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "\x00")
    name = name.strip().lstrip(".") or "unnamed"
    return name[:255]


def receive(store: Store, raw: RawMessage, *, format: str | None = None, partner: str | None = None) -> ReceiveResult:
    """Commit the raw message. Returns the id of the stored (or earlier identical) message."""
    return receive_many(store, [raw], format=format, partner=partner)[0]


def receive_many(store: Store, raws: list[RawMessage], *, format: str | None = None, partner: str | None = None) -> list[ReceiveResult]:
    """Commit several raw messages in one (fully durable) transaction: one fsync for the
    group. Nothing may be acknowledged before this returns (gateway.ingest)."""
    with store.begin() as conn:
        results = [receive_in(conn, raw, format, partner) for raw in raws]
    for r in results:
        if not r.duplicate:
            crashpoints.hit("after_store")
    return results


def receive_in(conn: Connection, raw: RawMessage, format: str | None, partner: str | None) -> ReceiveResult:
    """Store one raw message inside `conn` (see receive_many)."""
    sha = hashlib.sha256(raw.body).hexdigest()
    key = f"{raw.source}|{raw.dedupe_key}"[:400] if raw.dedupe_key else None
    now = utcnow()
    found = message_repo.find_same(conn, sha, key)
    if found is not None:
        what = "same content" if found.sha256 == sha else f"same {raw.dedupe_key}"
        add_event(conn, "duplicate_received", f"{what} received again from {raw.source}: {raw.display_name}", message_id=found.id)
        return ReceiveResult(found.id, True)
    mid = new_id()
    state, reason, error = "received", None, None
    if raw.rejected:
        state, reason, error = "quarantined", raw.rejected.split(":", 1)[0], raw.rejected
    existing = message_repo.insert(
        conn,
        dict(
            id=mid,
            received_at=now,
            updated_at=now,
            source=raw.source,
            source_ref=raw.source_ref[:1000],
            display_name=display_name(raw.display_name),
            sha256=sha,
            dedupe_key=key,
            size=len(raw.body),
            format=format,
            partner=partner,
            state=state,
            reason=reason,
            error=error,
            warnings=[],
            attempts=0,
            order_count=0,
            rejected_count=0,
        ),
        raw.body,
    )
    if existing is not None:
        # Another node stored the same message between our look and our insert.
        return ReceiveResult(existing, True)
    add_event(conn, "received", f"{len(raw.body)} bytes from {raw.source}: {display_name(raw.display_name)}", message_id=mid, at=now)
    if state == "quarantined":
        add_event(conn, "quarantined", error, message_id=mid, at=now)
    return ReceiveResult(mid, False)

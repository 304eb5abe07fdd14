"""Per-source cursors: how far a polling source has read, persisted so a restart resumes there.

    source_cursors(source PK, value, updated_at)

A cursor is an ISO 8601 timestamp (stored in UTC) and only moves forward: `set_cursor` with an
earlier value changes nothing. Import this module wherever `tables.metadata` must be complete.

A source whose cursor is not a timestamp (IMAP: ``"<UIDVALIDITY>:<UID>"``) reads it with
`get_cursor` and writes it with `write_cursor`, giving its own rule for when a value replaces
the stored one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Column, String, Table, insert, select, update

from gateway.store.db import Store, utcnow
from gateway.store.tables import TZ, metadata

__all__ = ["get_cursor", "parse_timestamp", "set_cursor", "source_cursors", "write_cursor"]

source_cursors = Table(
    "source_cursors",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("value", String(100), nullable=False),
    Column("updated_at", TZ, nullable=False),
)


def parse_timestamp(value: str) -> dt.datetime:
    """An ISO 8601 timestamp as an aware UTC datetime (one without an offset is taken as UTC)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _normalize(value: str) -> str:
    return parse_timestamp(value).isoformat()


def get_cursor(store: Store, source: str) -> str | None:
    """The source's cursor (UTC ISO 8601), or None before its first acknowledged message."""
    with store.engine.connect() as conn:
        value = conn.execute(select(source_cursors.c.value).where(source_cursors.c.source == source)).scalar()
    return None if value is None else str(value)


def set_cursor(store: Store, source: str, value: str) -> None:
    """Move the source's cursor to `value` if that is later than the stored one (never back).

    Raises ValueError if `value` is not an ISO 8601 timestamp.
    """
    new = _normalize(value)
    new_at = parse_timestamp(new)
    with store.begin() as conn:
        current = conn.execute(
            select(source_cursors.c.value).where(source_cursors.c.source == source).with_for_update()
        ).scalar()
        if current is None:
            conn.execute(insert(source_cursors).values(source=source, value=new, updated_at=utcnow()))
            return
        try:
            if parse_timestamp(str(current)) >= new_at:
                return
        except ValueError:
            pass  # an unreadable stored value is replaced
        conn.execute(
            update(source_cursors).where(source_cursors.c.source == source).values(value=new, updated_at=utcnow())
        )


def write_cursor(store: Store, source: str, value: str, *, replaces: Callable[[str], bool]) -> bool:
    """Store `value` as the source's cursor when there is none yet or `replaces(stored)` says
    it should replace the stored one; the stored value is read under a row lock, so two
    writers cannot both pass the check. True when `value` was written."""
    c = source_cursors
    with store.begin() as conn:
        current = conn.execute(select(c.c.value).where(c.c.source == source).with_for_update()).scalar()
        if current is None:
            conn.execute(insert(c).values(source=source, value=value, updated_at=utcnow()))
            return True
        if not replaces(str(current)):
            return False
        conn.execute(update(c).where(c.c.source == source).values(value=value, updated_at=utcnow()))
    return True

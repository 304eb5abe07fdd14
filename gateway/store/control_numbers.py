"""Outbound control numbers (ISA13, GS06, ST02, UNB 0020, ...) per partner and kind.

    numbers = StoredControlNumbers(conn)  # inside the caller's write transaction
    numbers.next("acme", "isa")         # 1, 2, ... 999999999, then 1 again
    numbers.save()                      # before that transaction commits

Allocated inside the caller's write transaction (BEGIN IMMEDIATE on SQLite, a row lock on
PostgreSQL): two nodes never hand out the same number, and a rolled-back acknowledgement
gives its number back.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, insert, select, update

from gateway.store import tables as t

__all__ = ["MAX_CONTROL", "StoredControlNumbers"]

MAX_CONTROL = 999_999_999  # nine digits (ISA13); the next one after it is 1


class StoredControlNumbers:
    """The row of a partner and kind is read (and locked) once; later numbers are counted here
    and written back by `save()`, which the caller runs before its transaction commits."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._values: dict[tuple[str, str], int] = {}
        self._dirty: set[tuple[str, str]] = set()

    def next(self, partner: str, kind: str) -> int:
        key = (partner, kind)
        value = self._values.get(key)
        if value is None:
            c = t.control_numbers
            q = select(c.c.value).where(c.c.partner == partner, c.c.kind == kind)
            if self.conn.dialect.name == "postgresql":
                q = q.with_for_update()
            stored = self.conn.execute(q).scalar()
            if stored is None:
                self.conn.execute(insert(c).values(partner=partner, kind=kind, value=1))
                self._values[key] = 1
                return 1
            value = int(stored)
        nxt = 1 if value >= MAX_CONTROL else value + 1
        self._values[key] = nxt
        self._dirty.add(key)
        return nxt

    def save(self) -> None:
        """Write the numbers handed out since the last save (inside the same transaction)."""
        if not self._dirty:
            return
        c = t.control_numbers
        self.conn.execute(
            update(c).where(c.c.partner == bindparam("p"), c.c.kind == bindparam("k")).values(value=bindparam("v")),
            [{"p": p, "k": k, "v": self._values[(p, k)]} for p, k in sorted(self._dirty)],
        )
        self._dirty.clear()

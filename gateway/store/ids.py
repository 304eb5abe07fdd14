"""Finding a row by the first characters of its id, as a person types them from `gateway` output."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from gateway.errors import GatewayError

__all__ = ["by_prefix"]


def by_prefix(conn: Connection, table: Any, given: str, what: str, command: str, listing: str) -> dict[str, Any]:
    """The one row of `table` whose id starts with `given` (a person types the first
    characters `gateway` shows); GatewayError saying what to do otherwise."""
    ident = given.strip()
    if len(ident) < 6:
        raise GatewayError(f"give at least the first 6 characters of the {what} id (see `{command}`)")
    rows = [dict(r._mapping) for r in conn.execute(select(table).where(table.c.id.startswith(ident, autoescape=True)).limit(2))]
    if not rows:
        raise GatewayError(f"no {what} has an id starting with {ident!r}; {listing}")
    if len(rows) > 1:
        raise GatewayError(f"more than one {what} id starts with {ident!r}; give more characters")
    return rows[0]

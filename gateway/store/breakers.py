"""Each connector's circuit breaker (`breakers` table, 0020), shared by every node of the store.

    closed ──N transient failures in a row──> open ──retry_at passed, one node takes the probe──> half_open
      ^                                        ^                                                   │
      │                                        └──────────── the probe failed (transient) ─────────┤
      └──────────────────────────── the probe reached the target ──────────────────────────────────┘

`gateway.dispatch.worker` decides when to ask; this module only reads and writes, each change
in one transaction with a ``breaker`` event (no order) in the history:

    states(store)                                   connector -> Breaker (closed when no row)
    take_probe(store, "erp", now=..., hold_seconds=...)   True for the one node that may probe
    observe(store, {"erp": [False, True]}, {"erp": (5, 60.0)}, now=...)   outcomes, oldest first

An outcome is True when the target answered (sent, or refused for a reason of its own), False
for a transient failure, None when the send never reached the target (says nothing). A row is
locked while it is changed (SELECT ... FOR UPDATE on PostgreSQL; SQLite serializes writers),
so two nodes counting failures of the same target add up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Column, Connection, Integer, Row, String, Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.store.db import Store, add_event, as_utc
from gateway.store.tables import TZ, metadata

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "Breaker", "Change", "breakers", "observe", "states", "take_probe"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

breakers = Table(
    "breakers",
    metadata,
    Column("connector", String(100), primary_key=True),
    Column("state", String(10), nullable=False),  # closed | open | half_open
    Column("failures", Integer, nullable=False),  # transient failures in a row
    Column("opened_at", TZ, nullable=True),  # when it last opened
    Column("retry_at", TZ, nullable=True),  # open: when a probe may go; half_open: when the probe's hold ends
    Column("updated_at", TZ, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Breaker:
    """One connector's breaker as stored."""

    connector: str
    state: str = CLOSED
    failures: int = 0
    opened_at: dt.datetime | None = None
    retry_at: dt.datetime | None = None

    @property
    def blocks(self) -> bool:
        """Its rows are not claimed (open, or a probe is out)."""
        return self.state != CLOSED


@dataclass(frozen=True, slots=True)
class Change:
    """A breaker that opened or closed in an `observe` call (the caller logs it)."""

    connector: str
    state: str  # the new state: open or closed
    detail: str


def states(store: Store, conn: Connection | None = None) -> dict[str, Breaker]:
    """Every stored breaker by connector (a connector without a row is closed); on `conn` if given."""
    if conn is not None:
        return {r.connector: _breaker(r) for r in conn.execute(select(breakers))}
    with store.engine.connect() as own:
        return states(store, own)


def take_probe(store: Store, connector: str, *, now: dt.datetime, hold_seconds: float) -> bool:
    """Move an open breaker whose `retry_at` passed to half_open, holding the probe for
    `hold_seconds` (a probe whose node died is taken again after that); True for the one
    caller that did (several nodes may try at once)."""
    b = breakers
    with store.begin() as conn:
        done = conn.execute(
            update(b)
            .where(b.c.connector == connector, b.c.state.in_((OPEN, HALF_OPEN)), b.c.retry_at <= now)
            .values(state=HALF_OPEN, retry_at=now + dt.timedelta(seconds=hold_seconds), updated_at=now)
        )
        return done.rowcount == 1


def observe(
    store: Store,
    outcomes: Mapping[str, Sequence[bool | None]],
    settings: Mapping[str, tuple[int, float]],
    *,
    now: dt.datetime,
) -> tuple[dict[str, Breaker], list[Change]]:
    """Count results against each connector's breaker, `settings` giving its (failures,
    open_seconds); the breakers afterwards and those that opened or closed."""
    b = breakers
    after: dict[str, Breaker] = {}
    changes: list[Change] = []
    with store.begin() as conn:
        _ensure(conn, sorted(outcomes), now)
        q = select(b).where(b.c.connector.in_(sorted(outcomes)))
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        rows = {r.connector: _breaker(r) for r in conn.execute(q)}
        for name, seen in sorted(outcomes.items()):
            before = rows[name]
            threshold, open_seconds = settings[name]
            state = before
            for ok in seen:
                state = _step(state, ok, threshold, open_seconds, now, changes)
            after[name] = state
            if state != before:
                conn.execute(
                    update(b).where(b.c.connector == name).values(
                        state=state.state, failures=state.failures, opened_at=state.opened_at, retry_at=state.retry_at, updated_at=now,
                    )
                )
        for change in changes:
            add_event(conn, "breaker", change.detail, at=now)
    return after, changes


def _step(s: Breaker, ok: bool | None, threshold: int, open_seconds: float, now: dt.datetime, changes: list[Change]) -> Breaker:
    """One result applied to a breaker."""
    reopen = now + dt.timedelta(seconds=open_seconds)
    if ok is None:  # never reached the target; a probe that said nothing is taken again at once
        return replace(s, state=OPEN, retry_at=now) if s.state == HALF_OPEN else s
    if ok:
        if s.state != CLOSED:
            changes.append(Change(s.connector, CLOSED, f"breaker of {s.connector} closed: the target answered again"))
        return replace(s, state=CLOSED, failures=0, retry_at=None) if (s.failures or s.state != CLOSED) else s
    failures = s.failures + 1
    if s.state == HALF_OPEN:
        changes.append(Change(s.connector, OPEN, f"breaker of {s.connector} opened again: the probe failed; next probe in {open_seconds:g} s"))
        return replace(s, state=OPEN, failures=failures, opened_at=now, retry_at=reopen)
    if s.state == CLOSED and failures >= threshold:
        changes.append(Change(
            s.connector, OPEN, f"breaker of {s.connector} opened after {failures} transient failures in a row; no sends for {open_seconds:g} s",
        ))
        return replace(s, state=OPEN, failures=failures, opened_at=now, retry_at=reopen)
    return replace(s, failures=failures)  # open already: a late result of a send made before it opened


def _ensure(conn: Connection, names: list[str], now: dt.datetime) -> None:
    """A closed row for each connector that has none (two nodes may insert at once)."""
    rows = [{"connector": n, "state": CLOSED, "failures": 0, "updated_at": now} for n in names]
    if not rows:
        return
    ins = pg_insert(breakers) if conn.dialect.name == "postgresql" else sqlite_insert(breakers)
    conn.execute(ins.on_conflict_do_nothing(index_elements=["connector"]), rows)


def _breaker(r: Row[Any]) -> Breaker:
    return Breaker(r.connector, r.state, r.failures, as_utc(r.opened_at), as_utc(r.retry_at))

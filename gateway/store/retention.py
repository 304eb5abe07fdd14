"""Retention: removing raw message bodies once nothing can need them again (`gateway purge`).

Only the bytes go (`message_bodies`). Everything a dispute needs stays: the message row (its
sha256 digest, size, source, name, partner, format, times, state and reason), its canonical
orders with their sources (those read again from the body are stored first: gateway.provenance) and rules' findings, every delivery with its receipt and the
documents we sent (their bodies are in the outbox, not here), and the full history. A
`body_purged` event records when and under which policy.

A body is purged only when all of these hold:

    - the message was received before the cutoff (now minus the policy's days);
    - it was read (`parsed`): a `received` message is still to be processed and a
      `quarantined` one may be reprocessed once its cause is fixed;
    - it has at least one order and every order from it is final: dispatched, shipped,
      superseded by a person's edit, a repeat (duplicate, stale) or refused by a person
      (REJECTED_BY_PERSON); nothing is held, waiting, queued or dead;
    - no outbox row for its orders, or answering it, is still pending, in flight, held or dead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import and_, delete, exists, func, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from gateway.store import tables as t
from gateway.store.db import Store, add_events
from gateway.store.orders import set_sources

__all__ = ["FINAL_ORDER_STATES", "Kept", "PurgeResult", "purge_bodies"]

FINAL_ORDER_STATES = ("dispatched", "shipped", "superseded", "duplicate", "stale")
_OPEN_DELIVERY = ("pending", "in_flight", "held", "dead")
_BATCH = 500


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What `purge_bodies` removed (or, with dry_run, would remove)."""

    cutoff: dt.datetime
    messages: int
    bytes: int
    dry_run: bool


def _purgeable(cutoff: dt.datetime) -> ColumnElement[bool]:
    m, o, ob, mb = t.messages, t.orders, t.outbox, t.message_bodies
    not_final = or_(
        o.c.state.not_in(FINAL_ORDER_STATES + ("quarantined",)),
        and_(o.c.state == "quarantined", func.coalesce(o.c.reason, "") != "REJECTED_BY_PERSON"),
    )
    open_order_delivery = exists().where(ob.c.order_id == o.c.id, ob.c.state.in_(_OPEN_DELIVERY))
    return and_(
        m.c.received_at < cutoff,
        m.c.state == "parsed",
        exists().where(mb.c.message_id == m.c.id),
        exists().where(o.c.message_id == m.c.id),
        not_(exists().where(o.c.message_id == m.c.id, or_(not_final, open_order_delivery))),
        not_(exists().where(ob.c.message_id == m.c.id, ob.c.state.in_(_OPEN_DELIVERY))),
    )


@dataclass
class Kept:
    """What to store before bodies go (gateway.provenance.keep_sources): sources by order id,
    each with the message it is from, and the messages whose bodies must stay for now."""

    sources: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    keep_bodies: set[str] = field(default_factory=set)


def purge_bodies(
    store: Store, older_than_days: int, *, dry_run: bool = False, policy: str = "", keep: Callable[[list[str]], Kept] | None = None
) -> PurgeResult:
    """Remove the raw bodies of final messages received more than `older_than_days` ago (by
    the database's clock); `dry_run` only counts them. Works in batches of 500 messages, one
    transaction each, so a large purge never holds the store for long. `keep(ids)` runs
    before each batch's transaction, outside it: what it returns is stored in the transaction
    (for messages still purgeable then) and the messages it names keep their bodies."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    m, mb = t.messages, t.message_bodies
    cutoff = store.db_now() - dt.timedelta(days=older_than_days)
    where = _purgeable(cutoff)
    if dry_run:
        with store.engine.connect() as conn:
            n, size = conn.execute(select(func.count(), func.coalesce(func.sum(m.c.size), 0)).where(where)).one()
        return PurgeResult(cutoff, int(n), int(size), True)
    total = size_total = 0
    note = f"raw body removed by retention ({policy or f'older than {older_than_days} days'}); digest, orders and history kept"
    stay: set[str] = set()  # bodies `keep` said must stay
    while True:
        with store.reading(), store.engine.connect() as conn:
            batch = [r.id for r in conn.execute(select(m.c.id).where(where, m.c.id.not_in(sorted(stay)) if stay else true()).limit(_BATCH))]
        if not batch:
            break
        kept = keep(batch) if keep is not None else Kept()
        stay |= kept.keep_bodies
        with store.begin() as conn:
            candidates = [i for i in batch if i not in kept.keep_bodies]
            rows = conn.execute(select(m.c.id, m.c.size).where(where, m.c.id.in_(candidates))).all() if candidates else []
            if not rows:
                continue
            ids = [r.id for r in rows]  # still purgeable now
            chosen = set(ids)
            set_sources(conn, {oid: values for oid, (mid, values) in kept.sources.items() if mid in chosen})
            conn.execute(delete(mb).where(mb.c.message_id.in_(ids)))
            add_events(conn, [{"kind": "body_purged", "message_id": i, "detail": note} for i in ids])
        total += len(rows)
        size_total += sum(int(r.size) for r in rows)
    return PurgeResult(cutoff, total, size_total, False)

"""Orders (one row per version of a PO) and the deliveries queued for them.

    orders(id, message_id, doc_index, order_key, version, supersedes, state, data, ...) ──< outbox

What the pipeline writes for a message, what version linking reads (gateway.versions), and
what a person's review changes. Every state written here passes
`gateway.states.move(OrderState | DeliveryState, old, new)` first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update

from gateway.states import DeliveryState, OrderState, move
from gateway.store import tables as t
from gateway.store.db import utcnow

__all__ = [
    "current_versions",
    "deliveries_of",
    "delete_refused",
    "done_indexes",
    "edited_index",
    "for_confirmation",
    "held",
    "insert_batch",
    "queue_deliveries",
    "refused_of_message",
    "release",
    "review_decision",
    "state_counts",
    "exceptions",
    "supersede",
    "reconsider",
    "set_sources",
    "without_sources",
    "waiting_for",
]

o = t.orders
_CHUNK = 500  # keys per IN (...) list


def done_indexes(conn: Connection, message_id: str) -> set[int]:
    """Positions of the message's documents already written (re-processing skips them)."""
    return set(conn.execute(select(o.c.doc_index).where(o.c.message_id == message_id)).scalars())


def state_counts(conn: Connection, message_id: str) -> dict[str, int]:
    """How many of the message's orders are in each state (counted by the database: a
    large file's states are not loaded into memory one by one)."""
    rows = conn.execute(select(o.c.state, func.count()).where(o.c.message_id == message_id).group_by(o.c.state))
    return {state: n for state, n in rows}


def insert_batch(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """New order rows, each created in its state."""
    for row in rows:
        move(OrderState, None, row["state"])
    if rows:
        conn.execute(o.insert(), rows)


def release(conn: Connection, row: dict[str, Any]) -> None:
    """A change that waited for its original, decided now (its new state, version, merged data)."""
    move(OrderState, OrderState.WAITING.value, row["state"])
    conn.execute(
        update(o)
        .where(o.c.id == row["id"])
        .values(
            state=row["state"],
            reason=row["reason"],
            error=row["error"],
            version=row["version"],
            supersedes=row["supersedes"],
            # a partial change was merged onto its order just now
            data=row["data"],
            line_count=row["line_count"],
            updated_at=utcnow(),
        )
    )


def queue_deliveries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Outbox rows (gateway.store.outbox.new_deliveries), each created in its state."""
    for row in rows:
        move(DeliveryState, None, row["state"])
    if rows:
        conn.execute(t.outbox.insert(), rows)


def waiting_for(conn: Connection, keys: list[str]) -> list[dict[str, Any]]:
    """Changes waiting for an original with one of these order keys, in arrival order."""
    return [
        dict(r._mapping)
        for r in conn.execute(
            select(o).where(o.c.order_key.in_(keys), o.c.state == OrderState.WAITING.value).order_by(o.c.created_at, o.c.doc_index)
        )
    ]


def current_versions(conn: Connection, keys: list[str], live: Iterable[str]) -> list[Any]:
    """(id, order_key, version, state, content_hash, data) of the orders with these keys in one
    of the `live` states, lowest version first (the last per key is the current one)."""
    states = list(live)
    found: list[Any] = []
    for i in range(0, len(keys), _CHUNK):
        found.extend(
            conn.execute(
                select(o.c.id, o.c.order_key, o.c.version, o.c.state, o.c.content_hash, o.c.data)
                .where(o.c.order_key.in_(keys[i : i + _CHUNK]), o.c.state.in_(states))
                .order_by(o.c.version, o.c.created_at)
            )
        )
    return found


def deliveries_of(conn: Connection, order_ids: list[str]) -> list[Any]:
    """(order_id, connector, id, receipt, part, part_of) of the outbox rows of these orders."""
    found: list[Any] = []
    ob = t.outbox
    for j in range(0, len(order_ids), _CHUNK):
        found.extend(conn.execute(select(ob.c.order_id, ob.c.connector, ob.c.id, ob.c.receipt, ob.c.part, ob.c.part_of).where(ob.c.order_id.in_(order_ids[j : j + _CHUNK]))))
    return found


def held(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Orders waiting for a person (`gateway review`), oldest first."""
    rows = conn.execute(
        select(o.c.id, o.c.created_at, o.c.partner, o.c.channel, o.c.po_number, o.c.reason, o.c.error, o.c.position)
        .where(o.c.state == OrderState.HELD.value)
        .order_by(o.c.created_at, o.c.doc_index)
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


def review_decision(conn: Connection, order_id: str, state: str, reason: str | None, error: str | None) -> None:
    """A person approved (validated) or rejected (quarantined) an order held for review."""
    move(OrderState, OrderState.HELD.value, state)
    conn.execute(
        update(o).where(o.c.id == order_id, o.c.state == OrderState.HELD.value).values(state=state, reason=reason, error=error, updated_at=utcnow())
    )


def exceptions(conn: Connection, *, limit: int, partner: str | None = None, reason: str | None = None, team: str | None = None) -> list[dict[str, Any]]:
    """Held and quarantined orders (the exception queue), oldest first, with their team and
    assignee (None until assigned); `reason` matches the start of the reason code
    (VALIDATION matches VALIDATION:quantity_not_positive)."""
    a = t.order_assignments
    query = (
        select(
            o.c.id, o.c.created_at, o.c.updated_at, o.c.state, o.c.partner, o.c.channel, o.c.po_number,
            o.c.version, o.c.reason, o.c.error, o.c.position, o.c.message_id, a.c.team, a.c.assignee,
        )
        .select_from(o.outerjoin(a, a.c.order_id == o.c.id))
        .where(o.c.state.in_([OrderState.HELD.value, OrderState.QUARANTINED.value]))
    )
    if team:
        query = query.where(a.c.team == team)
    if partner:
        query = query.where(o.c.partner == partner)
    if reason:
        query = query.where(o.c.reason.startswith(reason, autoescape=True))
    rows = conn.execute(query.order_by(o.c.created_at, o.c.doc_index).limit(limit))
    return [dict(r._mapping) for r in rows]


def edited_index(doc_index: int, version: int) -> int:
    """The `doc_index` of a person's edited version: (message_id, doc_index) stays unique and
    never equals a parser's position (>= 0), so reprocessing the message never skips or
    repeats a document because of an edit. Versions below 1,000 per document."""
    base = doc_index if doc_index >= 0 else (-doc_index - 1) // 1000
    return -(base * 1000 + version) - 1


def supersede(conn: Connection, old_id: str, old_state: str) -> None:
    """A person's edit: the order `old_id` is replaced by a new version (written next with
    `insert_batch`), and keeps its data and history. Done first, so that linking the new
    version does not take the version it replaces for another order of the same PO.
    GatewayError-free by design: the caller checked `old_state` under its lock."""
    move(OrderState, old_state, OrderState.SUPERSEDED)
    done = conn.execute(
        update(o).where(o.c.id == old_id, o.c.state == old_state).values(state=OrderState.SUPERSEDED.value, updated_at=utcnow())
    )
    if done.rowcount != 1:
        raise RuntimeError(f"order {old_id} changed while it was being edited; try again")


def reconsider(conn: Connection, order_id: str, old_state: str, state: str, reason: str | None, error: str | None) -> None:
    """A refused order checked again (`gateway release`)."""
    move(OrderState, old_state, state)
    done = conn.execute(
        update(o).where(o.c.id == order_id, o.c.state == old_state).values(state=state, reason=reason, error=error, updated_at=utcnow())
    )
    if done.rowcount != 1:
        raise RuntimeError(f"order {order_id} changed while it was being released; try again")


def refused_of_message(conn: Connection, message_id: str) -> list[tuple[str, str | None]]:
    """(id, reason) of the message's quarantined documents."""
    rows = conn.execute(select(o.c.id, o.c.reason).where(o.c.message_id == message_id, o.c.state == OrderState.QUARANTINED.value))
    return [(r.id, r.reason) for r in rows]


def delete_refused(conn: Connection, order_ids: list[str]) -> None:
    """Forget refused documents so `gateway reprocess` reads them again (their events stay)."""
    if order_ids:
        conn.execute(delete(o).where(o.c.id.in_(order_ids), o.c.state == OrderState.QUARANTINED.value))


def for_confirmation(conn: Connection, message_id: str) -> list[dict[str, Any]]:
    """(id, po_number, state, reason, error, data) of the message's orders, in document order."""
    rows = conn.execute(
        select(o.c.id, o.c.po_number, o.c.state, o.c.reason, o.c.error, o.c.data).where(o.c.message_id == message_id).order_by(o.c.doc_index)
    )
    return [dict(r) for r in rows.mappings()]


def without_sources(conn: Connection, message_ids: Iterable[str]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Messages of `message_ids` whose orders have no sources stored, each with those orders
    (gateway.provenance.keep_sources)."""
    m, o = t.messages, t.orders
    messages = {
        r["id"]: dict(r)
        for r in conn.execute(select(m.c.id, m.c.format, m.c.partner, m.c.display_name).where(m.c.id.in_(list(message_ids)))).mappings()
    }
    found: dict[str, list[dict[str, Any]]] = {}
    if messages:
        rows = conn.execute(
            select(o.c.id, o.c.message_id, o.c.doc_index, o.c.po_number, o.c.content_hash, o.c.provenance)
            .where(o.c.message_id.in_(list(messages)), o.c.content_hash.is_not(None))  # mapped orders only
            .order_by(o.c.message_id, o.c.doc_index, o.c.version)
        ).mappings()
        for r in rows:  # "none stored" is SQL NULL or JSON null by backend and age: read, not queried
            if not r["provenance"]:
                found.setdefault(r["message_id"], []).append(dict(r))
    return [(messages[mid], orders) for mid, orders in found.items()]


def set_sources(conn: Connection, sources: dict[str, dict[str, str]]) -> None:
    """Store orders' sources (order id -> dotted field path -> where the value came from)."""
    if sources:
        conn.execute(
            update(t.orders).where(t.orders.c.id == bindparam("b_id")).values(provenance=bindparam("b_sources")),
            [{"b_id": oid, "b_sources": values} for oid, values in sources.items()],
        )

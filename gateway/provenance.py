"""Where each value of an order came from (field provenance): stored, or read again.

An order mapped from X12 or EDIFACT is not stored with its sources. Its message is kept as
received, and the mapping reads a message the same way every time, so the sources are worked
out again when a person asks (`gateway show --sources`, the console's order page): the one
document is mapped again with tracing on (the others of the file are parsed, not mapped). The
re-read is checked against the order's stored content digest; when they differ (a person
edited this version, or the mapping or the partner's settings changed since) the sources are
still shown, with a note that says so.

Why not store them: for an X12 850, the sources were 150 entries and 10 KB of JSON per order,
more than the order itself, and building and writing them took a quarter of ingest's CPU time
(bench/bench_ingest.py). Orders read from e-mail text, spreadsheets, PDFs and scans keep their
sources stored: that reading is costly to repeat (OCR) and its confidences are part of them.

Before retention removes a message's body, the sources of its orders are stored after all
(:func:`keep_sources`: each message mapped again once, outside the write transaction), so an
old order keeps everything a dispute needs; a message that cannot be read again keeps its body.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.formats import detect_body
from gateway.model import content_digest

if TYPE_CHECKING:
    from gateway.store import Store
    from gateway.store.retention import Kept
    from gateway.translate import PartnerDirectory

__all__ = ["DERIVED_FORMATS", "NOTE", "Derived", "Sources", "derive", "keep_sources", "sources_of"]

log = logging.getLogger(__name__)

DERIVED_FORMATS = frozenset({"x12", "edifact"})
"""Formats whose orders' sources are read again from the kept message instead of stored."""


@dataclass(frozen=True, slots=True)
class Sources:
    """An order's sources (dotted field path -> where its value came from), and a note for a
    person when they are incomplete or not quite this version's."""

    values: dict[str, str] = field(default_factory=dict)
    note: str | None = None


def derive(
    body: bytes,
    *,
    fmt: str | None,
    partners: PartnerDirectory,
    name: str = "<input>",
    partner: str | None = None,
    message_id: str | None = None,
    only: int | None = None,
) -> dict[int, Derived]:
    """Map `body`'s documents again with tracing on (`only`: that document alone; the others
    are parsed, not mapped): by document index, each order's sources, content digest and PO
    number. Raises what translating raises (InputRejected when it cannot be read)."""
    from gateway.translate import Translated, translate

    found: dict[int, Derived] = {}
    for ev in translate(
        io.BytesIO(body), name=name, format=fmt, partner=partner, partners=partners,
        message_id=message_id, require_partner=partners.enforced, trace=True, only=only,
    ):
        if isinstance(ev, Translated):
            found[ev.index] = Derived(dict(ev.provenance), content_digest(ev.order.model_dump_json()), ev.order.po_number)
    return found


@dataclass(frozen=True, slots=True)
class Derived:
    """One document mapped again: its sources, the digest of the order it reads as, its PO."""

    values: dict[str, str]
    digest: str
    po_number: str


_EDITED = "this version differs from what its message reads as now (a person's edit, or a mapping changed since): the sources are those of the message's values"
_GONE = "no sources: the message no longer reads as this order with the current mappings"


def _judge(order: dict[str, Any], found: Derived | None) -> Sources:
    """The sources of an order row from its document mapped again (None: not found)."""
    if found is None or found.po_number != order.get("po_number"):  # another order at that index: never its sources
        return Sources(note=_GONE)
    return Sources(found.values, None if found.digest == order.get("content_hash") else _EDITED)


def sources_of(order: dict[str, Any], message: dict[str, Any], body: bytes | None, partners: PartnerDirectory) -> Sources:
    """The sources of an order row (`gateway.store.tables.orders`) read from `message` (its
    messages row) with raw `body` (None: removed by retention)."""
    stored = order.get("provenance")
    if stored:
        values = dict(stored)
        return Sources(values, values.pop(NOTE, None))
    fmt = message.get("format") or (detect_body(body) if body is not None else None)
    if body is None:
        return Sources(note="no sources: the message's raw body was removed by retention before they were kept")
    if not order.get("data") or fmt not in DERIVED_FORMATS:
        return Sources(note="no sources recorded: processing.provenance was off when it was read, or the order predates it")
    try:
        found = derive(
            body, fmt=fmt, only=order["doc_index"], partners=partners, name=message.get("display_name") or "<input>",
            partner=message.get("partner"), message_id=message.get("id"),
        )
    except Exception as exc:  # a person asked: a reason, not a traceback
        return Sources(note=f"no sources: the message could not be read again ({type(exc).__name__}: {exc})"[:500])
    return _judge(order, found.get(order["doc_index"]))


NOTE = "_note"
"""Key of a stored note beside the stored sources (what a person is told with them)."""


def keep_sources(store: Store, message_ids: list[str], partners: PartnerDirectory) -> Kept:
    """The sources retention must store before it removes the bodies of `message_ids`: each
    message is mapped again once, outside any write transaction. A message that cannot be read
    now (a mapping or configuration error) keeps its body, with a warning: its orders' sources
    would otherwise be lost. An order the message no longer yields gets a note saying so."""
    from gateway.store import messages as message_repo
    from gateway.store import orders as order_repo
    from gateway.store.retention import Kept

    kept = Kept()
    with store.reading(), store.engine.connect() as conn:
        pending = order_repo.without_sources(conn, message_ids)
    for message, orders in pending:
        mid = message["id"]
        with store.reading(), store.engine.connect() as conn:  # one body in memory at a time
            body = message_repo.read_body(conn, mid)
        fmt = message.get("format") or detect_body(body)
        if fmt not in DERIVED_FORMATS:
            continue  # stored with their orders at ingest, or never recorded
        try:
            derived = derive(body, fmt=fmt, partners=partners, name=message.get("display_name") or "<input>", partner=message.get("partner"), message_id=mid)
        except Exception as exc:
            log.warning("retention keeps the body of message %s: its orders' sources cannot be read again (%s: %s)", mid, type(exc).__name__, exc)
            kept.keep_bodies.add(mid)
            continue
        for order in orders:
            judged = _judge(order, derived.get(order["doc_index"]))
            values = dict(judged.values)
            if judged.note is not None:
                values[NOTE] = judged.note
            kept.sources[order["id"]] = (mid, values)
    return kept

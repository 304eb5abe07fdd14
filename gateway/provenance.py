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
(:func:`keep_sources`), so an old order keeps everything a dispute needs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.model import content_digest

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gateway.translate import PartnerDirectory

__all__ = ["DERIVED_FORMATS", "Sources", "derive", "keep_sources", "sources_of"]

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
    doc_index: int,
    partners: PartnerDirectory,
    name: str = "<input>",
    partner: str | None = None,
    message_id: str | None = None,
) -> tuple[dict[str, str], str] | None:
    """Map document `doc_index` of `body` again with tracing on: its sources and the content
    digest of the order it reads as; None when the message no longer yields that order."""
    from gateway.errors import InputRejected
    from gateway.translate import Translated, translate

    try:
        for ev in translate(
            io.BytesIO(body), name=name, format=fmt, partner=partner, partners=partners,
            message_id=message_id, require_partner=partners.enforced, trace=True, only=doc_index,
        ):
            if isinstance(ev, Translated) and ev.index == doc_index:
                return dict(ev.provenance), content_digest(ev.order.model_dump_json())
    except InputRejected:
        return None
    return None


def sources_of(order: dict[str, Any], message: dict[str, Any], body: bytes | None, partners: PartnerDirectory) -> Sources:
    """The sources of an order row (`gateway.store.tables.orders`) read from `message` (its
    messages row) with raw `body` (None: removed by retention)."""
    if order.get("provenance"):
        return Sources(dict(order["provenance"]))
    fmt = message.get("format") or (_detect(body) if body is not None else None)
    if body is None:
        return Sources(note="no sources: the message's raw body was removed by retention before they were kept")
    if not order.get("data") or fmt not in DERIVED_FORMATS:
        return Sources(note="no sources recorded: processing.provenance was off when it was read, or the order predates it")
    found = derive(
        body, fmt=fmt, doc_index=order["doc_index"], partners=partners, name=message.get("display_name") or "<input>",
        partner=message.get("partner"), message_id=message.get("id"),
    )
    if found is None:
        return Sources(note="no sources: the message no longer reads as this order with the current mappings")
    values, digest = found
    if digest != order.get("content_hash"):
        return Sources(values, "this version differs from what its message reads as now (a person's edit, or a mapping changed since): the sources are those of the message's values")
    return Sources(values)


def _detect(body: bytes) -> str | None:
    """The format of a message stored without one (a folder's file is recognised by content)."""
    from gateway.errors import InputRejected
    from gateway.formats import detect

    try:
        return detect(body[:4096])
    except InputRejected:
        return None


def keep_sources(conn: Connection, message_ids: list[str], partners: PartnerDirectory) -> int:
    """Store the sources of the orders of `message_ids` that have none stored, read from their
    bodies: called by retention in its transaction before it removes those bodies. Returns how
    many orders got them."""
    from gateway.store import messages as message_repo
    from gateway.store import orders as order_repo

    kept: dict[str, dict[str, str]] = {}
    for message, orders in order_repo.without_sources(conn, message_ids):
        body = message_repo.read_body(conn, message["id"])
        for order in orders:
            found = sources_of(order, message, body, partners)
            if found.values:
                kept[order["id"]] = found.values
    order_repo.set_sources(conn, kept)
    return len(kept)

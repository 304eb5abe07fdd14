"""From bytes to canonical orders: detect, parse, map. The one path `gateway translate`,
`gateway ingest` and the running service all take.

`translate()` yields, in input order:
    InterchangeOpened / InterchangeClosed   envelopes, passed through from the parser
    Translated                              a document that became an Order
    Rejected                                a document that did not, with reason and position
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from gateway.errors import InputRejected
from gateway.formats import detect, get_parser
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Envelope,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.model import Order

__all__ = ["PartnerDirectory", "Rejected", "Translated", "translate"]

SNIFF_BYTES = 4096

# (format, document type) -> "module:function"; the function maps a Document to an Order.
MAPPERS: dict[tuple[str, str], str] = {
    ("x12", "850"): "gateway.mapping.x12_850:map_850",
}

ORDER_TYPES_HINT = {"x12": "850 purchase orders"}


@dataclass(slots=True)
class Translated:
    order: Order
    index: int
    position: str
    envelope: Envelope
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Rejected:
    reason: str
    message: str
    position: str
    index: int
    envelope: Envelope | None
    doc_type: str | None = None
    control_number: str | None = None


TranslationEvent = InterchangeOpened | InterchangeClosed | Translated | Rejected


class PartnerDirectory:
    """Finds the configured trading partner for an envelope (by X12 sender id)."""

    def __init__(self, partners: list[Any] | None = None):
        self._by_id: dict[str, str] = {}
        for p in partners or []:
            for ident in p.x12_ids:
                self._by_id[ident.strip().upper()] = p.name

    def for_envelope(self, env: Envelope) -> str | None:
        sender = (env.sender_id or "").strip().upper()
        qualified = f"{(env.sender_qualifier or '').strip().upper()}:{sender}"
        return self._by_id.get(qualified) or self._by_id.get(sender)


_mappers: dict[tuple[str, str], Callable[[Document], Order]] = {}


def _mapper(fmt: str, doc_type: str) -> Callable[[Document], Order] | None:
    key = (fmt, doc_type)
    if key not in MAPPERS:
        return None
    if key not in _mappers:
        module, _, func = MAPPERS[key].partition(":")
        _mappers[key] = getattr(importlib.import_module(module), func)
    return _mappers[key]


def sniff(stream: IO[bytes]) -> str:
    """Detect the format of a seekable binary stream without consuming it."""
    pos = stream.tell()
    head = stream.read(SNIFF_BYTES)
    stream.seek(pos)
    return detect(head)


def translate(
    stream: IO[bytes],
    *,
    name: str = "<input>",
    format: str | None = None,
    partner: str | None = None,
    partners: PartnerDirectory | None = None,
    message_id: str | None = None,
) -> Iterator[TranslationEvent]:
    """Parse and map one input. Raises ParseError (an InputRejected) when it cannot be read."""
    fmt = format or sniff(stream)
    parser = get_parser(fmt)
    for ev in parser.parse(stream, name=name):
        if isinstance(ev, Document):
            yield _map(fmt, ev, partner, partners, message_id, name)
        elif isinstance(ev, DocumentRejected):
            yield Rejected(ev.reason, ev.message, ev.position, ev.index, ev.envelope, ev.doc_type, ev.control_number)
        else:
            yield ev


def _map(
    fmt: str,
    doc: Document,
    partner: str | None,
    partners: PartnerDirectory | None,
    message_id: str | None,
    name: str,
) -> Translated | Rejected:
    mapper = _mapper(fmt, doc.doc_type)
    if mapper is None:
        return Rejected(
            "NOT_AN_ORDER",
            f"{fmt.upper()} {doc.doc_type} is not an order document; the gateway takes {ORDER_TYPES_HINT.get(fmt, 'orders')}",
            doc.position,
            doc.index,
            doc.envelope,
            doc.doc_type,
            doc.control_number,
        )
    try:
        order = mapper(doc)
    except InputRejected as exc:
        return Rejected(
            exc.reason, exc.message, exc.position or doc.position, doc.index, doc.envelope, doc.doc_type, doc.control_number
        )
    order.partner = partner or order.partner or (partners.for_envelope(doc.envelope) if partners else None)
    order.source.message_id = message_id
    order.source.file_name = name if name != "<input>" else order.source.file_name
    return Translated(order, doc.index, doc.position, doc.envelope, list(doc.warnings))

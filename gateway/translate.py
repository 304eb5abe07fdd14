"""From bytes to canonical orders: detect, parse, map. The one path `gateway translate`,
`gateway mapping test`, `gateway ingest` and the running service all take.

`translate()` yields, in input order:
    InterchangeOpened / InterchangeClosed   envelopes, passed through from the parser
    Translated                              a document that became an Order
    Rejected                                a document that did not, with reason and position

Each mapping is a function `map(doc, tables=None, trace=None) -> Order`, with code tables
loaded from `mappings/<format>/...` and optionally overridden per partner by
`mappings/<partner>/<format>_<document>.yaml`. When `trace` is a dict the mapper records,
for each field it sets, where in the input the value came from (field provenance).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
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
from gateway.partners import PartnerDirectory

__all__ = ["MAPPERS", "MapperSpec", "PartnerDirectory", "Rejected", "Translated", "translate"]

SNIFF_BYTES = 4096
CONTAINERS = {"email"}


@dataclass(frozen=True)
class MapperSpec:
    function: str  # "module:function" taking (doc, tables=None, trace=None)
    name: str  # the mapping's name: a partner overrides its tables in mappings/<partner>/<name>.yaml
    tables: str | None = None  # "module:loader" taking (overrides=[...]) -> tables


# (format, document type) -> mapping. Imported only when used.
MAPPERS: dict[tuple[str, str], MapperSpec] = {
    ("x12", "850"): MapperSpec("gateway.mapping.x12_850:map_850", "x12_850", "gateway.mapping.x12_850:load_x12_tables"),
    ("x12", "860"): MapperSpec("gateway.mapping.x12_860:map_860", "x12_860", "gateway.mapping.x12_860:load_x12_860_tables"),
    ("edifact", "ORDERS"): MapperSpec(
        "gateway.mapping.edifact_orders:map_orders", "edifact_orders", "gateway.mapping.edifact_orders:load_edifact_tables"
    ),
    ("edifact", "ORDCHG"): MapperSpec(
        "gateway.mapping.edifact_ordchg:map_ordchg", "edifact_ordchg", "gateway.mapping.edifact_ordchg:load_ordchg_tables"
    ),
    ("shopify", "order"): MapperSpec("gateway.mapping.jsonmap:map_shopify", "shopify", "gateway.mapping.jsonmap:load_shopify_mapping"),
    ("woocommerce", "order"): MapperSpec(
        "gateway.mapping.jsonmap:map_woocommerce", "woocommerce", "gateway.mapping.jsonmap:load_woocommerce_mapping"
    ),
    ("web_form", "form"): MapperSpec("gateway.mapping.webform:map_web_form", "web_form", None),
    ("cxml", "OrderRequest"): MapperSpec(
        "gateway.mapping.cxml_order:map_order_request", "cxml_order", "gateway.mapping.cxml_order:load_cxml_tables"
    ),
    ("ubl", "Order"): MapperSpec("gateway.mapping.ubl_order:map_ubl_order", "ubl_order", "gateway.mapping.ubl_order:load_ubl_tables"),
    ("ubl", "OrderChange"): MapperSpec(
        "gateway.mapping.ubl_order:map_ubl_order", "ubl_order", "gateway.mapping.ubl_order:load_ubl_tables"
    ),
    ("ubl", "OrderCancellation"): MapperSpec(
        "gateway.mapping.ubl_order:map_ubl_order", "ubl_order", "gateway.mapping.ubl_order:load_ubl_tables"
    ),
}

ORDER_TYPES_HINT = {
    "x12": "850 purchase orders and 860 change requests",
    "edifact": "ORDERS and ORDCHG messages",
    "cxml": "OrderRequest documents",
    "ubl": "Order, OrderChange and OrderCancellation documents",
    "shopify": "orders",
    "web_form": "form submissions",
    "woocommerce": "orders",
}


@dataclass(slots=True)
class Translated:
    order: Order
    index: int
    position: str
    envelope: Envelope
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)
    doc_type: str | None = None
    control_number: str | None = None


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


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@functools.cache
def _mapper(fmt: str, doc_type: str) -> tuple[MapperSpec, Callable[..., Order], bool] | None:
    spec = MAPPERS.get((fmt, doc_type))
    if spec is None:
        return None
    fn = _load(spec.function)
    return spec, fn, "trace" in inspect.signature(fn).parameters


@functools.cache
def _tables(spec: MapperSpec, override: Path | None) -> Any:
    """The code tables with one partner's overrides applied (None: the mapper's defaults)."""
    if spec.tables is None or override is None:
        return None
    return _load(spec.tables)(overrides=[override])


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
    require_partner: bool = False,
    trace: bool = False,
) -> Iterator[TranslationEvent]:
    """Parse and map one input. Raises ParseError (an InputRejected) when it cannot be read.

    `partner` forces the partner (a folder dedicated to one partner, `--partner`); otherwise
    it is looked up from each envelope's sender. With `require_partner`, a document from a
    sender no partner claims is rejected (UNKNOWN_PARTNER) instead of mapped.
    """
    fmt = format or sniff(stream)
    parser = get_parser(fmt)
    directory = partners or PartnerDirectory()
    for ev in parser.parse(stream, name=name):
        if isinstance(ev, Document):
            yield _map(fmt, ev, partner, directory, message_id, name, require_partner, trace)
        elif isinstance(ev, DocumentRejected):
            yield Rejected(ev.reason, ev.message, ev.position, ev.index, ev.envelope, ev.doc_type, ev.control_number)
        else:
            yield ev


def _map(
    fmt: str,
    doc: Document,
    partner: str | None,
    partners: PartnerDirectory,
    message_id: str | None,
    name: str,
    require_partner: bool,
    trace: bool,
) -> Translated | Rejected:
    def reject(reason: str, message: str, position: str | None = None) -> Rejected:
        return Rejected(reason, message, position or doc.position, doc.index, doc.envelope, doc.doc_type, doc.control_number)

    # A container (an e-mail) hands on its attachments' documents: map them by their own standard.
    if fmt in CONTAINERS:
        fmt = doc.envelope.standard
    found = _mapper(fmt, doc.doc_type)
    if found is None:
        return reject(
            "NOT_AN_ORDER",
            f"{fmt.upper()} {doc.doc_type} is not an order document; the gateway takes {ORDER_TYPES_HINT.get(fmt, 'orders')}",
        )
    who = partner or partners.for_envelope(doc.envelope)
    if who is None and require_partner:
        return reject(
            "UNKNOWN_PARTNER",
            f"{PartnerDirectory.describe(doc.envelope)} is not a configured trading partner; "
            "add its id to a partner in the configuration if it is one",
        )
    spec, mapper, traces = found
    pmap = partners.mapping(who)
    tables = _tables(spec, pmap.table_override(spec.name) if pmap else None)
    provenance: dict[str, str] | None = {} if trace else None
    try:
        order = mapper(doc, tables, trace=provenance) if traces else mapper(doc, tables)
        if pmap is not None and pmap.apply(order, provenance):
            order = Order.model_validate(order.model_dump())  # partner values are checked like any other
    except InputRejected as exc:
        return reject(exc.reason, exc.message, exc.position)
    except ValueError as exc:  # a partner default that is not a valid value for its field
        return reject("PARTNER_MAPPING", f"the partner mapping for {who} produced an invalid order: {exc}")
    order.partner = who or order.partner
    order.source.message_id = message_id
    if name != "<input>":
        order.source.file_name = name
    if provenance is not None:
        if who:
            provenance["partner"] = "--partner / the source's partner" if partner else f"partner directory: {PartnerDirectory.describe(doc.envelope)}"
        if name != "<input>":
            provenance["source.file_name"] = "the received file's name"
    return Translated(order, doc.index, doc.position, doc.envelope, list(doc.warnings), provenance or {}, doc.doc_type, doc.control_number)

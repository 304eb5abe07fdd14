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

from gateway.acks.inbound import ACK_TYPES, InboundAck, read_ack
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
    # Fields a person must check before the order may go on (an extraction below the
    # partner's confidence threshold); empty for EDI, XML and cart orders.
    review: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Rejected:
    reason: str
    message: str
    position: str
    index: int
    envelope: Envelope | None
    doc_type: str | None = None
    control_number: str | None = None
    # A partner's acknowledgement of what we sent (reason ACKNOWLEDGEMENT): not an order, read
    # into its verdicts for processing to match to our outbox documents (gateway.acks.inbound).
    ack: InboundAck | None = None


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
    only: int | None = None,
) -> Iterator[TranslationEvent]:
    """Parse and map one input. Raises ParseError (an InputRejected) when it cannot be read.

    `only`: map the document of that index alone (the others are parsed, not mapped, and yield
    nothing): to read one order's sources again (gateway.provenance).

    `partner` forces the partner (a folder dedicated to one partner, `--partner`); otherwise
    it is looked up from each envelope's sender. With `require_partner`, a document from a
    sender no partner claims is rejected (UNKNOWN_PARTNER) instead of mapped.
    """
    fmt = format or sniff(stream)
    directory = partners or PartnerDirectory()
    if fmt == "x12":  # the envelope repairs that guess are per partner profile (reliability E1, E9)
        from gateway.formats.x12 import X12Parser

        parser: Any = X12Parser(lenient=directory.x12_lenient(partner))
    elif fmt == "email":  # and for X12 attachments
        from gateway.formats.email import EmailParser

        parser = EmailParser(x12_lenient=directory.x12_lenient(partner))
    else:
        parser = get_parser(fmt)
    mail_id = _mail_id(stream) if fmt == "email" else None
    for ev in parser.parse(stream, name=name):
        if only is not None and isinstance(ev, (Document, DocumentRejected)) and ev.index != only:
            continue
        if isinstance(ev, Document):
            for out in _map(fmt, ev, partner, directory, message_id, name, require_partner, trace):
                if mail_id and isinstance(out, Translated):
                    out.order.source.mail_id = mail_id
                yield out
        elif isinstance(ev, DocumentRejected):
            yield Rejected(ev.reason, ev.message, ev.position, ev.index, ev.envelope, ev.doc_type, ev.control_number)
        else:
            yield ev


def _mail_id(stream: IO[bytes]) -> str | None:
    """The Message-ID of an e-mail, read from its header without consuming the stream."""
    from email import policy
    from email.parser import BytesHeaderParser

    from gateway.formats.email import MAX_MESSAGE, mail_headers
    from gateway.formats.outlook import OLE_MAGIC

    if not stream.seekable():
        return None
    pos = stream.tell()
    head = stream.read(65536)
    if head.startswith(OLE_MAGIC):  # an Outlook .msg keeps its headers anywhere in the file
        head += stream.read(MAX_MESSAGE)
    stream.seek(pos)
    end = head.find(b"\r\n\r\n")
    end = head.find(b"\n\n") if end < 0 else end
    try:
        if head.startswith(OLE_MAGIC):
            value = mail_headers(head).get("Message-ID")
        else:
            value = BytesHeaderParser(policy=policy.default).parsebytes(head[: end if end >= 0 else len(head)]).get("Message-ID")
    except Exception:  # a header the library cannot parse: the orders simply carry no mail id
        return None
    text = " ".join(str(value or "").split())
    return text[:250] or None


def _map(
    fmt: str,
    doc: Document,
    partner: str | None,
    partners: PartnerDirectory,
    message_id: str | None,
    name: str,
    require_partner: bool,
    trace: bool,
) -> Iterator[Translated | Rejected]:
    def reject(reason: str, message: str, position: str | None = None) -> Rejected:
        return Rejected(reason, message, position or doc.position, doc.index, doc.envelope, doc.doc_type, doc.control_number)

    # A container (an e-mail) hands on its attachments' documents: map them by their own standard.
    if fmt in CONTAINERS:
        fmt = doc.envelope.standard
        if fmt == "email":  # a CSV, XLSX, PDF or body text: only a partner's template reads it
            yield from _extract(doc, partner, partners, message_id, name, trace)
            return
    found = _mapper(fmt, doc.doc_type)
    if found is None and (fmt, doc.doc_type) in ACK_TYPES:
        try:
            ack = read_ack(fmt, doc.doc_type, doc.control_number, doc.body)
        except InputRejected as exc:
            yield reject(exc.reason, exc.message, exc.position)
            return
        out = reject("ACKNOWLEDGEMENT", f"a partner's acknowledgement ({ack.summary()}), not an order: received by the gateway, it is recorded on the documents it answers")
        out.ack = ack
        yield out
        return
    if found is None:
        yield reject(
            "NOT_AN_ORDER",
            f"{fmt.upper()} {doc.doc_type} is not an order document; the gateway takes {ORDER_TYPES_HINT.get(fmt, 'orders')}",
        )
        return
    who = partner or partners.for_envelope(doc.envelope)
    if who is None and require_partner:
        yield reject(
            "UNKNOWN_PARTNER",
            f"{PartnerDirectory.describe(doc.envelope)} is not a configured trading partner; "
            "add its id to a partner in the configuration if it is one",
        )
        return
    spec, mapper, traces = found
    pmap = partners.mapping(who)
    tables = _tables(spec, pmap.table_override(spec.name) if pmap else None)
    provenance: dict[str, str] | None = {} if trace else None
    try:
        order = mapper(doc, tables, trace=provenance) if traces else mapper(doc, tables)
        if pmap is not None and pmap.apply(order, provenance):
            order = Order.model_validate(order.model_dump())  # partner values are checked like any other
    except InputRejected as exc:
        yield reject(exc.reason, exc.message, exc.position)
        return
    except ValueError as exc:  # a partner default that is not a valid value for its field
        yield reject("PARTNER_MAPPING", f"the partner mapping for {who} produced an invalid order: {exc}")
        return
    order.partner = who or order.partner
    order.source.message_id = message_id
    if name != "<input>":
        order.source.file_name = name
    if provenance is not None:
        if who:
            provenance["partner"] = "--partner / the source's partner" if partner else f"partner directory: {PartnerDirectory.describe(doc.envelope)}"
        if name != "<input>":
            provenance["source.file_name"] = "the received file's name"
    yield Translated(order, doc.index, doc.position, doc.envelope, list(doc.warnings), provenance or {}, doc.doc_type, doc.control_number)


_EXTRACTED_CHANNELS = {"csv": "csv", "xlsx": "xlsx", "pdf": "pdf", "body": "email"}
_TEMPLATE_SECTION = {"csv": "table", "xlsx": "table", "pdf": "text", "body": "text"}
# One table may hold several orders; they share the attachment's document and are told
# apart by this stride, so re-processing after a crash still recognises each one.
_SUB_ORDER_STRIDE = 1_000_000


def _extract(
    doc: Document,
    partner: str | None,
    partners: PartnerDirectory,
    message_id: str | None,
    name: str,
    trace: bool,
) -> Iterator[Translated | Rejected]:
    """Orders from a CSV/XLSX/PDF attachment or a body text, read with the partner's template."""
    from gateway.extract.base import Extraction
    from gateway.model import Channel

    kind = doc.doc_type
    label = str(doc.body.get("label", kind))
    what = "the message body" if kind == "body" else f"the {kind.upper()} attachment {label}"

    def reject(reason: str, message: str, position: str | None = None) -> Rejected:
        return Rejected(reason, message, position or doc.position, doc.index, doc.envelope, kind, None)

    who = partner or partners.for_envelope(doc.envelope)
    if who is None:
        yield reject(
            "NEEDS_PARTNER",
            f"{what} can only be read with a trading partner's template, and the sender "
            f"{doc.envelope.sender_id or '(unknown)'} is not a configured partner's address "
            "(list it in the partner's email_senders, or use --partner)",
        )
        return
    pmap = partners.mapping(who)
    if pmap is None:
        yield reject("UNKNOWN_PARTNER", f"{what} was not read: {who} is not a configured trading partner (partners: in the configuration)")
        return
    template = pmap.email_template
    section = _TEMPLATE_SECTION[kind]
    if template is None or getattr(template, section) is None:
        yield reject(
            "NO_TEMPLATE",
            f"{what} was not read: partner {who} has no `{section}:` section in mappings/{who}/email.yaml "
            f"(it tells the gateway which {'columns' if section == 'table' else 'labels and line pattern'} hold the order)",
        )
        return
    try:
        extractions: list[Extraction]
        if kind == "csv":
            from gateway.extract.table import extract_table

            extractions = extract_table(doc.body["data"], "csv", label, template)
        elif kind == "xlsx":  # openpyxl and pdfium run in a child process with limits
            from gateway.extract.isolate import isolated_xlsx_table

            extractions = isolated_xlsx_table(doc.body["data"], label, template)
        elif kind == "pdf":
            from gateway.extract.isolate import isolated_pdf_text
            from gateway.extract.text import extract_text

            pages = isolated_pdf_text(doc.body["data"], label)
            extractions = [extract_text(pages, f"attachment {label}", template, Channel.PDF)]
        else:
            from gateway.extract.text import extract_text

            extractions = [extract_text([doc.body["text"]], "message body", template, Channel.EMAIL)]
    except InputRejected as exc:
        yield reject(exc.reason, f"{what}: {exc.message}", exc.position)
        return
    for k, ex in enumerate(extractions):
        order = ex.order
        provenance = dict(ex.provenance)
        for path, confidence in ex.confidence.items():
            if confidence < 1.0 and path in provenance:
                provenance[path] = f"{provenance[path]} (confidence {confidence:.2f})"
        try:
            if pmap is not None and pmap.apply(order, provenance):
                order = Order.model_validate(order.model_dump())
        except ValueError as exc:
            yield reject("PARTNER_MAPPING", f"the partner mapping for {who} produced an invalid order: {exc}")
            continue
        order.partner = who
        order.channel = Channel(_EXTRACTED_CHANNELS[kind])
        order.source.message_id = message_id
        order.source.file_name = label if kind != "body" else (name if name != "<input>" else None)
        order.source.sender_id = doc.envelope.sender_id
        provenance["partner"] = "the verified e-mail sender, the source's partner or --partner" if partner else f"the verified sender {doc.envelope.sender_id}"
        yield Translated(
            order,
            doc.index + k * _SUB_ORDER_STRIDE,
            doc.position,
            doc.envelope,
            [*doc.warnings, *ex.warnings],
            provenance if trace else {},
            kind,
            None,
            review=ex.weak(template.min_confidence),
        )

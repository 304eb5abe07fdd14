"""Ship notices: the X12 856 and the EDIFACT DESADV (D96A) for a shipment of an order.

    build_856(order, shipment, control_numbers=..., partner="acme")     ISA, GS*SH, one 856, IEA
    build_desadv(order, shipment, control_numbers=..., partner="acme")  UNB, one DESADV, UNZ

Each is its own interchange addressed as the 855/ORDRSP is (the inbound sender and receiver
swapped, `gateway.acks.x12` / `edifact`), GS08 following the order's inbound version (004010
or 005010), control numbers from the partner's counters. The 856 is the usual
shipment / order / item hierarchy:

    BSN*00*<shipment id>*<date>*<time>*0001
    HL*1**S   TD5 (carrier, service), REF*CN per tracking number, DTM*011 ship date, N1*ST
    HL*2*1*O  PRF (the PO number and date)
    HL*n*2*I  LIN (the line's item ids) + SN1 (quantity shipped, unit), one per shipped line
    CTT*<HL count>

The DESADV: BGM+351, DTM+137/11, RFF+ON and RFF+CN (tracking), NAD+BY/DP, TDT+20 (carrier),
CPS+1, then LIN / PIA / QTY+12 per shipped line, CNT+2.

`shipped_lines` pairs a shipment's SKU=QTY lines with the order's lines (by SKU, buyer part
number, GTIN or any item id); no lines means every line shipped in full.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.acks.edifact import (
    EdifactHeader,
    EdifactWriter,
    edifact_begin,
    edifact_number,
    edifact_order_envelope,
    edifact_party,
)
from gateway.acks.model import (
    GROUP,
    INTERCHANGE,
    AckValueError,
    ControlNumbers,
    X12Separators,
    partner_key,
)
from gateway.acks.x12 import X12Writer, x12_number, x12_order_envelope, x12_writer
from gateway.model import Order, OrderLine, Party

__all__ = [
    "Shipment", "ShippedLine", "build_856", "build_desadv", "edifact_begin_order", "edifact_end", "edifact_item",
    "find_line", "gs08_of", "shipped_lines", "x12_begin", "x12_end", "x12_item_ids", "x12_party",
]


@dataclass(frozen=True, slots=True)
class ShippedLine:
    """One item of a shipment or invoice: `sku` names an order line (its SKU, buyer part
    number, GTIN or any item id), `quantity` how many of its unit."""

    sku: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Shipment:
    """What a carrier or ERP reports about one shipment of an order."""

    carrier: str  # the carrier's code or name (SCAC: UPSN, FDEG; or UPS, FedEx)
    tracking: tuple[str, ...] = ()  # tracking numbers (one per package)
    service: str | None = None  # service level (GROUND, 2DAY, ...)
    lines: tuple[ShippedLine, ...] = ()  # empty: every line of the order, in full
    ship_date: dt.date | None = None  # default: today
    shipment_id: str | None = field(default=None)  # BSN02 / BGM 1004; default: the first tracking number


def find_line(order: Order, sku: str) -> tuple[int, OrderLine]:
    """The (position, line) of `order` that `sku` names; AckValueError when none does."""
    for i, line in enumerate(order.lines):
        ids = {line.sku, line.buyer_part_number, line.gtin, line.line_number, *(x.value for x in line.item_ids)}
        if sku in ids:
            return i, line
    raise AckValueError(f"PO {order.po_number} has no line with item {sku!r}")


def shipped_lines(order: Order, lines: Sequence[ShippedLine]) -> list[tuple[int, OrderLine, Decimal]]:
    """(position, order line, quantity) for each line given, or every line in full."""
    if not lines:
        return [(i, line, line.quantity) for i, line in enumerate(order.lines)]
    out = []
    for s in lines:
        if not s.quantity.is_finite() or s.quantity <= 0:
            raise AckValueError(f"the quantity of {s.sku} must be a positive number, got {s.quantity}")
        i, line = find_line(order, s.sku)
        out.append((i, line, s.quantity))
    return out


def gs08_of(order: Order) -> str:
    """GS08 of a document answering `order`: 005010 if it came in 5010, else 004010."""
    return "005010" if (order.source.version or "").startswith("005") else "004010"


def x12_begin(
    order: Order, functional_id: str, doc_type: str, *, control_numbers: ControlNumbers, partner: str | None, now: dt.datetime,
    separators: X12Separators | None = None,
) -> tuple[X12Writer, int]:
    """ISA, GS and ST of a document answering `order` (shared by the 856 and the 810), with the
    inbound interchange's `separators` (default ``*`` ``:`` ``~``); returns the writer and ISA13."""
    env = x12_order_envelope(order)
    w, isa_version = x12_writer(gs08_of(order), separators)
    key = partner or partner_key(env)
    control = control_numbers.next(key, INTERCHANGE)
    w.isa(env, control=control, now=now, version=isa_version)
    w.gs(
        functional_id, (env.receiver_id or "").strip(), (env.sender_id or "").strip(),
        control=control_numbers.next(key, GROUP), now=now, version=gs08_of(order),
    )
    w.st(doc_type)
    return w, control


def x12_end(w: X12Writer, control: int) -> str:
    w.se()
    w.ge()
    w.iea(control)
    return w.text()


def x12_item_ids(line: OrderLine) -> list[str | None]:
    """LIN/IT1 product id pairs of a line: its ids as the buyer sent them, else SKU / GTIN."""
    ids: list[str | None] = []
    for item in line.item_ids[:10]:
        ids += [item.qualifier, item.value]
    if not ids:
        for qualifier, value in (("VP", line.sku), ("BP", line.buyer_part_number), ("UP", line.gtin)):
            if value:
                ids += [qualifier, value]
    return ids


def x12_party(w: X12Writer, code: str, party: Party | None) -> None:
    if party is None:
        return
    if party.code and party.code_qualifier:
        w.seg("N1", code, party.name, party.code_qualifier, party.code)
    elif party.name:
        w.seg("N1", code, party.name)


def build_856(
    order: Order, shipment: Shipment, *, control_numbers: ControlNumbers, partner: str | None = None, now: dt.datetime | None = None,
    separators: X12Separators | None = None,
) -> str:
    """An 856 ship notice for `shipment` of `order`, in its own interchange (`separators`: the
    inbound interchange's, `read_isa`)."""
    now = now or dt.datetime.now(dt.UTC)
    items = shipped_lines(order, shipment.lines)
    w, control = x12_begin(order, "SH", "856", control_numbers=control_numbers, partner=partner, now=now, separators=separators)
    shipped = shipment.ship_date or now.date()
    ident = shipment.shipment_id or (shipment.tracking[0] if shipment.tracking else f"{order.po_number}-{now:%Y%m%d}")
    w.seg("BSN", "00", ident, f"{now:%Y%m%d}", f"{now:%H%M}", "0001")
    w.seg("HL", "1", None, "S")
    w.seg("TD5", "B", "2", shipment.carrier, None, shipment.service)
    for number in shipment.tracking:
        w.seg("REF", "CN", number)
    w.seg("DTM", "011", f"{shipped:%Y%m%d}")
    x12_party(w, "ST", order.ship_to)
    w.seg("HL", "2", "1", "O")
    w.seg("PRF", order.po_number, None, None, f"{order.order_date:%Y%m%d}" if order.order_date else None)
    hl = 2
    for _, line, quantity in items:
        hl += 1
        w.seg("HL", str(hl), "2", "I")
        w.seg("LIN", line.line_number, *x12_item_ids(line))
        w.seg("SN1", None, x12_number(quantity), line.uom or "EA")
    w.seg("CTT", str(hl))
    return x12_end(w, control)


def edifact_begin_order(
    order: Order, message: str, *, control_numbers: ControlNumbers, partner: str | None, now: dt.datetime, header: EdifactHeader | None = None,
) -> tuple[EdifactWriter, str, bool]:
    """UNB and UNH (D96A) of a message answering `order` (shared by DESADV and INVOIC), in the
    syntax and separators of the inbound `header`; returns the writer, UNB 0020 and whether a
    UNA is written."""
    env = edifact_order_envelope(order)
    w, reference, una = edifact_begin(env, control_numbers.next(partner or partner_key(env), INTERCHANGE), now, header)
    w.unh("1", (message, "D", "96A", "UN"))
    return w, reference, una


def edifact_end(w: EdifactWriter, reference: str, una: bool) -> str:
    w.unt()
    w.seg("UNZ", "1", reference)
    return w.text(una)


def edifact_item(w: EdifactWriter, index: int, line: OrderLine) -> None:
    """LIN (GTIN) and PIA (SKU, buyer part number) of an order line."""
    w.seg("LIN", line.line_number or str(index), None, (line.gtin, "EN") if line.gtin else None)
    ids = [(v, t) for v, t in ((line.sku, "SA"), (line.buyer_part_number, "IN")) if v]
    if ids:
        w.seg("PIA", "1", *ids)


def build_desadv(
    order: Order, shipment: Shipment, *, control_numbers: ControlNumbers, partner: str | None = None, now: dt.datetime | None = None,
    header: EdifactHeader | None = None,
) -> str:
    """A DESADV despatch advice (D96A) for `shipment` of `order`, in its own interchange
    (`header`: the inbound interchange's syntax and separators, `read_edifact_header`)."""
    now = now or dt.datetime.now(dt.UTC)
    items = shipped_lines(order, shipment.lines)
    w, reference, una = edifact_begin_order(order, "DESADV", control_numbers=control_numbers, partner=partner, now=now, header=header)
    ident = shipment.shipment_id or (shipment.tracking[0] if shipment.tracking else f"{order.po_number}-{now:%Y%m%d}")
    w.seg("BGM", "351", ident, "9")
    w.seg("DTM", ("137", f"{now:%Y%m%d}", "102"))
    w.seg("DTM", ("11", f"{shipment.ship_date or now.date():%Y%m%d}", "102"))
    w.seg("RFF", ("ON", order.po_number))
    for number in shipment.tracking:
        w.seg("RFF", ("CN", number))
    for role, party in (("BY", order.buyer), ("DP", order.ship_to)):
        if party is not None:
            edifact_party(w, role, party, order)
    w.seg("TDT", "20", None, None, None, (shipment.carrier, None, None, shipment.service))
    w.seg("CPS", "1")
    for index, (_, line, quantity) in enumerate(items, 1):
        edifact_item(w, index, line)
        w.seg("QTY", ("12", edifact_number(quantity, w.sep.decimal), line.uom))
    w.seg("CNT", ("2", str(len(items))))
    return edifact_end(w, reference, una)

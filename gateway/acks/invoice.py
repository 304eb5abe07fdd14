"""Invoices: the X12 810 and the EDIFACT INVOIC (D96A) for an order.

    build_810(order, invoice, control_numbers=..., partner="acme")      ISA, GS*IN, one 810, IEA
    build_invoic(order, invoice, control_numbers=..., partner="acme")   UNB, one INVOIC, UNZ

Addressed and numbered as the ship notices are (`gateway.acks.ship_notice`). The 810:

    BIG*<invoice date>*<invoice number>*<PO date>*<PO number>
    CUR*SE*<currency>, N1*BT / N1*ST
    IT1*<line>*<quantity>*<unit>*<unit price>**<item ids> per invoiced line
    TDS*<total in cents> (N2: two implied decimals), TXI*TX*<tax>, SAC*C*G830 freight
    CTT*<lines>

The INVOIC: BGM+380, DTM+137, RFF+ON, NAD+BY/SU, CUX, LIN / PIA / QTY+47 / MOA+203 / PRI+AAA
per line, UNS+S, CNT+2, MOA+79 (lines), MOA+124 (tax), MOA+64 (freight), MOA+77 (total).

The invoiced lines are the invoice's own, else the order's lines in full; a line without a
price counts 0. The total defaults to lines + tax + freight.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from gateway.acks.edifact import EdifactHeader, edifact_number, edifact_party
from gateway.acks.model import AckValueError, ControlNumbers, X12Separators
from gateway.acks.ship_notice import (
    ShippedLine,
    edifact_begin_order,
    edifact_end,
    edifact_item,
    shipped_lines,
    x12_begin,
    x12_end,
    x12_item_ids,
    x12_party,
)
from gateway.acks.x12 import x12_number
from gateway.model import Order, OrderLine

__all__ = ["Invoice", "build_810", "build_invoic", "invoice_lines", "invoice_total"]


@dataclass(frozen=True, slots=True)
class Invoice:
    """What the ERP reports about one invoice of an order."""

    number: str  # the invoice number (BIG02, BGM 1004)
    date: dt.date | None = None  # default: today
    lines: tuple[ShippedLine, ...] = ()  # empty: every line of the order, in full
    tax: Decimal | None = None
    freight: Decimal | None = None
    total: Decimal | None = None  # default: lines + tax + freight
    currency: str | None = None  # default: the order's


def invoice_lines(order: Order, invoice: Invoice) -> list[tuple[int, OrderLine, Decimal, Decimal]]:
    """(position, line, quantity, amount) of each invoiced line."""
    return [(i, line, q, (line.unit_price or Decimal(0)) * q) for i, line, q in shipped_lines(order, invoice.lines)]


def invoice_total(order: Order, invoice: Invoice) -> Decimal:
    """The invoice's total: as given, else the lines plus tax and freight."""
    if invoice.total is not None:
        return invoice.total
    lines = sum((amount for *_, amount in invoice_lines(order, invoice)), Decimal(0))
    return lines + (invoice.tax or Decimal(0)) + (invoice.freight or Decimal(0))


def _cents(value: Decimal) -> str:
    """An N2 value (two implied decimals): 12.5 -> 1250."""
    if not value.is_finite():
        raise AckValueError(f"{value} is not an amount that can be written")
    return str(int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def build_810(
    order: Order, invoice: Invoice, *, control_numbers: ControlNumbers, partner: str | None = None, now: dt.datetime | None = None,
    separators: X12Separators | None = None,
) -> str:
    """An 810 invoice for `order`, in its own interchange (`separators`: the inbound one's)."""
    now = now or dt.datetime.now(dt.UTC)
    lines = invoice_lines(order, invoice)
    w, control = x12_begin(order, "IN", "810", control_numbers=control_numbers, partner=partner, now=now, separators=separators)
    day = invoice.date or now.date()
    po_date = f"{order.order_date:%Y%m%d}" if order.order_date else None
    w.seg("BIG", f"{day:%Y%m%d}", invoice.number, po_date, order.po_number)
    currency = invoice.currency or order.currency
    if currency:
        w.seg("CUR", "SE", currency)
    x12_party(w, "BT", order.bill_to or order.buyer)
    x12_party(w, "ST", order.ship_to)
    for index, (_, line, quantity, _amount) in enumerate(lines, 1):
        price = x12_number(line.unit_price) if line.unit_price is not None else "0"
        w.seg("IT1", line.line_number or str(index), x12_number(quantity), line.uom or "EA", price, None, *x12_item_ids(line))
    w.seg("TDS", _cents(invoice_total(order, invoice)))
    if invoice.tax is not None:
        w.seg("TXI", "TX", x12_number(invoice.tax))
    if invoice.freight is not None:
        w.seg("SAC", "C", "G830", None, None, _cents(invoice.freight))
    w.seg("CTT", str(len(lines)))
    return x12_end(w, control)


def build_invoic(
    order: Order, invoice: Invoice, *, control_numbers: ControlNumbers, partner: str | None = None, now: dt.datetime | None = None,
    header: EdifactHeader | None = None,
) -> str:
    """An INVOIC invoice (D96A) for `order`, in its own interchange (`header`: the inbound
    interchange's syntax and separators)."""
    now = now or dt.datetime.now(dt.UTC)
    lines = invoice_lines(order, invoice)
    w, reference, una = edifact_begin_order(order, "INVOIC", control_numbers=control_numbers, partner=partner, now=now, header=header)
    w.seg("BGM", "380", invoice.number, "9")
    w.seg("DTM", ("137", f"{invoice.date or now.date():%Y%m%d}", "102"))
    w.seg("RFF", ("ON", order.po_number))
    for role, party in (("BY", order.buyer), ("SU", order.seller)):
        if party is not None:
            edifact_party(w, role, party, order)
    currency = invoice.currency or order.currency
    if currency:
        w.seg("CUX", ("2", currency, "4"))

    def n(value: Decimal) -> str:
        return edifact_number(value, w.sep.decimal)

    for index, (_, line, quantity, amount) in enumerate(lines, 1):
        edifact_item(w, index, line)
        w.seg("QTY", ("47", n(quantity), line.uom))
        w.seg("MOA", ("203", n(amount)))
        if line.unit_price is not None:
            w.seg("PRI", ("AAA", n(line.unit_price)))
    w.seg("UNS", "S")
    w.seg("CNT", ("2", str(len(lines))))
    w.seg("MOA", ("79", n(sum((a for *_, a in lines), Decimal(0)))))
    if invoice.tax is not None:
        w.seg("MOA", ("124", n(invoice.tax)))
    if invoice.freight is not None:
        w.seg("MOA", ("64", n(invoice.freight)))
    w.seg("MOA", ("77", n(invoice_total(order, invoice))))
    return edifact_end(w, reference, una)

"""The documents after the order: 856/DESADV, 810/INVOIC, 846/INVRPT (gateway.acks.ship_notice,
invoice, stock_report), built from orders mapped from the fixtures, read back by pyx12 and
pydifact (gateway.acks.readback) and compared with golden files in tests/fixtures/after_order/.

Set GATEWAY_WRITE_GOLDEN=1 to rewrite the golden files after a deliberate change.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import pyx12.x12file

from gateway.acks import InMemoryControlNumbers
from gateway.acks.invoice import Invoice, build_810, build_invoic, invoice_total
from gateway.acks.model import AckValueError
from gateway.acks.readback import check_edifact, check_x12
from gateway.acks.ship_notice import Shipment, ShippedLine, build_856, build_desadv, shipped_lines
from gateway.acks.stock_report import build_846, build_invrpt
from gateway.formats.base import Envelope
from gateway.model import Order
from gateway.translate import Translated, translate

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "after_order"
NOW = dt.datetime(2024, 2, 1, 9, 30, tzinfo=dt.UTC)
SHIPMENT = Shipment(
    carrier="UPSN", tracking=("1Z999AA10123456784", "1Z999AA10123456791"), service="GROUND",
    lines=(ShippedLine("SKU-1", Decimal(4)),), ship_date=dt.date(2024, 1, 31),
)
INVOICE = Invoice(number="INV-1001", date=dt.date(2024, 2, 1), tax=Decimal("7.71"), freight=Decimal("12.50"))


def mapped(name: str) -> Order:
    path = ROOT / "tests" / "fixtures" / name
    with path.open("rb") as fh:
        (order,) = [e.order for e in translate(fh, name=path.name) if isinstance(e, Translated)]
    return order


def cn() -> InMemoryControlNumbers:
    return InMemoryControlNumbers(start=41)


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("GATEWAY_WRITE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def x12_segments(text: str) -> list[list[str]]:
    reader = pyx12.x12file.X12Reader(io.StringIO(text))
    segs = [seg.format().rstrip("~").split("*") for seg in reader]
    assert reader.pop_errors() == []
    return segs


CASES: dict[str, Callable[[], str]] = {
    "856_4010.x12": lambda: build_856(mapped("x12/clean_4010_850.edi"), SHIPMENT, control_numbers=cn(), partner="acme", now=NOW),
    "856_5010.x12": lambda: build_856(mapped("x12/clean_5010_850.edi"), Shipment(carrier="FDEG"), control_numbers=cn(), partner="acme", now=NOW),
    "810_4010.x12": lambda: build_810(mapped("x12/clean_4010_850.edi"), INVOICE, control_numbers=cn(), partner="acme", now=NOW),
    "desadv_d96a.edi": lambda: build_desadv(mapped("edifact/orders_full_d96a.edi"), Shipment(carrier="DHL", tracking=("JD0123",)), control_numbers=cn(), partner="acme", now=NOW),
    "invoic_d96a.edi": lambda: build_invoic(mapped("edifact/orders_full_d96a.edi"), INVOICE, control_numbers=cn(), partner="acme", now=NOW),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_document_reads_back_and_equals_its_golden_file(name: str) -> None:
    text = CASES[name]()
    kind = {"856": "856", "810": "810", "desadv": "DESADV", "invoic": "INVOIC"}[name.split("_")[0]]
    if name.endswith(".x12"):
        check_x12(text, kind)
    else:
        check_edifact(text, kind)
    golden(name, text)


def test_the_856_answers_the_order_envelope_and_lists_what_shipped() -> None:
    order = mapped("x12/clean_4010_850.edi")
    segs = x12_segments(CASES["856_4010.x12"]())
    isa = segs[0]
    assert (isa[5], isa[6].strip(), isa[7], isa[8].strip()) == ("ZZ", "SELLERCO", "ZZ", "BUYERCO")  # swapped
    assert isa[13] == "000000041" and isa[12] == "00401"
    gs = segs[1]
    assert gs[1] == "SH" and gs[6] == "41" and gs[8] == "004010"
    assert [s[2] for s in segs if s[0] == "REF" and s[1] == "CN"] == list(SHIPMENT.tracking)
    assert ["PRF", order.po_number] == [s for s in segs if s[0] == "PRF"][0][:2]
    (sn1,) = [s for s in segs if s[0] == "SN1"]
    assert sn1[2:4] == ["4", "EA"]
    five = x12_segments(CASES["856_5010.x12"]())
    assert five[0][12] == "00501" and five[1][8] == "005010"
    assert len([s for s in five if s[0] == "SN1"]) == len(mapped("x12/clean_5010_850.edi").lines)  # every line in full


def test_the_810_totals_lines_tax_and_freight() -> None:
    order = mapped("x12/clean_4010_850.edi")
    segs = x12_segments(CASES["810_4010.x12"]())
    lines = sum((line.quantity * (line.unit_price or 0) for line in order.lines), Decimal(0))
    total = lines + INVOICE.tax + INVOICE.freight  # type: ignore[operator]
    assert invoice_total(order, INVOICE) == total
    (tds,) = [s for s in segs if s[0] == "TDS"]
    assert tds[1] == str(int(total * 100))
    assert len([s for s in segs if s[0] == "IT1"]) == len(order.lines)
    assert [s for s in segs if s[0] == "BIG"][0][2] == "INV-1001"


def test_stock_reports_from_levels() -> None:
    env = Envelope(standard="x12", sender_id="ACMERETAIL", sender_qualifier="ZZ", receiver_id="WIDGETCO", receiver_qualifier="ZZ")
    levels = {"B-2": Decimal("0"), "A-1": Decimal("12"), "C-3": Decimal("-2")}
    text = build_846(levels, envelope=env, control_numbers=cn(), partner="acme", now=NOW)
    check_x12(text, "846")
    golden("846_4010.x12", text)
    qty = [s for s in x12_segments(text) if s[0] == "QTY"]
    assert [q[2] for q in qty] == ["12", "0", "0"]  # sorted by SKU; never below zero
    edi = Envelope(standard="edifact", sender_id="ACMEEDI", sender_qualifier="14", receiver_id="WIDGETCO", receiver_qualifier="14")
    text = build_invrpt(levels, envelope=edi, control_numbers=cn(), partner="acme", now=NOW)
    check_edifact(text, "INVRPT")
    golden("invrpt_d96a.edi", text)
    with pytest.raises(AckValueError, match="at least one SKU"):
        build_846({}, envelope=env, control_numbers=cn(), partner="acme", now=NOW)


def test_a_shipped_line_must_name_a_line_of_the_order() -> None:
    order = mapped("x12/clean_4010_850.edi")
    assert [q for *_, q in shipped_lines(order, (ShippedLine("012345678905", Decimal(2)),))] == [Decimal(2)]  # by GTIN
    with pytest.raises(AckValueError, match="no line with item 'NOPE'"):
        shipped_lines(order, (ShippedLine("NOPE", Decimal(1)),))
    with pytest.raises(AckValueError, match="positive"):
        shipped_lines(order, (ShippedLine("SKU-1", Decimal(0)),))


def test_read_back_refuses_a_broken_document() -> None:
    text = CASES["856_4010.x12"]()
    with pytest.raises(AckValueError, match="pyx12"):
        check_x12(text.replace("SE*", "SE*9", 1), "856")
    with pytest.raises(AckValueError, match="lacks SN1"):
        check_x12(_drop(text, "SN1"), "856")
    edi = CASES["invoic_d96a.edi"]()
    with pytest.raises(AckValueError, match="UNT"):
        check_edifact(edi.replace("UNT+", "UNT+9", 1), "INVOIC")


def _drop(text: str, tag: str) -> str:
    """`text` without its `tag` segments, SE01 recounted (a well-formed set missing a segment)."""
    segs = [s for s in text.split("~\n" if "~\n" in text else "~") if s and not s.startswith(tag + "*")]
    out = []
    start = 0
    for i, s in enumerate(segs):
        if s.startswith("ST*"):
            start = i
        if s.startswith("SE*"):
            parts = s.split("*")
            s = "*".join(["SE", str(i - start + 1), parts[2]])
        out.append(s)
    return "~".join(out) + "~"

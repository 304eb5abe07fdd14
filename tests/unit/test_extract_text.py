"""Orders from PDF attachments (text layer) and e-mail bodies through a partner's template
(gateway.extract.text). Fixtures: tests/fixtures/email/po.pdf, po_scanned.pdf (written by
tests/support/make_pdf.py) and po_body.txt; template: mappings/examples/email_text.yaml."""

from __future__ import annotations

import datetime as dt
import json
import logging
import textwrap
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.extract.base import Extraction, ExtractionError
from gateway.extract.template import EmailTemplate, load_email_template
from gateway.extract.text import (
    MAX_LINES,
    MAX_PDF_BYTES,
    PdfPages,
    extract_text,
    pdf_text,
)
from gateway.extract.text.places import _city_line, _country
from gateway.model import Channel
from tests.conftest import FIXTURES, ROOT
from tests.support import make_pdf

EMAIL = FIXTURES / "email"
EXAMPLE = ROOT / "mappings" / "examples" / "email_text.yaml"
D = Decimal


@pytest.fixture(scope="module")
def template() -> EmailTemplate:
    return load_email_template(EXAMPLE)


def body(text: str, template: EmailTemplate) -> Extraction:
    return extract_text([textwrap.dedent(text)], "message body", template, Channel.EMAIL)


def pdf(data: bytes, template: EmailTemplate, name: str = "po.pdf") -> Extraction:
    return extract_text(pdf_text(data, name), f"attachment {name}", template, Channel.PDF)


def changed(template: EmailTemplate, **lines: Any) -> EmailTemplate:
    """The template with some `text.lines` settings changed."""
    assert template.text is not None
    text = template.text.model_copy(update={"lines": template.text.lines.model_copy(update=lines)})
    return template.model_copy(update={"text": text})


def load(tmp_path: Path, text: str) -> EmailTemplate:
    file = tmp_path / "email.yaml"
    file.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_email_template(file)


def rows(ex: Extraction) -> list[tuple[Any, ...]]:
    return [(li.sku, li.description, li.quantity, li.uom, li.unit_price) for li in ex.order.lines]


def no_warnings(call: Any) -> Any:
    """Run `call` and fail if it emits any Python warning (even one pytest would hide)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return call()
        finally:
            assert [str(w.message) for w in caught] == []


TABLE = """
    Item   Description    Qty  UOM  Price  Amount
    A-1    Hex bolt M8     10  EA   1.50   15.00
"""


# ----------------------------------------------------------------- the golden documents


def test_body_text_po(template: EmailTemplate) -> None:
    ex = extract_text(
        [(EMAIL / "po_body.txt").read_text(encoding="utf-8")],
        "message body",
        template,
        Channel.EMAIL,
    )
    order = ex.order
    assert order.channel is Channel.EMAIL
    assert order.po_number == "4500012399"
    assert order.order_date == dt.date(2026, 11, 27)
    assert order.customer_email == "jane.buyer@acme-retail.example"
    assert order.notes == ["please deliver to the back entrance."]
    assert order.currency == "USD"
    assert order.ship_to is not None
    assert order.ship_to.name == "ACME Retail Store 112"
    assert order.ship_to.address_lines == ["Attn: Receiving", "455 Market Street"]
    assert (
        order.ship_to.city,
        order.ship_to.region,
        order.ship_to.postal_code,
        order.ship_to.country,
    ) == (
        "San Francisco",
        "CA",
        "94105",
        "US",
    )
    assert rows(ex) == [
        ("WID-100", "Blue widget, large", D("24"), "EA", D("4.50")),
        ("WID-300", "Green widget", D("6"), "BX", D("21.00")),
        ("SRV-1", "Installation kit", D("1"), None, D("35.00")),
    ]
    assert order.totals is not None and order.totals.total == D("269.00")

    assert ex.provenance["po_number"] == "message body, line 5 (label 'PO Number')"
    assert ex.confidence["po_number"] == 1.0
    assert ex.provenance["order_date"] == "message body, line 6 (label 'Date')"
    assert ex.confidence["order_date"] == 0.9  # 'Date' is the template's second label
    assert ex.provenance["currency"] == "the template (currency: USD)"
    assert ex.provenance["ship_to.name"] == "message body, line 10 (block 'Ship To')"
    assert ex.provenance["ship_to.address_lines"] == "message body, lines 11-12 (block 'Ship To')"
    assert (
        ex.provenance["ship_to.postal_code"]
        == "message body, line 13 (block 'Ship To', postal_code)"
    )
    assert ex.confidence["ship_to.name"] == 1.0
    assert ex.confidence["ship_to.postal_code"] == 0.8  # parsed by a heuristic
    assert ex.provenance["lines[2].unit_price"] == "message body, line 19 (row, unit_price)"
    assert ex.confidence["lines[2].unit_price"] == 1.0
    assert ex.provenance["totals.total"] == "message body, line 21 (total)"
    # The signature and the quoted earlier order below it (PO 4500012001, WID-999) are not read.
    assert ex.warnings == [
        "message body: read up to line 27; from line 28 on is the signature ('-- '), which was not read"
    ]
    dumped = json.dumps(order.model_dump(mode="json"))
    assert "4500012001" not in dumped and "WID-999" not in dumped
    assert ex.weak(template.min_confidence) == []


def test_pdf_po(template: EmailTemplate) -> None:
    pages = no_warnings(lambda: pdf_text((EMAIL / "po.pdf").read_bytes(), "po.pdf"))
    assert isinstance(pages, PdfPages) and len(pages) == 1
    assert pages.reader_messages == [] and pages.unread_pages == []
    ex = extract_text(pages, "attachment po.pdf", template, Channel.PDF)
    order = ex.order
    assert order.channel is Channel.PDF
    assert order.po_number == "4500012345"
    assert order.order_date == dt.date(2026, 11, 27)
    assert order.currency == "USD"
    assert order.customer_email == "buyer@acme-retail.example"
    assert order.notes == ["Deliver Mon-Fri between 8am and 4pm."]
    # Bill To and Ship To stand side by side; each keeps its own column.
    assert order.bill_to is not None and order.ship_to is not None
    assert order.bill_to.name == "ACME Retail Inc."
    assert order.bill_to.address_lines == ["Accounts Payable", "1 Commerce Way"]
    assert (
        order.bill_to.city,
        order.bill_to.region,
        order.bill_to.postal_code,
        order.bill_to.country,
    ) == (
        "Springfield",
        "IL",
        "62701",
        None,
    )
    assert order.ship_to.name == "ACME Distribution Center 4"
    assert order.ship_to.address_lines == ["Dock 7", "1200 Industrial Pkwy"]
    assert (
        order.ship_to.city,
        order.ship_to.region,
        order.ship_to.postal_code,
        order.ship_to.country,
    ) == (
        "Columbus",
        "OH",
        "43215",
        "US",
    )
    assert rows(ex) == [
        ("WID-100", "Blue widget, large", D("12"), "EA", D("4.50")),
        ("WID-200", "Red widget", D("5"), "BX", D("19.99")),
        ("GAD-7", "Gadget 7 inch", D("1000"), "EA", D("0.35")),
    ]
    assert order.totals is not None and order.totals.total == D("503.95")

    assert ex.provenance["po_number"] == "attachment po.pdf, page 1, line 4 (label 'PO Number')"
    assert (
        ex.provenance["ship_to.city"]
        == "attachment po.pdf, page 1, line 13 (block 'Ship To', city)"
    )
    assert (
        ex.provenance["ship_to.country"]
        == "attachment po.pdf, page 1, line 14 (block 'Ship To', country)"
    )
    assert (
        ex.provenance["lines[0].quantity"] == "attachment po.pdf, page 1, line 18 (row, quantity)"
    )
    assert ex.provenance["totals.total"] == "attachment po.pdf, page 1, line 23 (total)"
    assert max(ex.confidence.values()) == 0.9  # a PDF text layer is never certain
    assert ex.confidence["po_number"] == 0.9
    # "1,000" reads as 1000 or 1.000 (0.6); 1000 x 0.35 = 350.00 settles it (0.8).
    assert ex.confidence["lines[2].quantity"] == 0.8
    assert ex.warnings == []
    assert {k for k, c in ex.confidence.items() if c < 0.9} == {
        "bill_to.city",
        "bill_to.region",
        "bill_to.postal_code",
        "ship_to.city",
        "ship_to.region",
        "ship_to.postal_code",
        "ship_to.country",
        "lines[2].quantity",
    }
    assert ex.weak(template.min_confidence) == []


def test_pdf_layout_keeps_rows_and_columns() -> None:
    """The reason for laying out pdfplumber's words ourselves (see the module docstring)."""
    lines = pdf_text((EMAIL / "po.pdf").read_bytes(), "po.pdf")[0].splitlines()
    assert lines[3].split() == ["PO", "Number:", "4500012345", "Vendor", "No:", "V-778"]
    assert (
        "4500012345  " in lines[3] and "PO Number:  " in lines[3]
    )  # columns at least two spaces apart
    assert lines[8].startswith("Bill To:  ") and lines[8].rstrip().endswith("Ship To:")
    assert all(lines[i].strip() for i in range(8, 14))  # no invented blank line inside the blocks
    assert (
        " ".join(lines[19].split()) == "GAD-7 Gadget 7 inch 1,000 EA 0.35 350.00"
    )  # a row stays on one line


def test_fixtures_are_reproducible() -> None:
    assert make_pdf.purchase_order() == (EMAIL / "po.pdf").read_bytes()
    assert make_pdf.scanned() == (EMAIL / "po_scanned.pdf").read_bytes()


# ----------------------------------------------------------------- labels and values


def test_alternative_label_lowers_confidence(template: EmailTemplate) -> None:
    ex = body("Purchase Order No: 77\n" + TABLE, template)
    assert ex.order.po_number == "77"
    assert ex.provenance["po_number"] == "message body, line 1 (label 'Purchase Order No')"
    assert ex.confidence["po_number"] == 0.9
    text = make_pdf.text_lines(
        ["PO #: 77", "", "Item  Description  Qty  UOM  Price", "A-1   Hex bolt     10   EA   1.50"]
    )
    ex = pdf(text, template)
    assert ex.order.po_number == "77"
    assert ex.confidence["po_number"] == 0.85  # a PDF's 0.9, a notch less for the label


def test_value_under_its_label_in_a_pdf(template: EmailTemplate) -> None:
    data = make_pdf.text_lines(
        [
            "PO Number     Order Date     Terms",
            "4500012345    2026-11-27     Net 30",
            "",
            "Item  Description  Qty  UOM  Price",
            "A-1   Hex bolt     10   EA   1.50",
        ]
    )
    ex = pdf(data, template)
    assert ex.order.po_number == "4500012345"
    assert ex.order.order_date == dt.date(2026, 11, 27)
    assert (
        ex.provenance["po_number"]
        == "attachment po.pdf, page 1, line 2 (under label 'PO Number' on line 1)"
    )
    assert ex.confidence["po_number"] == 0.85
    assert rows(ex) == [("A-1", "Hex bolt", D("10"), "EA", D("1.50"))]


def test_two_labels_on_one_typed_line(template: EmailTemplate) -> None:
    ex = body("PO: 4711 Date: 11/27/2026\n" + TABLE, template)
    assert ex.order.po_number == "4711"
    assert ex.order.order_date == dt.date(2026, 11, 27)


def test_a_short_label_does_not_take_a_longer_ones_text(template: EmailTemplate) -> None:
    # "PO" is a label too; it must not read "Number: 4711" out of "PO Number: 4711".
    ex = body("PO Number: 4711\n" + TABLE, template)
    assert (ex.order.po_number, ex.confidence["po_number"]) == ("4711", 1.0)


def test_a_label_inside_another_phrase_is_not_a_label(template: EmailTemplate) -> None:
    # "Date" is a label; "Delivery Date:" is not, and its date is not the order date.
    ex = body("PO Number: 1\nDelivery Date: 12/01/2026\n" + TABLE, template)
    assert ex.order.order_date is None


def test_ambiguous_date(template: EmailTemplate) -> None:
    plain = template.model_copy(update={"date_formats": [], "day_first": True})
    ex = body("PO Number: 1\nOrder Date: 03/04/2026\n" + TABLE, plain)
    assert ex.order.order_date == dt.date(2026, 4, 3)
    assert ex.confidence["order_date"] == 0.6
    assert ex.weak(0.9)[0].startswith(
        "order_date = '2026-04-03' from message body, line 2 (label 'Order Date')"
    )
    us = template.model_copy(update={"date_formats": [], "day_first": False})
    assert body("PO Number: 1\nOrder Date: 03/04/2026\n" + TABLE, us).order.order_date == dt.date(
        2026, 3, 4
    )
    # Only one reading is a date: not ambiguous.
    ex = body("PO Number: 1\nOrder Date: 03/14/2026\n" + TABLE, plain)
    assert (ex.order.order_date, ex.confidence["order_date"]) == (dt.date(2026, 3, 14), 0.9)


def test_the_same_label_with_two_values_is_ambiguous(template: EmailTemplate) -> None:
    ex = body("PO Number: 1001\nRef: 7\nPO Number: 1002\n" + TABLE, template)
    assert ex.order.po_number == "1001"
    assert ex.confidence["po_number"] == 0.6
    assert ex.warnings == [
        "po_number: '1001' at message body, line 1 (label 'PO Number'), but '1002' at message body, line 3 (label 'PO Number'); the first was taken"
    ]


def test_every_note_is_kept(template: EmailTemplate) -> None:
    ex = body("PO Number: 1\nNote: ring the bell\nNote: no pallets\n" + TABLE, template)
    assert ex.order.notes == ["ring the bell", "no pallets"]
    assert ex.provenance["notes"] == "message body, line 2 (label 'Note') and 1 more"
    assert ex.confidence["notes"] == 1.0 and ex.warnings == []


def test_email_address_inside_a_name(template: EmailTemplate) -> None:
    ex = body("PO Number: 1\nContact: Jane Buyer <jane@acme.example>\n" + TABLE, template)
    assert (ex.order.customer_email, ex.confidence["customer_email"]) == ("jane@acme.example", 0.8)


def test_currency_in_the_document_wins_over_the_template(template: EmailTemplate) -> None:
    ex = body("PO Number: 1\nCurrency: EUR\n" + TABLE, template)
    assert ex.order.currency == "EUR"
    assert ex.provenance["currency"] == "message body, line 2 (pattern)"


def test_european_partner_body(tmp_path: Path) -> None:
    eu = load(
        tmp_path,
        r"""
        decimal_comma: true
        day_first: true
        date_formats: ["%d.%m.%Y"]
        currency: EUR
        text:
          fields:
            po_number: {labels: ["Bestellnummer", "Bestell-Nr."]}
            order_date: {labels: ["Datum"]}
            totals.total: {labels: ["Summe"]}
          blocks:
            ship_to: {labels: ["Lieferanschrift"]}
          lines:
            start: '(?i)^\s*artikel\b'
            row: '^\s*(?P<sku>\S+)\s+(?P<description>.+?)\s+(?P<quantity>\d[\d.,]*)\s+(?P<uom>[A-Z]{2,3})\s+(?P<unit_price>\d[\d.,]*)\s+(?P<line_total>\d[\d.,]*)\s*$'
            stop: '(?i)^\s*summe\b'
    """,
    )
    ex = body(
        """\
        Guten Tag,

        Bestellnummer: B-2026-0815
        Datum: 27.11.2026

        Lieferanschrift:
        Müller Handels GmbH
        Lager 3, Tor 2
        Industriestraße 12
        D-80331 München
        Deutschland

        Artikel   Bezeichnung          Menge  Einheit  Preis   Betrag
        A-1001    Sechskantschraube    1.000  ST       0,12    120,00
        A-1002    Unterlegscheibe        250  ST       0,02      5,00

        Summe: 125,00 EUR
    """,
        eu,
    )
    order = ex.order
    assert (order.po_number, order.order_date, order.currency) == (
        "B-2026-0815",
        dt.date(2026, 11, 27),
        "EUR",
    )
    assert order.ship_to is not None
    assert order.ship_to.address_lines == ["Lager 3, Tor 2", "Industriestraße 12"]
    assert (order.ship_to.postal_code, order.ship_to.city, order.ship_to.country) == (
        "80331",
        "München",
        "DE",
    )
    assert rows(ex) == [
        ("A-1001", "Sechskantschraube", D("1000"), "ST", D("0.12")),
        ("A-1002", "Unterlegscheibe", D("250"), "ST", D("0.02")),
    ]
    assert ex.confidence["lines[0].quantity"] == 0.8  # 1.000 x 0,12 = 120,00 settles "1.000"
    assert order.totals is not None and order.totals.total == D("125.00")
    assert ex.confidence["totals.total"] == 0.8  # "125,00 EUR": read after removing the currency
    assert ex.warnings == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Columbus, OH 43215", {"city": "Columbus", "region": "OH", "postal_code": "43215"}),
        (
            "San Francisco CA 94105-1234",
            {"city": "San Francisco", "region": "CA", "postal_code": "94105-1234"},
        ),
        ("Toronto, ON M5V 2T6", {"city": "Toronto", "region": "ON", "postal_code": "M5V 2T6"}),
        ("London SW1A 1AA", {"city": "London", "postal_code": "SW1A 1AA"}),
        ("EC1A 1BB London", {"city": "London", "postal_code": "EC1A 1BB"}),
        ("80331 München", {"city": "München", "postal_code": "80331"}),
        ("D-80331 München, Germany", {"city": "München", "postal_code": "80331", "country": "DE"}),
        ("1012 AB Amsterdam", {"city": "Amsterdam", "postal_code": "1012 AB"}),
        ("1010 Wien", {"city": "Wien", "postal_code": "1010"}),
        ("1200 Industrial Pkwy", None),  # a street, not a postal code and a city
        ("Industriestraße 12", None),
        ("Accounts Payable", None),
    ],
)
def test_address_last_line(line: str, expected: dict[str, str] | None) -> None:
    assert _city_line(line) == expected


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("USA", "US"),
        ("United States", "US"),
        ("Deutschland", "DE"),
        ("DE", "DE"),
        ("UK", "GB"),
        ("the moon", None),
        ("de", None),
    ],
)
def test_country_line(line: str, code: str | None) -> None:
    assert _country(line) == code


# ----------------------------------------------------------------- the line table and cross-checks


def test_line_total_mismatch(template: EmailTemplate) -> None:
    ex = body(
        """\
        PO Number: 1
        Item   Description    Qty  UOM  Price  Amount
        A-1    Hex bolt M8     10  EA   1.50   16.00
        A-2    Washer M8        5  EA   0.10    0.50
    """,
        template,
    )
    assert (ex.confidence["lines[0].quantity"], ex.confidence["lines[0].unit_price"]) == (0.5, 0.5)
    assert (ex.confidence["lines[1].quantity"], ex.confidence["lines[1].unit_price"]) == (1.0, 1.0)
    assert ex.warnings == [
        "message body, line 3: 10 x 1.50 = 15.00, but the line says 16.00; its quantity and unit price need checking"
    ]


def test_line_total_that_fits_the_other_decimal_mark(template: EmailTemplate) -> None:
    comma = template.model_copy(update={"decimal_comma": True})
    ex = body(
        "PO Number: 1\nItem  Description  Qty  UOM  Price  Amount\nA-1   Bolt  1,000  EA  0.35  350.00\n",
        comma,
    )
    assert ex.order.lines[0].quantity == D("1.000")
    assert ex.confidence["lines[0].quantity"] == 0.5
    assert (
        "read with the other decimal mark it would add up: check the template's decimal_comma"
        in ex.warnings[0]
    )


def test_ambiguous_quantity_without_a_line_total(template: EmailTemplate) -> None:
    ex = body(
        "PO Number: 1\nItem  Description  Qty  UOM  Price\nA-1   Bolt  1,000  EA  0.35\n", template
    )
    assert (ex.order.lines[0].quantity, ex.confidence["lines[0].quantity"]) == (D("1000"), 0.6)


def test_total_mismatch(template: EmailTemplate) -> None:
    ex = body(
        """\
        PO Number: 1
        Item   Description    Qty  UOM  Price  Amount
        A-1    Hex bolt M8     10  EA   1.50   15.00
        A-2    Washer M8        5  EA   0.10    0.50

        Total: 20.00
    """,
        template,
    )
    assert ex.order.totals is not None and ex.order.totals.total == D("20.00")
    assert ex.confidence["totals.total"] == 0.5
    assert ex.confidence["lines[0].unit_price"] == ex.confidence["lines[1].unit_price"] == 0.6
    assert ex.confidence["lines[0].quantity"] == 1.0
    assert ex.warnings == [
        "the 2 lines add up to 15.50, but totals.total is 20.00 (message body, line 6 (total)); "
        "the total and the unit prices need checking"
    ]


def test_subtotal_is_checked_instead_of_a_total_with_tax(template: EmailTemplate) -> None:
    with_subtotal = changed(template, subtotal=r"(?i)^\s*subtotal\b\D*(\d[\d.,]*)")
    ex = body(
        "PO Number: 1\n" + TABLE + "\nSubtotal: 15.00\nTax: 1.20\nTotal: 16.20\n", with_subtotal
    )
    assert ex.order.totals is not None
    assert (ex.order.totals.subtotal, ex.order.totals.total) == (D("15.00"), D("16.20"))
    assert ex.warnings == [] and min(ex.confidence.values()) == 1.0


def test_unmatched_table_row_sends_the_order_to_review(template: EmailTemplate) -> None:
    ex = body(
        """\
        PO Number: 1
        Item   Description    Qty  UOM  Price  Amount
        A-1    Hex bolt M8     10  EA   1.50   15.00
        A-2    Washer M8      ten  EA   0.10
        A-3    Nut M8          10  EA   0.20    2.00
    """,
        template,
    )
    assert [li.sku for li in ex.order.lines] == ["A-1", "A-3"]
    assert ex.warnings == [
        "message body, line 4: a line of the order table does not match the row pattern, so it was not read: "
        "'A-2 Washer M8 ten EA 0.10'"
    ]
    assert ex.confidence["lines"] == 0.5
    assert (
        ex.provenance["lines"]
        == "message body, line 4 (a table line that was not read): order lines may be missing"
    )
    assert any(w.startswith("lines from ") for w in ex.weak(template.min_confidence))


def test_continuation_lines_and_a_table_ending_at_a_blank_line(template: EmailTemplate) -> None:
    typed = changed(
        template, continuation=r"^  (?P<description>\S.*)$", ends_at_blank_line=True, stop=None
    )
    ex = body(
        """\
        PO Number: 1
        Item   Description    Qty  UOM  Price  Amount
        A-1    Hex bolt M8     10  EA   1.50   15.00
                 zinc plated
        A-2    Washer M8        5  EA   0.10    0.50

        Please call me before you ship.
    """,
        typed,
    )
    assert rows(ex) == [
        ("A-1", "Hex bolt M8 zinc plated", D("10"), "EA", D("1.50")),
        ("A-2", "Washer M8", D("5"), "EA", D("0.10")),
    ]
    assert ex.provenance["lines[0].description"] == "message body, lines 3-4 (row, description)"
    assert ex.warnings == []


def test_rows_anywhere_without_a_table_header(tmp_path: Path) -> None:
    loose = load(
        tmp_path,
        r"""
        text:
          fields: {po_number: {labels: ["PO"]}}
          lines: {row: '^\s*(?P<quantity>\d+)\s*x\s+(?P<sku>\S+)\s*$'}
    """,
    )
    ex = body("Hi,\nPO 55\nplease send\n10 x A-1\n5 x B-2\nthanks\n", loose)
    assert [(li.sku, li.quantity) for li in ex.order.lines] == [("A-1", D("10")), ("B-2", D("5"))]


def test_two_page_pdf_table(template: EmailTemplate) -> None:
    data = make_pdf.two_page_order()
    ex = pdf(data, template)
    assert [li.sku for li in ex.order.lines] == ["WID-100", "WID-200", "GAD-7"]
    assert ex.provenance["lines[2].sku"] == "attachment po.pdf, page 2, line 5 (row, sku)"
    assert ex.warnings == []
    # Without the `skip` pattern the page footer inside the table is an unread row.
    ex = pdf(data, changed(template, skip=[]))
    assert ex.warnings == [
        "attachment po.pdf, page 1, line 21: a line of the order table does not match the row pattern, so it was not read: 'Page 1 of 2'"
    ]
    assert ex.confidence["lines"] == 0.5


# ----------------------------------------------------------------- quoted replies


PO = "PO Number: 4500012399\n" + textwrap.dedent(TABLE) + "\n"
OLD = "PO Number: 999\nZ-9    Old widget     100  EA   1.00  100.00\n"


@pytest.mark.parametrize(
    "quote",
    [
        "On Tue, 25 Nov 2026 at 10:12, Sales <sales@widgetco.example> wrote:\n> "
        + OLD.replace("\n", "\n> "),
        "On Tue, 25 Nov 2026 at 10:12, Widget Co Sales\n<sales@widgetco.example> wrote:\n\n" + OLD,
        "> " + OLD.replace("\n", "\n> "),
        "-----Original Message-----\nFrom: Sales <sales@widgetco.example>\n" + OLD,
        "From: Sales <sales@widgetco.example>\nSent: Tuesday, November 25, 2026 10:12 AM\nTo: Jane\nSubject: RE: order\n\n"
        + OLD,
        "Am 25.11.2026 um 10:12 schrieb Verkauf <verkauf@widgetco.example>:\n" + OLD,
        "-- \nJane Buyer\n" + OLD,
    ],
    ids=["wrote", "wrote-wrapped", "gt", "original-message", "outlook", "schrieb", "signature"],
)
def test_quoted_reply_is_not_read(template: EmailTemplate, quote: str) -> None:
    ex = extract_text([PO + quote], "message body", template, Channel.EMAIL)
    assert ex.order.po_number == "4500012399"
    assert [li.sku for li in ex.order.lines] == ["A-1"]
    assert ex.confidence["po_number"] == 1.0 and "lines" not in ex.confidence
    assert ex.warnings == [ex.warnings[0]] and ex.warnings[0].startswith(
        "message body: read up to line 5; from line 6 on is "
    )


def test_from_and_date_lines_of_a_typed_order_are_not_a_quote(template: EmailTemplate) -> None:
    ex = body("From: ACME Retail\nDate: 11/27/2026\nPO Number: 8\n" + TABLE, template)
    assert (ex.order.po_number, ex.order.order_date) == ("8", dt.date(2026, 11, 27))


# ----------------------------------------------------------------- what cannot be read


def test_no_po_number(template: EmailTemplate) -> None:
    with pytest.raises(ExtractionError) as err:
        body("Please send\n" + TABLE, template)
    assert err.value.reason == "EXTRACT_NO_PO"
    assert (
        "looked for the labels 'PO Number', 'Purchase Order No', 'PO #', 'PO'" in err.value.message
    )


def test_no_lines(template: EmailTemplate) -> None:
    with pytest.raises(ExtractionError) as err:
        body("PO Number: 1\nA-1 Hex bolt 10 EA 1.50\n", template)
    assert err.value.reason == "EXTRACT_NO_LINES"
    assert "no line matches the table header pattern text.lines.start" in err.value.message
    with pytest.raises(ExtractionError) as err:
        body("PO Number: 1\nItem  Description  Qty\nten hex bolts please\n", template)
    assert err.value.reason == "EXTRACT_NO_LINES"
    assert (
        "the table header is at message body, line 2, but no line under it matches the row pattern"
        in err.value.message
    )
    assert "(the first: 'ten hex bolts please')" in err.value.message


def test_template_without_a_text_section(template: EmailTemplate) -> None:
    with pytest.raises(ExtractionError) as err:
        body("PO Number: 1\n" + TABLE, template.model_copy(update={"text": None}))
    assert err.value.reason == "EXTRACT_NO_TEMPLATE"


def test_scanned_pdf_without_ocr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.extract.text.ocr.ocr_available", lambda: False)
    with pytest.raises(ExtractionError) as err:
        no_warnings(lambda: pdf_text((EMAIL / "po_scanned.pdf").read_bytes(), "po_scanned.pdf"))
    assert err.value.reason == "EXTRACT_NO_TEXT"
    assert "looks like a scanned image" in err.value.message and "no OCR (install Debian's tesseract-ocr)" in err.value.message


def test_image_only_page_among_text_pages(template: EmailTemplate) -> None:
    pages = pdf_text(make_pdf.order_with_scanned_page(), "po.pdf")
    assert isinstance(pages, PdfPages)
    assert pages[1] == "" and pages.unread_pages == [2]
    ex = extract_text(pages, "attachment po.pdf", template, Channel.PDF)
    assert [li.sku for li in ex.order.lines] == ["WID-100", "WID-200"]
    assert (
        "attachment po.pdf, page 2 is an image without text; anything on it (order lines too) was not read"
        in ex.warnings
    )
    assert ex.confidence["lines"] == 0.5
    assert (
        ex.provenance["lines"]
        == "attachment po.pdf, page 2 (an image without text): order lines may be missing"
    )


def test_encrypted_pdf(template: EmailTemplate) -> None:
    with pytest.raises(ExtractionError) as err:
        no_warnings(lambda: pdf_text(make_pdf.encrypted("secret"), "po.pdf"))
    assert err.value.reason == "EXTRACT_PDF_ENCRYPTED"
    assert "needs a password" in err.value.message
    # Encrypted for permissions only (no user password): any reader opens it.
    assert pdf(make_pdf.encrypted(None), template).order.po_number == "4500012345"


GOOD = make_pdf.purchase_order()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is not a PDF",
        b"%PDF-1.4\n" + b"\0" * 200,
        GOOD[: len(GOOD) // 2],
        GOOD[:300],
        b"%PDF-1.7\n%%EOF\n",
    ],
    ids=["empty", "text", "zeros", "half", "head", "header-only"],
)
def test_broken_pdf(data: bytes) -> None:
    with pytest.raises(ExtractionError) as err:
        no_warnings(lambda: pdf_text(data, "po.pdf"))
    assert err.value.reason == "EXTRACT_PDF_INVALID"


def test_mangled_pdfs_fail_cleanly() -> None:
    """Cut or corrupted anywhere, a PDF gives text or an ExtractionError: no other
    exception and no Python warning."""
    outcomes = set()
    for i in range(1, 24):
        cut = len(GOOD) * i // 24
        flipped = GOOD[:cut] + bytes([GOOD[cut] ^ 0x5A]) + GOOD[cut + 1 :]
        for data in (GOOD[:cut], flipped):
            try:
                no_warnings(lambda d=data: pdf_text(d, "po.pdf"))
                outcomes.add("read")
            except ExtractionError as exc:
                outcomes.add(exc.reason)
    assert outcomes <= {"read", "EXTRACT_PDF_INVALID", "EXTRACT_NO_TEXT"}
    assert "EXTRACT_PDF_INVALID" in outcomes


def test_too_many_pages() -> None:
    assert len(pdf_text(make_pdf.many_pages(50), "big.pdf")) == 50
    with pytest.raises(ExtractionError) as err:
        pdf_text(make_pdf.many_pages(51), "big.pdf")
    assert err.value.reason == "EXTRACT_PDF_LIMIT"
    assert "more than 50 pages" in err.value.message


def test_too_large() -> None:
    with pytest.raises(ExtractionError) as err:
        pdf_text(b"%PDF-1.4\n" + b"0" * MAX_PDF_BYTES, "big.pdf")
    assert err.value.reason == "EXTRACT_PDF_LIMIT"


def test_pdf_reader_messages_become_warnings_not_log_records(
    template: EmailTemplate, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [
        "PO Number: 5",
        "",
        "Item  Description  Qty  UOM  Price",
        "A-1   Hex bolt     10   EA   1.50",
    ]
    data = make_pdf.text_lines(lines, compress=False)
    assert b"0.57 w" in data
    data = data.replace(b"0.57 w", b"/xyz w")  # a line width that is not a number
    caplog.set_level(logging.DEBUG)
    pages = pdf_text(data, "po.pdf")
    assert isinstance(pages, PdfPages)
    assert len(pages.reader_messages) == 1 and "Cannot set line width" in pages.reader_messages[0]
    assert [r for r in caplog.records if r.name.startswith(("pdfminer", "pdfplumber"))] == []
    ex = extract_text(pages, "attachment po.pdf", template, Channel.PDF)
    assert ex.order.po_number == "5"
    assert ex.warnings == [
        "attachment po.pdf: the PDF reader reported: " + pages.reader_messages[0]
    ]


def test_hostile_lines_do_not_make_patterns_run_away(template: EmailTemplate) -> None:
    """The example's row pattern backtracks cubically on a long run of spaces (17 s for
    one line of 2,000); the reader shortens such runs before any pattern sees them."""
    hostile = "".join(f"A-{i}" + " " * 1990 + "1\n" for i in range(500))
    started = time.perf_counter()
    with pytest.raises(ExtractionError):  # no row, but no hang either
        body("PO Number: 1\nItem  Description  Qty\n" + hostile, template)
    assert time.perf_counter() - started < 5


def test_long_lines_and_long_documents_are_cut(template: EmailTemplate) -> None:
    ex = body("PO Number: 1\nNote: " + "x" * 3000 + "\n" + TABLE, template)
    assert ex.warnings == ["message body, line 2: longer than 2000 characters; cut there"]
    assert len(ex.order.notes[0]) == 2000 - len("Note: ")
    ex = body("PO Number: 1\n" + TABLE + "Total: 15.00\n" + "filler\n" * MAX_LINES, template)
    assert [li.sku for li in ex.order.lines] == ["A-1"]
    assert ex.warnings == [
        "message body: only the first 5000 lines were read (the limit); the rest was ignored"
    ]
    assert ex.confidence["lines"] == 0.5


# ----------------------------------------------------------------- the template, checked at load


def test_example_template_loads(template: EmailTemplate) -> None:
    assert template.text is not None
    assert template.text.fields["po_number"].labels[0] == "PO Number"
    assert set(template.text.blocks) == {"ship_to", "bill_to"}


ROW = r"^(?P<sku>\S+)\s+(?P<quantity>\d+)$"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "lines: {row: '(?P<sku>[A-Z'}",
            "text.lines.row: Value error, not a valid regular expression (unterminated character set",
        ),
        (
            r"lines: {row: '(?P<sku>\S+)\s+(?P<qty>\d+)'}",
            "unknown named group 'qty' (did you mean 'quantity'?) in the row pattern",
        ),
        (
            r"lines: {row: '(?P<sku>\S+)\s+(?P<amount>\d+)'}",
            "unknown named group 'amount' (did you mean 'line_total'?)",
        ),
        (
            r"lines: {row: '(?P<sku>\S+)'}",
            "text.lines.row: Value error, the row pattern needs a (?P<quantity>...) group",
        ),
        (
            f"lines: {{row: '{ROW}', stop: '(total'}}",
            "text.lines.stop: Value error, not a valid regular expression",
        ),
        (
            f"lines: {{row: '{ROW}', skip: ['[']}}",
            "text.lines.skip: Value error, not a valid regular expression",
        ),
        (
            f"lines: {{row: '{ROW}', total: 'total (\\d+) (\\d+)'}}",
            "text.lines.total: Value error, the regular expression must have exactly one group",
        ),
        (
            f"fields: {{po_number: {{pattern: 'PO (\\d+'}}}}\n  lines: {{row: '{ROW}'}}",
            "text.fields.po_number.pattern: Value error, not a valid regular expression",
        ),
        (
            f"fields: {{po_numbr: {{labels: [PO]}}}}\n  lines: {{row: '{ROW}'}}",
            "fields.po_numbr: the order has no field 'po_numbr'; did you mean 'po_number'?",
        ),
        (
            f"fields: {{ship_to.citty: {{labels: [City]}}}}\n  lines: {{row: '{ROW}'}}",
            "ship_to (Party) has no field 'citty'; did you mean 'city'?",
        ),
        (
            f"fields: {{channel: {{labels: [Via]}}}}\n  lines: {{row: '{ROW}'}}",
            "fields.channel: channel is set by the gateway",
        ),
        (
            f"fields: {{order_date: {{labels: [Date], type: amount}}}}\n  lines: {{row: '{ROW}'}}",
            "the order field is date, so type: amount does not fit",
        ),
        (
            f"fields: {{po_number: {{labels: [PO], pattern: 'PO (\\d+)'}}}}\n  lines: {{row: '{ROW}'}}",
            "give either labels or a pattern",
        ),
        (
            f"blocks: {{shipto: {{labels: [Ship To]}}}}\n  lines: {{row: '{ROW}'}}",
            "blocks.shipto: not a party of the order (buyer, seller, ship_to, bill_to); did you mean 'ship_to'?",
        ),
        ("fields: {}", "text.lines: Field required"),
        (
            f"lines: {{row: '{ROW}', strat: 'x'}}",
            "text.lines.strat: Extra inputs are not permitted",
        ),
    ],
)
def test_template_errors_at_load(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "text:\n  " + text + "\n")
    assert len(err.value.problems) == 1
    assert expected in err.value.problems[0]
    assert err.value.problems[0].startswith(str(tmp_path / "email.yaml") + ": ")

"""CSV and XLSX order attachments read through a partner's column mapping (gateway.extract.table)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import openpyxl.xml
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.errors import ConfigError, InputRejected
from gateway.extract.base import Extraction, ExtractionError
from gateway.extract.table import (
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_ROWS,
    TableSpec,
    extract_table,
    table_field_paths,
)
from gateway.extract.template import EmailTemplate, load_email_template
from gateway.model import Channel
from tests.conftest import FIXTURES, ROOT
from tests.support import make_xlsx

EMAIL = FIXTURES / "email"
EXAMPLE = ROOT / "mappings" / "examples" / "email_table.yaml"


@pytest.fixture(scope="module")
def template() -> EmailTemplate:
    return load_email_template(EXAMPLE)


def with_table(template: EmailTemplate, **changes: Any) -> EmailTemplate:
    """The example template with some of its table: section (or top-level keys) changed."""
    top: dict[str, Any] = {k: changes.pop(k) for k in ("decimal_comma", "day_first", "date_formats", "currency") if k in changes}
    assert template.table is not None
    table = TableSpec.model_validate({**template.table.model_dump(), **changes})
    return template.model_copy(update={"table": table, **top})


def csv(text: str, template: EmailTemplate, *, label: str = "po.csv", encoding: str = "utf-8") -> list[Extraction]:
    return extract_table(text.encode(encoding), "csv", label, template)


def refused(data: bytes, kind: str, template: EmailTemplate, *, label: str = "po.csv") -> ExtractionError:
    with pytest.raises(ExtractionError) as info:
        extract_table(data, kind, label, template)  # type: ignore[arg-type]
    assert info.value.reason.startswith("EXTRACT_")
    return info.value


# -- the template ---------------------------------------------------------------------------------


def test_the_example_template_loads_with_its_table_section(template: EmailTemplate) -> None:
    spec = template.table
    assert spec is not None
    assert spec.sheet == "Orders" and spec.header_row is None
    assert spec.columns["po_number"] == ["PO Number", "PO", "Order No"]
    assert spec.columns["lines.quantity"] == ["Qty", "Quantity"]
    assert spec.labels["po_number"] == ["PO Number:", "PO #"]
    assert spec.stop_at == ["Total", "Subtotal"]
    assert template.currency == "EUR" and template.date_formats == ["%d/%m/%Y", "%Y-%m-%d"]


def test_every_table_spec_field_is_described() -> None:
    for name, info in TableSpec.model_fields.items():
        assert info.description, name


def test_an_unknown_field_path_is_refused_listing_the_valid_ones(tmp_path: Path) -> None:
    bad = tmp_path / "email.yaml"
    bad.write_text("table:\n  columns:\n    po_number: [PO]\n    lines.quantity: [Qty]\n    ship_to.cty: [Town]\n")
    with pytest.raises(ConfigError) as info:
        load_email_template(bad)
    text = str(info.value)
    assert "'ship_to.cty' is not an order field a column can fill (did you mean 'ship_to.city'?)" in text
    assert "the fields are: po_number, order_date," in text and "lines.unit_price" in text
    assert str(bad) in text


def test_field_paths_are_the_order_model_fields() -> None:
    paths = table_field_paths()
    assert {"po_number", "ship_to.name", "ship_to.address_lines", "totals.total", "lines.sku", "lines.quantity", "lines.pack.uom"} <= set(paths)
    assert not {"channel", "partner", "lines", "source.file_name", "extensions", "lines.item_ids"} & set(paths)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"columns": {"po_number": ["PO"]}}, "lines.quantity must be mapped"),
        ({"columns": {"lines.quantity": ["Qty"]}}, "po_number must be mapped to a column or a label"),
        ({"columns": {"po_number": ["PO"], "lines.quantity": ["Qty"]}, "labels": {"lines.sku": ["Item:"]}}, "'lines.sku' is not an order header field"),
        ({"columns": {"po_number": ["PO"], "lines.quantity": []}}, "at least 1 item"),
        ({"columns": {"po_number": ["PO"], "lines.quantity": [" "]}}, "at least 1 character"),
        ({"columns": {"po_number": ["PO"], "lines.quantity": ["Qty"]}, "header_row": 0}, "greater than or equal to 1"),
        ({"columns": {"po_number": ["PO"], "lines.quantity": ["Qty"]}, "stop": ["Total"]}, "Extra inputs are not permitted"),
    ],
)
def test_a_broken_table_section_is_refused(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        TableSpec.model_validate(table)
    assert message in str(info.value)


def test_a_single_header_name_may_be_written_as_a_string() -> None:
    spec = TableSpec.model_validate({"columns": {"po_number": "PO", "lines.quantity": "Qty"}, "labels": {"order_date": "Date:"}})
    assert spec.columns == {"po_number": ["PO"], "lines.quantity": ["Qty"]}
    assert spec.labels == {"order_date": ["Date:"]}


def test_a_template_without_a_table_section_is_refused(template: EmailTemplate) -> None:
    error = refused(b"PO,Qty\n1,1\n", "csv", template.model_copy(update={"table": None}))
    assert error.reason == "EXTRACT_NO_TEMPLATE"


# -- CSV ----------------------------------------------------------------------------------------------


def test_a_csv_with_two_pos_gives_two_orders_in_order_of_appearance(template: EmailTemplate) -> None:
    first, second = extract_table((EMAIL / "po_table.csv").read_bytes(), "csv", "po.csv", template)

    assert first.order.channel is Channel.CSV
    assert first.order.po_number == "4500012345"
    assert first.order.order_date == dt.date(2026, 3, 2)  # 02/03/2026 through the template's %d/%m/%Y
    assert first.order.ship_to is not None and first.order.ship_to.name == "ACME Berlin"
    assert [(ln.line_number, ln.sku, ln.quantity, ln.uom, ln.unit_price) for ln in first.order.lines] == [
        ("1", "WID-100", Decimal("10"), "EA", Decimal("2.50")),
        ("2", "WID-200", Decimal("4"), "EA", Decimal("12.00")),
    ]
    assert first.order.lines[0].description == "Widget, blue"  # a quoted comma
    assert first.provenance["po_number"] == "attachment po.csv, row 5, column 'PO Number'"
    assert first.provenance["lines[1].quantity"] == "attachment po.csv, row 6, column 'Qty'"
    assert first.confidence["lines[1].quantity"] == 1.0
    assert first.overall == 1.0 and first.warnings == []

    assert second.order.po_number == "4500012346"
    assert second.order.lines[0].description == 'Gadget "XL"'  # a doubled quote
    # Row 8 has no PO number: it belongs to the PO of the row above.
    assert [ln.sku for ln in second.order.lines] == ["GAD-7", "GAD-8"]
    assert second.provenance["lines[1].sku"] == "attachment po.csv, row 8, column 'Item'"
    # The Total row covers both POs: checked (it matches), stored on neither.
    assert first.order.totals is None and second.order.totals is None
    assert second.warnings == []


def test_the_header_row_is_found_below_a_title_block(template: EmailTemplate) -> None:
    text = "Purchase orders\nExported by ERP 7\n\n\nPO Number,Item,Qty\nA-1,X,2\n"
    (ex,) = csv(text, template)
    assert ex.provenance["lines[0].quantity"] == "attachment po.csv, row 6, column 'Qty'"


def test_a_configured_header_row_is_used(template: EmailTemplate) -> None:
    # Row 1 would match too (two names); the template says row 3.
    text = "PO Number,Qty\nignore,me\nPO Number,Item,Qty\nA-1,X,2\n"
    (ex,) = csv(text, with_table(template, header_row=3))
    assert ex.order.po_number == "A-1"
    assert ex.provenance["po_number"] == "attachment po.csv, row 4, column 'PO Number'"


def test_the_template_currency_is_used_when_the_document_states_none(template: EmailTemplate) -> None:
    (ex,) = csv("PO Number,Item,Qty\nA-1,X,2\n", template)
    assert ex.order.currency == "EUR"
    assert ex.provenance["currency"] == "the partner's e-mail template"
    assert ex.confidence["currency"] == 1.0
    columns = {**template.table.columns, "currency": ["Currency"]} if template.table else {}
    (ex,) = csv("PO Number,Item,Qty,Currency\nA-1,X,2,USD\n", with_table(template, columns=columns))
    assert ex.order.currency == "USD"
    assert ex.provenance["currency"] == "attachment po.csv, row 2, column 'Currency'"


def test_semicolons_decimal_commas_a_bom_and_alternative_headers(template: EmailTemplate) -> None:
    data = (EMAIL / "po_semicolon.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    (ex,) = extract_table(data, "csv", "po_semicolon.csv", with_table(template, decimal_comma=True))

    assert ex.order.po_number == "PO-77"  # not "\ufeffPO-77", and the header "PO" was matched
    assert ex.order.ship_to is not None and ex.order.ship_to.name == "Müller GmbH"
    assert [(ln.sku, ln.quantity, ln.unit_price) for ln in ex.order.lines] == [
        ("A-1", Decimal("1000"), Decimal("0.25")),
        ("A-2", Decimal("12"), Decimal("1.50")),
    ]
    # "PO", "SKU", "Quantity", "Price" are the template's alternatives: 0.9.
    assert ex.confidence["po_number"] == 0.9
    assert ex.confidence["lines[1].sku"] == 0.9
    assert ex.confidence["lines[1].unit_price"] == 0.9
    assert ex.confidence["ship_to.name"] == 1.0  # "Ship To" is the primary name
    # 1.000 may be one thousand or one: read per decimal_comma, but ambiguous (0.6).
    assert ex.confidence["lines[0].quantity"] == 0.6
    # The Total row (268,00) matches 1000 * 0.25 + 12 * 1.50: nothing lowered.
    assert ex.order.totals is not None and ex.order.totals.total == Decimal("268.00")
    assert ex.provenance["totals.total"] == "attachment po_semicolon.csv, cell E4 (row 'Total')"
    assert ex.confidence["totals.total"] == 1.0
    assert ex.warnings == []


def test_a_windows_1252_csv_is_read_with_a_warning(template: EmailTemplate) -> None:
    (ex,) = csv("PO Number;Item;Qty;Ship To\nA-1;X;2;Bäckerei Müller – Süd\n", template, encoding="cp1252")
    assert ex.order.ship_to is not None and ex.order.ship_to.name == "Bäckerei Müller – Süd"
    assert ex.warnings == [
        "the CSV attachment po.csv is not UTF-8; it was read as Windows-1252 (check accented letters in names and addresses)"
    ]


def test_a_csv_that_is_neither_utf8_nor_windows_1252_is_refused(template: EmailTemplate) -> None:
    error = refused(b"PO Number,Qty\nA\x81\x8d,1\n", "csv", template)
    assert error.reason == "EXTRACT_CSV_INVALID"
    assert "neither UTF-8 nor Windows-1252" in error.message


@pytest.mark.parametrize("delimiter", ["\t", "|", ";", ","])
def test_the_delimiter_is_sniffed(template: EmailTemplate, delimiter: str) -> None:
    rows = [["Order notes: see below, thanks; regards"], ["PO Number", "Item", "Qty", "Unit Price"], ["A-1", "X, large", "2", "3.50"]]
    text = "\n".join(delimiter.join(f'"{c}"' if delimiter in c else c for c in row) for row in rows) + "\n"
    (ex,) = csv(text, template)
    assert (ex.order.lines[0].sku, ex.order.lines[0].quantity, ex.order.lines[0].unit_price) == ("X, large", Decimal("2"), Decimal("3.50"))


def test_a_quoted_cell_may_span_lines_and_rows_count_as_records(template: EmailTemplate) -> None:
    (ex,) = csv('PO Number,Item,Qty,Description\nA-1,X,2,"two\nlines"\nA-1,Y,3,z\n', template)
    assert ex.order.lines[0].description == "two\nlines"
    assert ex.provenance["lines[1].sku"] == "attachment po.csv, row 3, column 'Item'"


def test_rows_with_empty_mapped_cells_and_repeated_headers_are_skipped(template: EmailTemplate) -> None:
    text = (
        "PO Number,Item,Qty,Remark\n"
        "A-1,X,2,\n"
        ",,,only a remark\n"
        ",,,\n"
        "PO Number,Item,Qty,Remark\n"  # a printout's page break
        "A-1,Y,3,\n"
    )
    (ex,) = csv(text, template)
    assert [(ln.sku, ln.quantity) for ln in ex.order.lines] == [("X", Decimal("2")), ("Y", Decimal("3"))]
    assert ex.provenance["lines[1].sku"] == "attachment po.csv, row 6, column 'Item'"


def test_a_list_field_takes_every_listed_column(template: EmailTemplate) -> None:
    (ex,) = csv("PO Number,Item,Qty,Address 1,Address 2\nA-1,X,2,Hafenstr. 1,Tor 3\n", template)
    assert ex.order.ship_to is not None and ex.order.ship_to.address_lines == ["Hafenstr. 1", "Tor 3"]
    assert ex.provenance["ship_to.address_lines"] == "attachment po.csv, row 2, columns 'Address 1', 'Address 2'"


def test_rows_of_one_po_disagreeing_on_a_header_value_keep_the_first_at_half_confidence(template: EmailTemplate) -> None:
    text = "PO Number,Item,Qty,Ship To\nA-1,X,2,ACME Berlin\nA-1,Y,3,ACME Hamburg\nA-1,Z,1,\n"
    (ex,) = csv(text, template)
    assert ex.order.ship_to is not None and ex.order.ship_to.name == "ACME Berlin"
    assert ex.confidence["ship_to.name"] == 0.5
    assert ex.provenance["ship_to.name"] == "attachment po.csv, row 2, column 'Ship To'"
    assert ex.warnings == [
        "PO A-1: ship_to.name reads 'ACME Berlin' in attachment po.csv, row 2, column 'Ship To' but 'ACME Hamburg' "
        "in attachment po.csv, row 3, column 'Ship To'; the first is kept and marked for checking"
    ]
    assert ex.weak(0.9) == ["ship_to.name = 'ACME Berlin' from attachment po.csv, row 2, column 'Ship To' (confidence 0.50)"]


def test_a_total_that_does_not_match_the_lines_lowers_it_and_the_prices(template: EmailTemplate) -> None:
    text = "PO Number,Item,Qty,Unit Price\nA-1,X,2,10.00\nA-1,Y,3,1.50\nTotal,,,30.00\n"
    (ex,) = csv(text, template)
    assert ex.order.totals is not None and ex.order.totals.total == Decimal("30.00")
    assert ex.provenance["totals.total"] == "attachment po.csv, cell D4 (row 'Total')"
    assert ex.confidence["totals.total"] == 0.5
    assert ex.confidence["lines[0].unit_price"] == ex.confidence["lines[1].unit_price"] == 0.5
    assert ex.confidence["lines[0].quantity"] == 1.0
    assert ex.warnings == [
        "the lines add up to 24.50 but attachment po.csv, cell D4 (row 'Total') says 30.00: "
        "the total and the unit prices are marked for checking"
    ]


def test_a_matching_total_lowers_nothing_even_with_rounded_lines(template: EmailTemplate) -> None:
    # 3 x 0.3333 = 0.9999 per line, written as 1.00 twice: a total of 2.00 is right.
    text = "PO Number,Item,Qty,Unit Price\nA-1,X,3,0.3333\nA-1,Y,3,0.3333\nSubtotal: 2.00\n"
    (ex,) = csv(text, template)
    assert ex.order.totals is not None and ex.order.totals.total == Decimal("2.00")
    assert ex.provenance["totals.total"] == "attachment po.csv, cell A4 (row 'Subtotal: 2.00')"
    assert min(ex.confidence.values()) == 1.0 and ex.warnings == []


def test_a_total_column_is_checked_per_po(template: EmailTemplate) -> None:
    assert template.table is not None
    columns = {**template.table.columns, "totals.total": ["Order Total"]}
    text = "PO Number,Item,Qty,Unit Price,Order Total\nA-1,X,2,5,10\nB-2,Y,1,4,9\n"
    good, bad = csv(text, with_table(template, columns=columns))
    assert good.order.totals is not None and good.order.totals.total == Decimal("10")
    assert good.confidence["totals.total"] == 1.0
    assert bad.confidence["totals.total"] == bad.confidence["lines[0].unit_price"] == 0.5


def test_a_grand_total_under_several_pos_that_does_not_match_lowers_every_price(template: EmailTemplate) -> None:
    text = "PO Number,Item,Qty,Unit Price\nA-1,X,2,5\nB-2,Y,1,4\nTotal,,,99\n"
    first, second = csv(text, template)
    assert first.order.totals is None and second.order.totals is None
    assert first.confidence["lines[0].unit_price"] == second.confidence["lines[0].unit_price"] == 0.5
    assert second.warnings == [
        "the lines of POs A-1, B-2 add up to 14 but attachment po.csv, cell D4 (row 'Total') says 99: the unit prices are marked for checking"
    ]


def test_a_total_is_not_checked_when_a_line_has_no_price(template: EmailTemplate) -> None:
    (ex,) = csv("PO Number,Item,Qty,Unit Price\nA-1,X,2,5\nA-1,Y,1,\nTotal,,,99\n", template)
    assert ex.order.totals is not None and ex.order.totals.total == Decimal("99")
    assert ex.confidence["totals.total"] == 1.0
    assert ex.warnings == [
        "the total in attachment po.csv, cell D4 (row 'Total') was not checked against the lines: attachment po.csv, row 3 has no unit price"
    ]


def test_labels_in_a_csv_give_header_fields(template: EmailTemplate) -> None:
    text = "PO Number: 4711\nOrder Date:,,2026-03-01\n\nItem,Qty,UOM\nX,2,EA\n"
    (ex,) = csv(text, template)
    assert ex.order.po_number == "4711"
    assert ex.provenance["po_number"] == "attachment po.csv, cell A1 (label 'PO Number: 4711')"
    assert ex.order.order_date == dt.date(2026, 3, 1)
    assert ex.provenance["order_date"] == "attachment po.csv, cell C2 (label 'Order Date:')"


def test_a_label_followed_by_another_label_has_no_value(template: EmailTemplate) -> None:
    (ex,) = csv("PO Number:,4711,Ship To:,,Order Date:,2026-03-01\n\nItem,Qty\nX,2\n", template)
    assert ex.order.ship_to is None
    assert ex.order.order_date == dt.date(2026, 3, 1)


def test_a_table_with_no_po_column_or_label_is_refused(template: EmailTemplate) -> None:
    error = refused(b"Item,Qty\nX,2\n", "csv", template)
    assert error.reason == "EXTRACT_NO_PO"
    assert "no PO number was found: the table has none of a column 'PO Number'" in error.message
    assert "a label 'PO #'" in error.message


def test_an_order_row_before_any_po_is_refused(template: EmailTemplate) -> None:
    error = refused(b"PO Number,Item,Qty\n,X,2\nA-1,Y,1\n", "csv", template)
    assert error.reason == "EXTRACT_NO_PO"
    assert error.position == "attachment po.csv, row 2"


def test_no_header_row_is_refused(template: EmailTemplate) -> None:
    error = refused(b"Artikel,Menge\nX,2\n", "csv", template)
    assert error.reason == "EXTRACT_NO_TABLE"
    assert "none of the first 30 rows has two of the configured column names" in error.message
    assert "the first row with content reads: Artikel | Menge" in error.message


def test_a_header_row_without_a_quantity_column_is_refused(template: EmailTemplate) -> None:
    error = refused(b"PO Number,Item,Menge\nA-1,X,2\n", "csv", template)
    assert error.reason == "EXTRACT_NO_TABLE"
    assert "has no quantity column: looked for 'Qty', 'Quantity'; it has 'PO Number', 'Item', 'Menge'" in error.message


def test_a_header_with_no_rows_under_it_is_refused(template: EmailTemplate) -> None:
    error = refused(b"PO Number,Item,Qty\n", "csv", template)
    assert error.reason == "EXTRACT_NO_LINES"


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ("A-1,X,twelve,1.00", "Qty", "row 2, column 'Qty': 'twelve' is not a number (for lines.quantity)"),
        ("A-1,X,2,EUR ten", "Unit Price", "row 2, column 'Unit Price': 'EUR ten' is not a number (for lines.unit_price)"),
        ('A-1,X,2,"1,234,56"', "Unit Price", "row 2, column 'Unit Price': '1,234,56' is not a number (for lines.unit_price)"),
    ],
)
def test_an_unreadable_quantity_or_price_is_refused_with_its_row_and_column(
    template: EmailTemplate, row: str, column: str, message: str
) -> None:
    error = refused(f"PO Number,Item,Qty,Unit Price\n{row}\n".encode(), "csv", template)
    assert error.reason == "EXTRACT_BAD_VALUE"
    assert error.position == f"attachment po.csv, row 2, column {column!r}"
    assert error.message == message


def test_an_unreadable_date_is_refused(template: EmailTemplate) -> None:
    error = refused(b"PO Number,Order Date,Item,Qty\nA-1,soon,X,2\n", "csv", template)
    assert error.reason == "EXTRACT_BAD_VALUE"
    assert error.message == "row 2, column 'Order Date': 'soon' is not a date (for order_date)"


def test_a_line_without_a_quantity_is_refused(template: EmailTemplate) -> None:
    error = refused(b"PO Number,Item,Qty\nA-1,X,\n", "csv", template)
    assert error.reason == "EXTRACT_BAD_VALUE"
    assert error.message == "row 2 is an order line but its quantity cell is empty"
    assert error.position == "attachment po.csv, row 2, column 'Qty'"


def test_too_many_rows_are_refused(template: EmailTemplate) -> None:
    text = "PO Number,Item,Qty\n" + "A-1,X,1\n" * MAX_ROWS
    error = refused(text.encode(), "csv", template)
    assert error.reason == "EXTRACT_LIMIT"
    assert error.message == "the CSV has more than 10,000 rows; the limit is 10,000"
    assert error.position == f"attachment po.csv, row {MAX_ROWS + 1}"


def test_too_many_columns_are_refused(template: EmailTemplate) -> None:
    text = "PO Number,Item,Qty" + ",x" * (MAX_COLUMNS - 2) + "\n"
    error = refused(text.encode(), "csv", template)
    assert error.reason == "EXTRACT_LIMIT"
    assert error.message == "row 1 has 201 columns; the limit is 200"


@pytest.mark.parametrize("size", [MAX_CELL_CHARS + 1, 200_000])
def test_an_overlong_cell_is_refused(template: EmailTemplate, size: int) -> None:
    error = refused(f"PO Number,Item,Qty\nA-1,{'x' * size},1\n".encode(), "csv", template)
    assert error.reason == "EXTRACT_LIMIT"
    assert "the limit is 10,000" in error.message


def test_nul_bytes_and_utf16_are_refused(template: EmailTemplate) -> None:
    error = refused(b"PO Number,Qty\nA\x00,1\n", "csv", template)
    assert error.reason == "EXTRACT_CSV_INVALID" and "NUL bytes" in error.message
    assert error.position == "attachment po.csv, byte 15"
    error = refused("PO Number\tQty\nA\t1\n".encode("utf-16"), "csv", template)
    assert error.reason == "EXTRACT_CSV_INVALID" and "UTF-16" in error.message


def test_an_extraction_error_is_a_quarantine_not_a_retry() -> None:
    assert issubclass(ExtractionError, InputRejected)


# -- XLSX ---------------------------------------------------------------------------------------------


def test_an_xlsx_order_form_with_labels_above_the_table(template: EmailTemplate) -> None:
    (ex,) = extract_table((EMAIL / "po.xlsx").read_bytes(), "xlsx", "po.xlsx", template)
    order = ex.order
    assert order.channel is Channel.XLSX
    assert order.po_number == "4500099999"
    assert ex.provenance["po_number"] == "attachment po.xlsx, sheet Orders, cell C3 (label 'PO Number:')"
    assert order.order_date == dt.date(2026, 3, 5)  # a date cell
    assert ex.confidence["order_date"] == 1.0
    assert order.requested_delivery_date == dt.date(2026, 3, 20)  # text through %d/%m/%Y
    assert order.ship_to is not None and order.ship_to.name == "ACME Munich Warehouse"
    assert [(ln.line_number, ln.sku, ln.quantity, ln.uom, ln.unit_price) for ln in order.lines] == [
        ("1", "WID-100", Decimal("10"), "EA", Decimal("0.3")),  # 0.1 + 0.2 without the float noise
        ("2", "WID-200", Decimal("3"), "EA", Decimal("12.5")),
        ("3", "4006381333931", Decimal("100"), "PCE", Decimal("1.1")),  # a number cell as an item number
    ]
    assert ex.provenance["lines[2].quantity"] == "attachment po.xlsx, sheet Orders, row 11, column 'Qty'"
    assert order.totals is not None and order.totals.total == Decimal("150.5")
    assert ex.provenance["totals.total"] == "attachment po.xlsx, sheet Orders, cell G12 (row 'Total')"
    assert ex.overall == 1.0 and ex.warnings == []


def test_the_first_sheet_is_read_when_the_template_names_none(template: EmailTemplate) -> None:
    data = (EMAIL / "po.xlsx").read_bytes()
    error = refused(data, "xlsx", with_table(template, sheet=None), label="po.xlsx")
    assert error.reason == "EXTRACT_NO_TABLE"
    assert "no table header was found on sheet Cover" in error.message


def test_a_missing_sheet_is_refused_naming_the_sheets(template: EmailTemplate) -> None:
    error = refused((EMAIL / "po.xlsx").read_bytes(), "xlsx", with_table(template, sheet="Bestellung"), label="po.xlsx")
    assert error.reason == "EXTRACT_NO_TABLE"
    assert "has no sheet 'Bestellung' (the template's table.sheet); it has 'Cover', 'Orders'" in error.message


def test_sheet_names_match_ignoring_case(template: EmailTemplate) -> None:
    (ex,) = extract_table((EMAIL / "po.xlsx").read_bytes(), "xlsx", "po.xlsx", with_table(template, sheet="orders"))
    assert ex.order.po_number == "4500099999"


def test_formulas_without_a_saved_result_are_empty_and_marked(template: EmailTemplate) -> None:
    (ex,) = extract_table((EMAIL / "table_formula.xlsx").read_bytes(), "xlsx", "f.xlsx", template)
    order = ex.order
    assert order.po_number == "PO-F1"
    # Order Date: =TODAY() -> no value, listed at 0.5 so a person looks.
    assert order.order_date is None
    assert ex.confidence["order_date"] == 0.5
    assert ex.provenance["order_date"] == "attachment f.xlsx, sheet Orders, cell B2 (label 'Order Date:') (a formula with no saved result)"
    # Unit price =2*6.25 on the second line -> no price, 0.5.
    assert order.lines[1].unit_price is None and order.lines[0].unit_price == Decimal("5")
    assert ex.confidence["lines[1].unit_price"] == 0.5
    # Ship To =D5 on the second row -> the first row's value, lowered to 0.5.
    assert order.ship_to is not None and order.ship_to.name == "ACME Munich"
    assert ex.confidence["ship_to.name"] == 0.5
    # Total =SUM(...) -> nothing to check against.
    assert order.totals is None
    assert ex.warnings == [
        "attachment f.xlsx, sheet Orders, cell B2 (label 'Order Date:') holds a formula with no saved result "
        "(the file was not calculated when saved); it was read as empty and order_date is marked for checking",
        "the total in attachment f.xlsx, sheet Orders, cell C7 is a formula with no saved result "
        "(the file was not calculated when saved); the lines were not checked against it",
        "attachment f.xlsx, sheet Orders, row 6, column 'Ship To' holds a formula with no saved result "
        "(the file was not calculated when saved); it was read as empty and ship_to.name is marked for checking",
        "attachment f.xlsx, sheet Orders, row 6, column 'Unit Price' holds a formula with no saved result "
        "(the file was not calculated when saved); it was read as empty and lines[1].unit_price is marked for checking",
    ]
    assert [w.split(" ")[0] for w in ex.weak(template.min_confidence)] == ["lines[1].unit_price", "order_date", "ship_to.name"]
    assert " = " not in ex.weak(template.min_confidence)[0]  # no value was read: only its place is shown


def test_many_unsaved_formulas_in_one_column_give_one_warning(template: EmailTemplate) -> None:
    rows: list[list[object]] = [["PO Number", "Item", "Qty", "Unit Price"]] + [["A-1", f"X{i}", 1, "=2*3"] for i in range(4)]
    (ex,) = extract_table(make_xlsx.table_workbook(rows), "xlsx", "m.xlsx", with_table(template, sheet=None))
    assert [ex.confidence[f"lines[{i}].unit_price"] for i in range(4)] == [0.5] * 4
    assert ex.warnings == [
        "attachment m.xlsx, sheet Orders, row 2, column 'Unit Price' and 3 more cells below it hold formulas with no "
        "saved result (the file was not calculated when saved); they were read as empty and lines[0].unit_price, "
        "lines[1].unit_price, lines[2].unit_price, lines[3].unit_price are marked for checking"
    ]


def test_a_quantity_formula_without_a_result_is_refused(template: EmailTemplate) -> None:
    data = make_xlsx.table_workbook([["PO Number", "Item", "Qty"], ["A-1", "X", "=1+1"]])
    error = refused(data, "xlsx", with_table(template, sheet=None), label="q.xlsx")
    assert error.reason == "EXTRACT_BAD_VALUE"
    assert "its quantity cell is a formula with no saved result" in error.message
    assert error.position == "attachment q.xlsx, sheet Orders, row 2, column 'Qty'"


def test_a_formula_with_a_saved_result_is_read_as_its_result(template: EmailTemplate) -> None:
    base = make_xlsx.table_workbook([["PO Number", "Item", "Qty"], ["A-1", "X", 1]])
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml")
    sheet = sheet.replace(b'<c r="C2" t="n"><v>1</v></c>', b'<c r="C2"><f>1+1</f><v>2</v></c>')
    assert b"<f>1+1</f>" in sheet
    (ex,) = extract_table(make_xlsx.replace_part(base, "xl/worksheets/sheet1.xml", sheet), "xlsx", "s.xlsx", with_table(template, sheet=None))
    assert ex.order.lines[0].quantity == Decimal("2")
    assert ex.confidence["lines[0].quantity"] == 1.0 and ex.warnings == []


def test_xlsx_values_read_as_text_dates_and_numbers(template: EmailTemplate) -> None:
    rows: list[list[object]] = [
        ["PO Number", "Order Date", "Item", "Qty", "Unit Price"],
        [4500012345, dt.datetime(2026, 3, 5, 0, 0), " X ", 2.0, "1.234,50"],
    ]
    (ex,) = extract_table(make_xlsx.table_workbook(rows), "xlsx", "v.xlsx", with_table(template, sheet=None, decimal_comma=True))
    assert ex.order.po_number == "4500012345"  # a number cell, no ".0"
    assert ex.order.order_date == dt.date(2026, 3, 5)
    assert ex.order.lines[0].sku == "X"
    assert ex.order.lines[0].quantity == Decimal("2")
    assert ex.order.lines[0].unit_price == Decimal("1234.50")  # text through parse_amount: cleaned up (0.8)
    assert ex.confidence["lines[0].unit_price"] == 0.8


def test_an_xlsx_with_too_many_rows_is_refused(template: EmailTemplate) -> None:
    data = make_xlsx.table_workbook([["PO Number", "Item", "Qty"]] + [["A-1", "X", 1]] * MAX_ROWS)
    error = refused(data, "xlsx", with_table(template, sheet=None), label="big.xlsx")
    assert error.reason == "EXTRACT_LIMIT"
    assert error.message == "the sheet has more than 10,000 rows; the limit is 10,000"


def test_an_xlsx_with_a_value_past_column_200_is_refused(template: EmailTemplate) -> None:
    data = make_xlsx.table_workbook([["PO Number", "Item", "Qty"] + [None] * (MAX_COLUMNS - 3) + ["far right"]])
    error = refused(data, "xlsx", with_table(template, sheet=None), label="wide.xlsx")
    assert error.reason == "EXTRACT_LIMIT"
    assert error.position == "attachment wide.xlsx, sheet Orders, cell GS1"


def test_an_xlsx_zip_bomb_is_refused_before_openpyxl_opens_it(template: EmailTemplate, monkeypatch: pytest.MonkeyPatch) -> None:
    import openpyxl.reader.excel

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("openpyxl must not see a zip bomb")

    monkeypatch.setattr(openpyxl.reader.excel, "load_workbook", never)
    bomb = make_xlsx.bomb_workbook()
    assert len(bomb) < 100_000
    error = refused(bomb, "xlsx", template, label="bomb.xlsx")
    assert error.reason == "EXTRACT_LIMIT"
    assert "zip bomb" in error.message and "xl/worksheets/sheet1.xml" in error.message


def test_an_xlsx_with_too_many_entries_is_refused(template: EmailTemplate) -> None:
    data = (EMAIL / "po.xlsx").read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        for i in range(200):
            zout.writestr(f"xl/media/pad{i}.bin", b"")
    error = refused(out.getvalue(), "xlsx", template, label="many.xlsx")
    assert error.reason == "EXTRACT_LIMIT"
    assert "entries; the limit is 200" in error.message


@pytest.mark.parametrize("build", [make_xlsx.xxe_workbook, make_xlsx.billion_laughs_workbook])
def test_an_xlsx_declaring_xml_entities_is_refused(template: EmailTemplate, build: Any) -> None:
    error = refused(build(), "xlsx", with_table(template, sheet=None), label="evil.xlsx")
    assert error.reason == "EXTRACT_XML_FORBIDDEN"
    assert "xl/worksheets/sheet1.xml declares a DTD" in error.message
    assert "root:" not in error.message


def test_a_dtd_in_utf16_xml_is_refused_too(template: EmailTemplate) -> None:
    base = make_xlsx.table_workbook([["PO Number", "Qty"], ["PO-1", 1]])
    xml = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><worksheet/>'.encode("utf-16")
    error = refused(make_xlsx.replace_part(base, "xl/worksheets/sheet1.xml", xml), "xlsx", template, label="u.xlsx")
    assert error.reason == "EXTRACT_XML_FORBIDDEN"


def test_an_svg_logo_with_a_doctype_is_no_reason_to_refuse(template: EmailTemplate) -> None:
    svg = b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg/>'
    data = make_xlsx.replace_part((EMAIL / "po.xlsx").read_bytes(), "xl/media/image1.svg", svg)
    (ex,) = extract_table(data, "xlsx", "po.xlsx", template)
    assert ex.order.po_number == "4500099999"


def test_a_sheet_disguised_as_an_image_still_meets_defusedxml(template: EmailTemplate) -> None:
    evil = make_xlsx.xxe_workbook()
    with zipfile.ZipFile(io.BytesIO(evil)) as zf:
        sheet, rels = zf.read("xl/worksheets/sheet1.xml"), zf.read("xl/_rels/workbook.xml.rels")
    data = make_xlsx.replace_part(evil, "xl/worksheets/sheet1.xml", b"<worksheet/>")
    data = make_xlsx.replace_part(data, "xl/media/sheet.png", sheet)
    data = make_xlsx.replace_part(data, "xl/_rels/workbook.xml.rels", rels.replace(b"worksheets/sheet1.xml", b"media/sheet.png"))
    error = refused(data, "xlsx", with_table(template, sheet=None), label="evil.xlsx")
    assert error.reason == "EXTRACT_XML_FORBIDDEN"
    assert error.message == (
        "the attachment evil.xlsx was refused: an XML part of it declares entities or a DTD, which Excel never "
        "writes and which can carry an XML entity attack (EntitiesForbidden)"
    )


def test_workbooks_are_not_read_when_openpyxl_does_not_use_defusedxml(template: EmailTemplate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openpyxl.xml, "DEFUSEDXML", False)
    error = refused((EMAIL / "po.xlsx").read_bytes(), "xlsx", template, label="po.xlsx")
    assert error.reason == "EXTRACT_XLSX_UNSAFE"


@pytest.mark.parametrize("build", [make_xlsx.xxe_workbook, make_xlsx.billion_laughs_workbook])
def test_openpyxl_itself_refuses_entities_through_defusedxml(build: Any) -> None:
    """Defence in depth: without the gateway's own DTD check, openpyxl (with defusedxml,
    a hard dependency) refuses the entities instead of expanding them."""
    from defusedxml import EntitiesForbidden

    assert openpyxl.xml.DEFUSEDXML is True
    with pytest.raises(ValueError) as info:  # openpyxl wraps it in a ValueError of its own
        wb = openpyxl.load_workbook(io.BytesIO(build()), read_only=True, data_only=True)
        try:
            list(wb.worksheets[0].iter_rows(values_only=True))
        finally:
            wb.close()
    assert isinstance(info.value, EntitiesForbidden) or isinstance(info.value.__cause__, EntitiesForbidden)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"this is not a spreadsheet at all", "is not an Excel workbook (.xlsx)"),
        (b"", "is not an Excel workbook (.xlsx)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500, "Excel 97-2003 workbook (.xls)"),
        (b"PK\x03\x04" + b"\x00" * 100, "is a damaged Excel workbook"),
    ],
)
def test_garbage_is_refused_with_a_sentence(template: EmailTemplate, data: bytes, words: str) -> None:
    error = refused(data, "xlsx", template, label="po.xlsx")
    assert error.reason == "EXTRACT_XLSX_INVALID"
    assert words in error.message


def test_a_zip_that_is_not_a_workbook_is_refused(template: EmailTemplate) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("po.csv", "PO Number,Qty\nA,1\n")
    error = refused(out.getvalue(), "xlsx", template, label="po.xlsx")
    assert error.reason == "EXTRACT_XLSX_INVALID"
    assert "a ZIP archive but not an Excel workbook" in error.message


def test_a_workbook_with_a_broken_part_is_refused(template: EmailTemplate) -> None:
    data = make_xlsx.replace_part((EMAIL / "po.xlsx").read_bytes(), "xl/workbook.xml", b"<workbook><sheets>")
    error = refused(data, "xlsx", template, label="po.xlsx")
    assert error.reason == "EXTRACT_XLSX_INVALID"
    assert error.message.startswith("the attachment po.xlsx is a damaged or unsupported Excel workbook and cannot be read")


def test_a_truncated_workbook_is_refused(template: EmailTemplate) -> None:
    data = (EMAIL / "po.xlsx").read_bytes()
    error = refused(data[: len(data) // 2], "xlsx", template, label="po.xlsx")
    assert error.reason == "EXTRACT_XLSX_INVALID"


def test_openpyxl_warnings_become_extraction_warnings(template: EmailTemplate) -> None:
    """A date cell whose serial is out of range makes openpyxl warn; under
    filterwarnings=error that would fail this test if it escaped."""
    base = make_xlsx.table_workbook([["PO Number", "Item", "Qty", "When"], ["A-1", "X", 1, dt.date(2026, 1, 1)]])
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml")
    broken = sheet.replace(b"<v>46023</v>", b"<v>99999999999</v>")
    assert broken != sheet
    (ex,) = extract_table(make_xlsx.replace_part(base, "xl/worksheets/sheet1.xml", broken), "xlsx", "w.xlsx", with_table(template, sheet=None))
    assert ex.order.lines[0].quantity == Decimal("1")
    assert len(ex.warnings) == 1
    assert ex.warnings[0].startswith("the spreadsheet reader noted: Cell D2 is marked as a date but the serial value")


def _cells(xlsx: bytes) -> dict[str, list[tuple[Any, ...]]]:
    wb = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    try:
        return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}
    finally:
        wb.close()


@pytest.mark.parametrize(("name", "build"), [("po.xlsx", make_xlsx.po_workbook), ("table_formula.xlsx", make_xlsx.formula_workbook)])
def test_the_committed_xlsx_fixtures_are_the_script_output(name: str, build: Any) -> None:
    """If this fails, run `.venv/bin/python -m tests.support.make_xlsx` and commit the result."""
    assert _cells((EMAIL / name).read_bytes()) == _cells(build())


def test_the_workbook_is_closed_whether_reading_succeeds_or_not(template: EmailTemplate, monkeypatch: pytest.MonkeyPatch) -> None:
    import openpyxl.reader.excel

    opened: list[Any] = []
    real = openpyxl.reader.excel.load_workbook

    def spy(*args: Any, **kwargs: Any) -> Any:
        wb = real(*args, **kwargs)
        opened.append(wb)
        return wb

    monkeypatch.setattr(openpyxl.reader.excel, "load_workbook", spy)
    data = (EMAIL / "po.xlsx").read_bytes()
    extract_table(data, "xlsx", "po.xlsx", template)
    refused(data, "xlsx", with_table(template, sheet="Missing"), label="po.xlsx")
    refused(data, "xlsx", with_table(template, sheet="Cover"), label="po.xlsx")
    assert len(opened) == 3
    assert all(wb._archive.fp is None for wb in opened)  # ZipFile.close() drops its file


# -- whatever the bytes, only ExtractionError -----------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000), kind=st.sampled_from(["csv", "xlsx"]))
def test_any_bytes_give_orders_or_an_extraction_error(template: EmailTemplate, data: bytes, kind: str) -> None:
    try:
        extract_table(data, kind, "x", template)  # type: ignore[arg-type]
    except ExtractionError as exc:
        assert exc.reason.startswith("EXTRACT_")


_PO_XLSX = (EMAIL / "po.xlsx").read_bytes()
with zipfile.ZipFile(io.BytesIO(_PO_XLSX)) as _zf:
    _PO_PARTS = {name: _zf.read(name) for name in _zf.namelist()}
_XML_BITS = [b"<", b">", b'"', b'r="ZZ99"', b"999999", b't="s"', b't="d"', b"<v>", b"</c>", b"<f>A1</f>", b"-1", b"1e308", b"nan"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    part=st.sampled_from(sorted(_PO_PARTS)),
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 20), st.sampled_from(_XML_BITS)), min_size=1, max_size=6
    ),
)
def test_a_workbook_with_damaged_xml_gives_orders_or_an_extraction_error(
    template: EmailTemplate, part: str, edits: list[tuple[float, int, bytes]]
) -> None:
    """Valid ZIPs whose XML parts are cut and spliced: openpyxl's failures (XML syntax
    errors, TypeErrors from its descriptors, KeyErrors, ...) must all become ExtractionError."""
    data = bytearray(_PO_PARTS[part])
    for where, cut, bit in edits:
        at = int(where * len(data))
        data[at : at + cut] = bit
    try:
        extract_table(make_xlsx.replace_part(_PO_XLSX, part, bytes(data)), "xlsx", "po.xlsx", template)
    except ExtractionError as exc:
        assert exc.reason.startswith("EXTRACT_")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, len(_PO_XLSX) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_a_workbook_with_damaged_bytes_gives_orders_or_an_extraction_error(template: EmailTemplate, cuts: list[tuple[int, int]]) -> None:
    data = bytearray(_PO_XLSX)
    for at, byte in cuts:
        data[at] = byte
    try:
        extract_table(bytes(data), "xlsx", "po.xlsx", template)
    except ExtractionError as exc:
        assert exc.reason.startswith("EXTRACT_")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12), max_size=6),
        max_size=8,
    ),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
)
def test_any_text_table_gives_orders_or_an_extraction_error(template: EmailTemplate, rows: list[list[str]], delimiter: str) -> None:
    text = "PO Number,Item,Qty,Unit Price\n" + "\n".join(delimiter.join(r) for r in rows)
    try:
        extract_table(text.encode(), "csv", "x.csv", template)
    except ExtractionError as exc:
        assert exc.reason.startswith("EXTRACT_")

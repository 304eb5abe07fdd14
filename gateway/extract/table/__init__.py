"""CSV and XLSX order attachments through a partner's column mapping.

A partner's ``mappings/<partner>/email.yaml`` says under ``table:`` which column holds which
order field (`TableSpec`); `extract_table` reads one attachment with it and returns one
`Extraction` per PO number found, each field with where it came from and how sure we are::

    table:
      sheet: Orders                  # XLSX: the sheet to read (default: the first sheet)
      header_row: null               # 1-based; default: found in the first 30 rows
      columns:                       # order field path -> header names, primary first
        po_number: ["PO Number", "PO"]
        lines.sku: ["Item", "SKU"]
        lines.quantity: ["Qty", "Quantity"]     # required
        lines.unit_price: ["Unit Price", "Price"]
        ship_to.address_lines: ["Address 1", "Address 2"]   # a list field: every column present
      labels:                        # header fields written beside a label above the table
        po_number: ["PO Number:", "PO #"]
        order_date: ["Order Date"]
      stop_at: ["Total", "Subtotal"] # a row starting with one of these ends the table

How a sheet is read
    header row   ``header_row``, or the first of the sheet's first 30 rows in which at least
                 two configured column names appear (names match ignoring case and spacing).
    columns      a path takes the column of its first listed name present in the header row
                 (confidence 1.0), else of a later one (an alternative: 0.9). A list field
                 (``notes``, ``ship_to.address_lines``, ``lines.notes``) takes every listed
                 column present, in the listed order, one list item each (1.0).
    rows         below the header row, up to a ``stop_at`` row (its first non-empty cell is the
                 word or starts with it and a non-letter: "Total", "TOTAL:", "Total EUR", not
                 "Totally"). A row whose mapped cells are
                 all empty, or that repeats the header (page breaks), is skipped. A row with a
                 line field is an order line and must have a quantity. Header fields in
                 columns (``po_number``, ``ship_to.name``) repeat on the rows of an order; when
                 rows of one PO disagree, the first value is kept at confidence 0.5.
    orders       one per PO number, in order of first appearance. A row with an empty PO cell
                 belongs to the PO of the row above, or (first rows) to the PO label's.
    labels       in the rows above the header row and below the stop row: a cell equal to a
                 label (ignoring case, spacing and a trailing colon), its value in the next
                 non-empty cell to the right; or one cell ``"PO Number: 4500123"``.
    totals       the amount in a ``stop_at`` row (its right-most cell that reads as one), a
                 ``totals.total`` column or label: compared with sum(quantity * unit_price).
                 A mismatch keeps the stated total but lowers it and every unit price to 0.5.
                 With several POs in one table, a sheet-wide total is compared with all lines
                 and stored on none of the orders.
    values       numbers and dates through `parse_amount` / `parse_date` with the template's
                 ``decimal_comma``, ``day_first`` and ``date_formats``; a whole-number field
                 (``totals.line_count``) takes at most 18 digits; XLSX number and date
                 cells are taken as they are (1.0), floats to Excel's 15 significant digits
                 (0.1 + 0.2 stored as 0.30000000000000004 reads 0.3). The template's
                 ``currency`` fills a currency the document does not state (1.0).
    formulas     XLSX only: a formula cell with no saved result (a file written by a program
                 that does not calculate) is read as empty, with a warning, and its field is
                 marked 0.5: lowered if found elsewhere, else listed at 0.5 with no value.

Limits (bad input is refused with EXTRACT_LIMIT, naming the limit)
    CSV     10,000 rows with content, 200 columns, 10,000 characters in any cell, no NUL
            bytes; UTF-8 (with or without BOM), else Windows-1252 with a warning
    XLSX    the ZIP limits of `gateway.formats.ziplimits` (entries, total size, ratio,
            overlapping entries) checked before openpyxl opens it; no DTD in any part but
            images (XXE, billion laughs), whatever openpyxl's settings, and openpyxl must
            parse with defusedxml too (the second guard); 10,000 rows with content; cells
            right of column 201 are not read and a value in column 201 is refused; 10,000
            characters in a cell read as a value (a long terms-and-conditions cell
            elsewhere is fine). openpyxl reads it read-only: formulas are never evaluated.
    both    at most 1,048,576 rows (empty ones included), Excel's own maximum.

Errors: `ExtractionError` (an InputRejected: quarantined, never retried as is), `reason`:
    EXTRACT_LIMIT          a limit above was passed (a zip bomb, a runaway file)
    EXTRACT_CSV_INVALID    not text: NUL bytes, UTF-16, neither UTF-8 nor Windows-1252
    EXTRACT_XLSX_INVALID   not a readable .xlsx (garbage, an old .xls, a broken ZIP or XML)
    EXTRACT_XML_FORBIDDEN  an XML part of the workbook declares a DTD (an entity attack)
    EXTRACT_XLSX_UNSAFE    openpyxl is not using defusedxml here (an installation fault:
                           fix it, then replay)
    EXTRACT_NO_TEMPLATE    the partner's template has no ``table:`` section
    EXTRACT_NO_TABLE       no header row, no quantity column, no such sheet
    EXTRACT_NO_PO          neither a PO column nor a PO label, or a line before any PO
    EXTRACT_NO_LINES       a header row with no order rows and no PO label
    EXTRACT_BAD_VALUE      a value that cannot be read (a quantity, price or date; a line
                           with no quantity), with its row and column
    EXTRACT_INVALID        the values found do not make a valid order (`Draft.build`)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from gateway.extract.base import Extraction, ExtractionError
from gateway.extract.table.csvfile import _read_csv
from gateway.extract.table.grid import MAX_CELL_CHARS, MAX_COLUMNS, MAX_ROWS
from gateway.extract.table.reader import _Reader
from gateway.extract.table.spec import TableSpec, table_field_paths
from gateway.extract.table.xlsx import _read_xlsx
from gateway.model import Channel

if TYPE_CHECKING:
    from gateway.extract.template import EmailTemplate

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "MAX_ROWS",
    "TableSpec",
    "extract_table",
    "table_field_paths",
]


def extract_table(
    data: bytes, kind: Literal["csv", "xlsx"], label: str, template: EmailTemplate
) -> list[Extraction]:
    """The orders in a CSV or XLSX attachment, read with the partner's `template` (its
    ``table:`` section): one `Extraction` per PO number, in order of first appearance.

    `label` is the attachment's display name, used in every ``where``. ExtractionError
    (reason EXTRACT_*) when the attachment cannot be read as an order table.
    """
    spec = template.table
    if spec is None:
        raise ExtractionError(
            f"the attachment {label} was not read: the partner's e-mail template has no `table:` section",
            reason="EXTRACT_NO_TEMPLATE",
        )
    if kind == "csv":
        grid = _read_csv(data, label, spec)
        channel = Channel.CSV
    elif kind == "xlsx":
        grid = _read_xlsx(data, label, spec)
        channel = Channel.XLSX
    else:  # a caller's mistake, not the partner's
        raise ValueError(f"extract_table reads csv or xlsx, not {kind!r}")
    return _Reader(grid, spec, template, channel).orders()

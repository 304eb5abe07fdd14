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

import csv
import datetime as dt
import difflib
import io
import math
import re
import threading
import types
import typing
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from gateway.extract.base import Draft, Extraction, ExtractionError, Found, parse_amount, parse_date
from gateway.formats.ziplimits import ZipProblem, is_zip, read_zip
from gateway.model import Channel, Order, OrderLine

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

MAX_ROWS = 10_000  # rows with content
MAX_COLUMNS = 200
MAX_CELL_CHARS = 10_000
HEADER_SEARCH_ROWS = 30
_SHEET_MAX_ROWS = 1_048_576  # Excel's own maximum, empty rows included
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an Excel 97-2003 .xls (and other OLE files)
_DELIMITERS = (",", ";", "\t", "|")
_DTD_MARKS = tuple("<!DOCTYPE".encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be"))
# Images may legitimately carry a DOCTYPE (an SVG logo from Illustrator) and openpyxl does
# not read them; a crafted workbook pointing a sheet at one still meets defusedxml.
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".emf", ".wmf", ".svg", ".ico")
_FORMULA_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s>/]")
_SIGNIFICANT = 15  # digits Excel keeps of a number
_MAX_WHOLE_DIGITS = 18  # a count or a number of days; also fits the 64-bit integers of databases and ERPs
_UNSAVED_CONFIDENCE = 0.5
_MISMATCH_CONFIDENCE = 0.5
_TEMPLATE_WHERE = "the partner's e-mail template"
# catch_warnings swaps process-wide state; two threads reading workbooks at once must not
# interleave their enter/exit (the service polls sources on a thread pool).
_WARNINGS_LOCK = threading.Lock()

_Value = str | Decimal | dt.date | None  # a cell as read (dt.datetime is a dt.date)
_Kind = Literal["text", "text_list", "amount", "integer", "date", "choice"]


# -- which order fields a table can fill --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    kind: _Kind
    choices: tuple[str, ...] = ()


# Set by the gateway, not by a document (or not expressible as one cell).
_NOT_MAPPABLE = frozenset({"channel", "partner", "lines", "lines_are_changes", "source", "unmapped", "extensions"})


def _fields_of(model: type[BaseModel], prefix: str = "") -> dict[str, _Field]:
    found: dict[str, _Field] = {}
    for name, info in model.model_fields.items():
        if not prefix and name in _NOT_MAPPABLE:
            continue
        target = _unwrap(info.annotation)
        if isinstance(target, type) and issubclass(target, BaseModel):
            found.update(_fields_of(target, f"{prefix}{name}."))
            continue
        kind = _kind_of(target)
        if kind is not None:
            found[prefix + name] = kind
    return found


def _unwrap(annotation: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return None
            annotation = args[0]
        else:
            return annotation


def _kind_of(target: Any) -> _Field | None:
    if typing.get_origin(target) is list:
        return _Field("text_list") if typing.get_args(target) == (str,) else None
    if not isinstance(target, type) or target is bool:
        return None
    if issubclass(target, Enum):
        return _Field("choice", tuple(str(m.value) for m in target))
    if issubclass(target, Decimal):
        return _Field("amount")
    if issubclass(target, dt.date):
        return _Field("date")
    if issubclass(target, int):
        return _Field("integer")
    if issubclass(target, str):
        return _Field("text")
    return None


_HEADER_FIELDS = _fields_of(Order)
_LINE_FIELDS = {f"lines.{path}": f for path, f in _fields_of(OrderLine).items()}
_ALL_FIELDS = {**_HEADER_FIELDS, **_LINE_FIELDS}


def table_field_paths() -> list[str]:
    """Every path a `TableSpec` column can fill (header fields, then ``lines.`` fields)."""
    return [*_HEADER_FIELDS, *_LINE_FIELDS]


def _unknown_paths(paths: Iterable[str], allowed: dict[str, _Field], what: str) -> list[str]:
    problems = []
    for path in paths:
        if path in allowed:
            continue
        close = difflib.get_close_matches(path, list(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{path!r} is not {what}{hint}")
    if problems:
        problems.append(f"the fields are: {', '.join(allowed)}")
    return problems


# -- the template section ---------------------------------------------------------------------------

_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_Names = Annotated[list[_Name], Field(min_length=1)]


class TableSpec(BaseModel):
    """How to read a partner's CSV and XLSX orders: which column or label holds which field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sheet: str | None = Field(
        None, min_length=1, description="XLSX: name of the sheet holding the order table; default the first sheet. Not used for CSV."
    )
    header_row: int | None = Field(
        None,
        ge=1,
        le=_SHEET_MAX_ROWS,
        description=(
            "1-based row of the column headers; default: found automatically, the first of the first 30 rows "
            "in which at least two configured column names appear."
        ),
    )
    columns: dict[str, _Names] = Field(
        description=(
            "Order field path (po_number, ship_to.name, lines.sku, lines.quantity, ...) -> header names of the "
            "column holding it. The first name is the partner's usual header (confidence 1.0), the others "
            "alternatives (0.9). A list field (notes, ship_to.address_lines, lines.notes) takes every listed "
            "column present. lines.quantity is required."
        ),
    )
    labels: dict[str, _Names] = Field(
        default_factory=dict,
        description=(
            "Header field path -> label texts of a field written outside the table (an order form): a cell holding "
            "the label, its value in the next non-empty cell to the right, or 'Label: value' in one cell. First "
            "label 1.0, others 0.9."
        ),
    )
    stop_at: list[_Name] = Field(
        default_factory=list,
        description=(
            "A row whose first non-empty cell starts with one of these words ends the table; an amount in it is "
            "the order total, checked against the lines."
        ),
    )

    @field_validator("columns", "labels", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        """``po_number: "PO Number"`` is short for ``po_number: ["PO Number"]``."""
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        problems = _unknown_paths(value, _ALL_FIELDS, "an order field a column can fill")
        if problems:
            raise ValueError("; ".join(problems))
        if "lines.quantity" not in value:
            raise ValueError("lines.quantity must be mapped: every order line needs a quantity column")
        return value

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        problems = _unknown_paths(value, _HEADER_FIELDS, "an order header field a label can fill (line fields come from columns)")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _po_somewhere(self) -> TableSpec:
        if "po_number" not in self.columns and "po_number" not in self.labels:
            raise ValueError("po_number must be mapped to a column or a label: every order needs a PO number")
        return self


# -- a sheet as read ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Grid:
    """The rows with content of one CSV or sheet, and what reading them noticed."""

    label: str
    sheet: str | None  # the XLSX sheet's name
    rows: list[tuple[int, list[_Value]]]  # (1-based row number, cells), rows with content only
    unsaved: set[tuple[int, int]] = field(default_factory=set)  # (row, 0-based column): formula, no result
    warnings: list[str] = field(default_factory=list)
    checks_cells: bool = False  # XLSX: cell lengths are checked as they are used

    def place(self, row: int, columns: Sequence[str] = ()) -> str:
        """``sheet Orders, row 7, column 'Qty'`` (what a person looks for)."""
        sheet = f"sheet {self.sheet}, " if self.sheet is not None else ""
        if not columns:
            return f"{sheet}row {row}"
        if len(columns) == 1:
            return f"{sheet}row {row}, column {columns[0]!r}"
        return f"{sheet}row {row}, columns {', '.join(repr(c) for c in columns)}"

    def cell(self, row: int, col: int) -> str:
        sheet = f"sheet {self.sheet}, " if self.sheet is not None else ""
        return f"{sheet}cell {_column_letter(col)}{row}"

    def where(self, place: str) -> str:
        return f"attachment {self.label}, {place}"


def _column_letter(index: int) -> str:
    """0-based column index -> A, B, ..., Z, AA, ..."""
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _text(value: _Value) -> str:
    """A cell as a person reads it."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _label_key(text: str) -> str:
    return _norm(text).rstrip(": ")


# -- entry point ------------------------------------------------------------------------------------


def extract_table(data: bytes, kind: Literal["csv", "xlsx"], label: str, template: EmailTemplate) -> list[Extraction]:
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


# -- CSV --------------------------------------------------------------------------------------------


def _read_csv(data: bytes, label: str, spec: TableSpec) -> _Grid:
    notes: list[str] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExtractionError(
            f"the CSV attachment {label} is UTF-16 text (Excel's 'Unicode Text'); ask the partner to save it as 'CSV UTF-8'",
            reason="EXTRACT_CSV_INVALID",
        )
    if b"\x00" in data:
        raise ExtractionError(
            f"the CSV attachment {label} holds NUL bytes, so it is not a text file (a spreadsheet or binary file named .csv?)",
            reason="EXTRACT_CSV_INVALID",
            position=f"attachment {label}, byte {data.index(0)}",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise ExtractionError(
                f"the CSV attachment {label} is neither UTF-8 nor Windows-1252 text (byte {exc.start} cannot be read)",
                reason="EXTRACT_CSV_INVALID",
            ) from exc
        notes.append(
            f"the CSV attachment {label} is not UTF-8; it was read as Windows-1252 (check accented letters in names and addresses)"
        )
    delimiter = _sniff_delimiter(text, spec)
    grid = _Grid(label, None, [], warnings=notes)
    for number, cells in _csv_records(text, delimiter, label):
        if len(cells) > MAX_COLUMNS:
            raise _limit(f"row {number} has {len(cells)} columns; the limit is {MAX_COLUMNS}", grid.where(grid.place(number)))
        for i, cell in enumerate(cells):
            if cell is not None and len(cell) > MAX_CELL_CHARS:
                raise _limit(
                    f"a cell holds {len(cell):,} characters; the limit is {MAX_CELL_CHARS:,}", grid.where(grid.cell(number, i))
                )
        grid.rows.append((number, list(cells)))
        if len(grid.rows) > MAX_ROWS:
            raise _limit(f"the CSV has more than {MAX_ROWS:,} rows; the limit is {MAX_ROWS:,}", grid.where(grid.place(number)))
    return grid


def _csv_records(text: str, delimiter: str, label: str) -> Iterator[tuple[int, list[str | None]]]:
    """(1-based record number, cells stripped, trailing empties dropped) for records with content."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
    number = 0
    try:
        for record in reader:
            number += 1
            if number > _SHEET_MAX_ROWS:
                raise _limit(f"the CSV runs past {_SHEET_MAX_ROWS:,} rows", f"attachment {label}, row {number}")
            cells: list[str | None] = [c.strip() or None for c in record]
            while cells and cells[-1] is None:
                cells.pop()
            if cells:
                yield number, cells
    except csv.Error as exc:
        where = f"attachment {label}, row {number + 1}"
        if "field larger than field limit" in str(exc):
            raise _limit(f"a cell holds more than {MAX_CELL_CHARS:,} characters; the limit is {MAX_CELL_CHARS:,}", where) from exc
        raise ExtractionError(f"the CSV cannot be read ({exc})", reason="EXTRACT_CSV_INVALID", position=where) from exc


def _sniff_delimiter(text: str, spec: TableSpec) -> str:
    """The delimiter under which the configured header row is found (most matching names),
    then the one giving the most rows of equal width; ``,`` when nothing tells."""
    sample_end = 0
    for _ in range(HEADER_SEARCH_ROWS + 20):
        nl = text.find("\n", sample_end)
        if nl < 0:
            sample_end = len(text)
            break
        sample_end = nl + 1
    sample = text[:sample_end]
    best: tuple[int, int, int] = (-1, -1, 0)
    chosen = ","
    for rank, delimiter in enumerate(_DELIMITERS):
        if delimiter not in sample:
            continue
        try:
            rows = list(_csv_records(sample, delimiter, ""))
        except ExtractionError:
            continue
        header = _find_header(rows, spec)
        matches = len(_match_columns(header[1], spec)) if header is not None else 0
        widths = [len(cells) for _, cells in rows if len(cells) > 1]
        steady = max((widths.count(w) for w in set(widths)), default=0)
        score = (matches, steady, -rank)
        if score > best:
            best, chosen = score, delimiter
    return chosen


def _limit(message: str, where: str) -> ExtractionError:
    return ExtractionError(message, reason="EXTRACT_LIMIT", position=where)


# -- XLSX -------------------------------------------------------------------------------------------


def _read_xlsx(data: bytes, label: str, spec: TableSpec) -> _Grid:
    what = f"the attachment {label}"
    if data.startswith(_OLE):
        raise ExtractionError(
            f"{what} is an Excel 97-2003 workbook (.xls), which the gateway does not read; ask the partner to save it as .xlsx or CSV",
            reason="EXTRACT_XLSX_INVALID",
        )
    if not is_zip(data[:4]):
        raise ExtractionError(
            f"{what} is not an Excel workbook (.xlsx): its content does not start like one (a renamed or damaged file?)",
            reason="EXTRACT_XLSX_INVALID",
        )
    try:
        entries = read_zip(data)
    except ZipProblem as exc:
        if exc.reason == "ZIP_LIMIT":
            raise ExtractionError(f"{what} is past a limit for workbooks: {exc.message}", reason="EXTRACT_LIMIT") from exc
        raise ExtractionError(f"{what} is a damaged Excel workbook: {exc.message}", reason="EXTRACT_XLSX_INVALID") from exc
    parts = {e.name: e.data for e in entries}
    if "[Content_Types].xml" not in parts:
        raise ExtractionError(f"{what} is a ZIP archive but not an Excel workbook (it has no [Content_Types].xml)", reason="EXTRACT_XLSX_INVALID")
    if not _defused():
        raise ExtractionError(
            f"{what} was not read: this gateway's openpyxl is not using defusedxml (is OPENPYXL_DEFUSEDXML set to "
            "False, or defusedxml missing?), so workbooks cannot be read safely; fix the installation and replay",
            reason="EXTRACT_XLSX_UNSAFE",
        )
    for name, body in parts.items():
        if not name.lower().endswith(_IMAGE_SUFFIXES) and any(mark in body for mark in _DTD_MARKS):
            raise ExtractionError(
                f"{what} was refused: its part {name} declares a DTD, which Excel never writes and which can carry an "
                "XML entity attack (external entities, billion laughs)",
                reason="EXTRACT_XML_FORBIDDEN",
            )
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = _read_sheet(data, parts, label, spec)
    seen: set[str] = set()
    for w in caught:
        text = f"the spreadsheet reader noted: {w.message}"
        if text not in seen:
            seen.add(text)
            grid.warnings.append(text)
    return grid


def _defused() -> bool:
    """True when openpyxl parses with defusedxml (entities refused, not expanded)."""
    import openpyxl.xml

    return bool(openpyxl.xml.DEFUSEDXML)


def _xlsx_failed(label: str, exc: BaseException) -> ExtractionError:
    from defusedxml import DefusedXmlException

    # openpyxl wraps the parser's error in a ValueError of several lines: show the cause.
    cause = exc.__cause__ if isinstance(exc, ValueError) and exc.__cause__ is not None else exc
    if isinstance(cause, DefusedXmlException):
        return ExtractionError(
            f"the attachment {label} was refused: an XML part of it declares entities or a DTD, which Excel never "
            f"writes and which can carry an XML entity attack ({type(cause).__name__})",
            reason="EXTRACT_XML_FORBIDDEN",
        )
    lines = str(cause).strip().splitlines()
    detail = " ".join(lines[0].split()) if lines else type(cause).__name__
    return ExtractionError(
        f"the attachment {label} is a damaged or unsupported Excel workbook and cannot be read ({detail[:200]})",
        reason="EXTRACT_XLSX_INVALID",
    )


def _openpyxl_errors() -> tuple[type[BaseException], ...]:
    from openpyxl.utils.exceptions import InvalidFileException

    # openpyxl turns malformed parts into whatever its descriptors raise: a TypeError for a
    # bad attribute, a KeyError for a missing part, a SyntaxError (ParseError) for bad XML.
    return (
        InvalidFileException,
        KeyError,
        IndexError,
        ValueError,  # defusedxml's refusals are ValueErrors too
        TypeError,
        AttributeError,
        OSError,
        EOFError,
        SyntaxError,
        OverflowError,
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,
    )


def _read_sheet(data: bytes, parts: dict[str, bytes], label: str, spec: TableSpec) -> _Grid:
    from openpyxl.reader.excel import load_workbook

    errors = _openpyxl_errors()
    load: Callable[..., Any] = load_workbook  # openpyxl has no type hints
    try:
        workbook = load(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except errors as exc:
        raise _xlsx_failed(label, exc) from exc
    try:
        sheet = _pick_sheet(workbook, spec.sheet, label)
        grid = _Grid(label, sheet.title, [], checks_cells=True)
        path = str(getattr(sheet, "_worksheet_path", "")).lstrip("/")
        if _FORMULA_TAG.search(parts.get(path, b"")):
            grid.unsaved = _formulas_without_result(parts[path], label)
        sheet.reset_dimensions()  # a sheet's declared size is not trusted: rows are never padded to it
        rows = sheet.iter_rows(min_row=1, min_col=1, max_col=MAX_COLUMNS + 1, values_only=True)
        try:
            for number, raw in enumerate(_guarded(rows, label, errors), start=1):
                if number > _SHEET_MAX_ROWS:
                    raise _limit(f"the sheet runs past row {_SHEET_MAX_ROWS:,}", grid.where(grid.place(number)))
                cells = [_xlsx_value(v) for v in raw]
                while cells and cells[-1] is None:
                    cells.pop()
                if not cells:
                    continue
                if len(cells) > MAX_COLUMNS:
                    raise _limit(
                        f"the sheet has a value in column {_column_letter(MAX_COLUMNS)}; the limit is {MAX_COLUMNS} columns",
                        grid.where(grid.cell(number, MAX_COLUMNS)),
                    )
                grid.rows.append((number, cells))
                if len(grid.rows) > MAX_ROWS:
                    raise _limit(f"the sheet has more than {MAX_ROWS:,} rows; the limit is {MAX_ROWS:,}", grid.where(grid.place(number)))
        finally:
            close: Callable[[], object] | None = getattr(rows, "close", None)
            if close is not None:
                close()  # the sheet's XML stream, when the rows were not all read
        return grid
    finally:
        workbook.close()


def _guarded(rows: Iterable[Sequence[Any]], label: str, errors: tuple[type[BaseException], ...]) -> Iterator[Sequence[Any]]:
    """openpyxl's rows, its failures on malformed XML turned into ExtractionError."""
    iterator = iter(rows)
    while True:
        try:
            row = next(iterator)
        except StopIteration:
            return
        except errors as exc:
            raise _xlsx_failed(label, exc) from exc
        yield row


def _pick_sheet(workbook: Any, name: str | None, label: str) -> Any:
    sheets = list(workbook.worksheets)
    if not sheets:
        raise ExtractionError(f"the workbook {label} has no worksheet", reason="EXTRACT_NO_TABLE")
    if name is None:
        return sheets[0]
    exact = [s for s in sheets if s.title == name]
    loose = [s for s in sheets if str(s.title).casefold() == name.casefold()]
    if exact or loose:
        return (exact or loose)[0]
    have = ", ".join(repr(s.title) for s in sheets)
    raise ExtractionError(
        f"the workbook {label} has no sheet {name!r} (the template's table.sheet); it has {have}", reason="EXTRACT_NO_TABLE"
    )


def _xlsx_value(value: Any) -> _Value:
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return _float_decimal(value) if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, dt.datetime):
        return value.date() if value.time() == dt.time(0) else value
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()  # str, rich text, times, durations
    return text or None


def _float_decimal(value: float) -> Decimal:
    """A float cell as the number a person typed: Excel keeps 15 significant digits, so
    0.30000000000000004 (0.1 + 0.2) is 0.3 and 12.0 is 12."""
    number = Decimal(format(value, f".{_SIGNIFICANT}g"))
    if number == number.to_integral_value() and abs(number) < Decimal(10) ** _SIGNIFICANT:
        return number.quantize(Decimal(1))
    return number


def _formulas_without_result(xml: bytes, label: str) -> set[tuple[int, int]]:
    """(row, 0-based column) of the formula cells that carry no saved result.

    openpyxl's values-only reading cannot tell those from empty cells, so the sheet XML is
    scanned once more (with defusedxml; it was checked for a DTD already)."""
    from defusedxml.ElementTree import iterparse

    found: set[tuple[int, int]] = set()
    row = col = 0
    try:
        for event, element in iterparse(io.BytesIO(xml), events=("start", "end")):
            tag = element.tag.rpartition("}")[2]
            if event == "start":
                if tag == "row":
                    ref = element.get("r")
                    row = int(ref) if ref and ref.isdigit() else row + 1
                    col = 0
                elif tag == "c":
                    ref = element.get("r")
                    col = _ref_column(ref) if ref else col + 1
                continue
            if tag == "c":
                children = {child.tag.rpartition("}")[2]: child for child in element}
                saved = children.get("v")
                # No <v>, or an empty one that is not a text result (an empty string is a
                # legitimate result of =IF(...;"";...); an empty number is no result).
                if "f" in children and col and (saved is None or (not saved.text and element.get("t") not in ("str", "s", "inlineStr"))):
                    found.add((row, col - 1))
                element.clear()
            elif tag == "row":
                element.clear()
    except (SyntaxError, ValueError) as exc:
        raise _xlsx_failed(label, exc) from exc
    return found


def _ref_column(ref: str) -> int:
    """1-based column of a cell reference such as ``AB12`` (0 if it has none)."""
    col = 0
    for ch in ref:
        if "A" <= ch <= "Z":
            col = col * 26 + ord(ch) - 64
        elif "a" <= ch <= "z":
            col = col * 26 + ord(ch) - 96
        else:
            break
    return col


# -- from a grid to orders --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    index: int  # 0-based
    header: str  # as written in the header row
    confidence: float


def _find_header(rows: Sequence[tuple[int, Sequence[_Value]]], spec: TableSpec) -> tuple[int, Sequence[_Value]] | None:
    """The header row: ``header_row``, or the first of the first 30 with >= 2 configured names."""
    if spec.header_row is not None:
        return next(((n, cells) for n, cells in rows if n == spec.header_row), None)
    wanted = min(2, len(spec.columns))
    for number, cells in rows:
        if number > HEADER_SEARCH_ROWS:
            break
        if len(_match_columns(cells, spec)) >= wanted:
            return number, cells
    return None


def _match_columns(cells: Sequence[_Value], spec: TableSpec) -> dict[str, list[_Column]]:
    """Field path -> its column(s) in a header row."""
    headers: list[tuple[int, str, str]] = [(i, _norm(_text(v)), _text(v)) for i, v in enumerate(cells) if v is not None]
    matched: dict[str, list[_Column]] = {}
    for path, names in spec.columns.items():
        listed = _ALL_FIELDS[path].kind == "text_list"
        columns: list[_Column] = []
        for rank, name in enumerate(names):
            key = _norm(name)
            hit = next(((i, text) for i, norm, text in headers if norm == key), None)
            if hit is None:
                continue
            columns.append(_Column(hit[0], hit[1], 1.0 if rank == 0 or listed else 0.9))
            if not listed:
                break
        if columns:
            matched[path] = columns
    return matched


@dataclass(slots=True)
class _Order:
    """What the rows of one PO number gave."""

    po: Found
    header: dict[str, Found] = field(default_factory=dict)
    lines: list[dict[str, Found]] = field(default_factory=list)
    unsaved: dict[str, str] = field(default_factory=dict)  # path (lines[i].x too) -> where
    unsaved_lines: dict[str, list[str]] = field(default_factory=dict)  # line field -> its lines[i].x paths
    warnings: list[str] = field(default_factory=list)

    def unsaved_line_notes(self) -> list[str]:
        """One warning per line field, however many lines had an unsaved formula in it."""
        notes = []
        for paths in self.unsaved_lines.values():
            where = self.unsaved[paths[0]]
            if len(paths) == 1:
                notes.append(_unsaved_note(paths[0], where))
            else:
                notes.append(
                    f"{where} and {len(paths) - 1} more cells below it hold formulas with no saved result (the file "
                    f"was not calculated when saved); they were read as empty and {', '.join(paths)} are marked for checking"
                )
        return notes


@dataclass(frozen=True, slots=True)
class _Total:
    amount: Decimal
    where: str
    confidence: float


class _Reader:
    """Turns a grid into orders with one partner's `TableSpec`."""

    def __init__(self, grid: _Grid, spec: TableSpec, template: EmailTemplate, channel: Channel):
        self.grid = grid
        self.spec = spec
        self.template = template
        self.channel = channel
        self.sheet_warnings: list[str] = list(grid.warnings)
        self._label_unsaved: dict[str, str] = {}  # label path -> where its value is an unsaved formula
        # A row's cells end at its last value; an unsaved formula further right still counts.
        self._unsaved_width: dict[int, int] = {}
        for row, col in grid.unsaved:
            self._unsaved_width[row] = max(self._unsaved_width.get(row, 0), col + 1)

    # The steps, in reading order.

    def orders(self) -> list[Extraction]:
        grid, spec = self.grid, self.spec
        found = _find_header(grid.rows, spec)
        if found is None:
            raise self._no_header()
        header_number, header_cells = found
        columns = _match_columns(header_cells, spec)
        if "lines.quantity" not in columns:
            names = ", ".join(repr(n) for n in spec.columns["lines.quantity"])
            have = ", ".join(repr(_text(v)) for v in header_cells if v is not None)
            raise ExtractionError(
                f"the header row ({grid.place(header_number)}) has no quantity column: looked for {names}; it has {have}",
                reason="EXTRACT_NO_TABLE",
                position=grid.where(grid.place(header_number)),
            )
        at = next(i for i, (n, _) in enumerate(grid.rows) if n == header_number)
        body: list[tuple[int, list[_Value]]] = []
        stop: tuple[int, list[_Value]] | None = None
        after: list[tuple[int, list[_Value]]] = []
        for number, cells in grid.rows[at + 1 :]:
            if stop is not None:
                after.append((number, cells))
            elif self._is_stop(cells):
                stop = (number, cells)
            else:
                body.append((number, cells))
        labels = self._labels(grid.rows[:at] + after)
        if "po_number" not in columns and "po_number" not in labels:
            raise self._no_po()
        orders = self._rows(body, columns, labels.get("po_number"))
        if not orders:
            raise ExtractionError(
                f"the table under the header row ({grid.place(header_number)}) has no order rows",
                reason="EXTRACT_NO_LINES",
                position=grid.where(grid.place(header_number)),
            )
        sheet_totals: list[_Total] = []
        if "totals.total" in labels:
            stated = labels.pop("totals.total")
            sheet_totals.append(_Total(stated.value, stated.where, stated.confidence))
        if stop is not None:
            sheet_totals.extend(self._stop_total(*stop))
        return self._build(orders, labels, sheet_totals)

    def _no_header(self) -> ExtractionError:
        grid, spec = self.grid, self.spec
        names = ", ".join(repr(n) for names in spec.columns.values() for n in names)
        if spec.header_row is not None:
            why = f"row {spec.header_row} (the template's table.header_row) is empty"
        else:
            why = f"none of the first {HEADER_SEARCH_ROWS} rows has two of the configured column names ({names})"
        first = next((cells for _, cells in grid.rows), None)
        seen = " | ".join(_text(v) for v in first if v is not None)[:200] if first else "nothing"
        sheet = f" on sheet {grid.sheet}" if grid.sheet else ""
        return ExtractionError(
            f"no table header was found{sheet}: {why}; the first row with content reads: {seen}",
            reason="EXTRACT_NO_TABLE",
            position=f"attachment {grid.label}",
        )

    def _no_po(self) -> ExtractionError:
        spec = self.spec
        looked = [f"a column {n!r}" for n in spec.columns.get("po_number", [])]
        looked += [f"a label {n!r}" for n in spec.labels.get("po_number", [])]
        return ExtractionError(
            f"no PO number was found: the table has none of {', '.join(looked)}",
            reason="EXTRACT_NO_PO",
            position=f"attachment {self.grid.label}",
        )

    def _is_stop(self, cells: Sequence[_Value]) -> bool:
        first = next((v for v in cells if v is not None), None)
        if first is None or not self.spec.stop_at:
            return False
        text = _norm(_text(first))
        for word in self.spec.stop_at:
            key = _norm(word)
            if text == key or (text.startswith(key) and not text[len(key)].isalnum()):
                return True
        return False

    def _stop_total(self, number: int, cells: list[_Value]) -> list[_Total]:
        """The amount in a stop row: its right-most cell that reads as one."""
        grid = self.grid
        first = next(i for i, v in enumerate(cells) if v is not None)
        what = f"row {_text(cells[first])!r}"
        for i in range(self._width(number, cells) - 1, first, -1):
            if (number, i) in grid.unsaved:
                self.sheet_warnings.append(
                    f"the total in {grid.where(grid.cell(number, i))} is a formula with no saved result "
                    "(the file was not calculated when saved); the lines were not checked against it"
                )
                return []
            value = cells[i] if i < len(cells) else None
            if value is None:
                continue
            amount = value if isinstance(value, Decimal) else None
            confidence = 1.0
            if isinstance(value, str):
                parsed = parse_amount(value, decimal_comma=self.template.decimal_comma)
                if parsed is not None:
                    amount, confidence = parsed
            if amount is not None:
                return [_Total(amount, grid.where(f"{grid.cell(number, i)} ({what})"), confidence)]
        # "Total: 1,234.50" in one cell
        head = _text(cells[first])
        if ":" in head:
            parsed = parse_amount(head.partition(":")[2], decimal_comma=self.template.decimal_comma)
            if parsed is not None:
                return [_Total(parsed[0], grid.where(f"{grid.cell(number, first)} ({what})"), parsed[1])]
        return []

    def _width(self, number: int, cells: Sequence[_Value]) -> int:
        return max(len(cells), self._unsaved_width.get(number, 0))

    # Labels above and below the table.

    def _labels(self, rows: Sequence[tuple[int, list[_Value]]]) -> dict[str, Found]:
        grid, spec = self.grid, self.spec
        keys: list[tuple[str, str, float, re.Pattern[str]]] = []
        for path, names in spec.labels.items():
            for rank, name in enumerate(names):
                key = _label_key(name)
                words = r"\s+".join(re.escape(w) for w in key.split())
                inline = re.compile(rf"\s*{words}\s*:\s*(\S.*)", re.IGNORECASE | re.DOTALL)
                keys.append((path, key, 1.0 if rank == 0 else 0.9, inline))
        all_keys = {k for _, k, _, _ in keys}
        found: dict[str, Found] = {}
        for number, cells in rows:
            for i, value in enumerate(cells):
                if not isinstance(value, str):
                    continue
                key_here = _label_key(value)
                for path, key, rank_confidence, inline in keys:
                    hit: tuple[int, _Value] | None = None
                    if key_here == key:
                        hit = self._value_right_of(number, cells, i, all_keys)
                    elif (m := inline.fullmatch(value)) is not None:
                        hit = (i, m.group(1).strip())
                    if hit is None:
                        continue
                    col, raw = hit
                    place = f"{grid.cell(number, col)} (label {value!r})"
                    if raw is None:  # an unsaved formula
                        if path not in self._label_unsaved:
                            self._label_unsaved[path] = grid.where(place)
                            self.sheet_warnings.append(_unsaved_note(path, grid.where(place)))
                        break
                    converted, confidence = self._convert(path, raw, place)
                    new = Found(converted, grid.where(place), min(rank_confidence, confidence))
                    old = found.get(path)
                    if old is None:
                        found[path] = new
                    elif old.value != new.value:
                        found[path] = Found(old.value, old.where, min(old.confidence, _MISMATCH_CONFIDENCE))
                        self.sheet_warnings.append(_disagree(path, old, new))
                    break
        return found

    def _value_right_of(self, number: int, cells: Sequence[_Value], i: int, labels: set[str]) -> tuple[int, _Value] | None:
        """(column, value) of the next non-empty cell right of a label; value None for a
        formula with no saved result; None if there is none (or it is another label)."""
        for j in range(i + 1, self._width(number, cells)):
            if (number, j) in self.grid.unsaved:
                return j, None
            value = cells[j] if j < len(cells) else None
            if value is None:
                continue
            if isinstance(value, str) and _label_key(value) in labels:
                return None
            return j, value
        return None

    # The table's rows.

    def _rows(
        self,
        body: Sequence[tuple[int, list[_Value]]],
        columns: dict[str, list[_Column]],
        label_po: Found | None,
    ) -> list[_Order]:
        grid = self.grid
        orders: dict[str, _Order] = {}
        current: _Order | None = None
        header_text = {c.index: _norm(c.header) for cols in columns.values() for c in cols}
        for number, cells in body:
            mapped = {i: cells[i] for i in header_text if i < len(cells) and cells[i] is not None}
            unsaved = {i for i in header_text if (number, i) in grid.unsaved}
            if not mapped and not unsaved:
                continue
            if len(mapped) >= 2 and all(_norm(_text(v)) == header_text[i] for i, v in mapped.items()):
                continue  # the header repeated (a printout's page break)
            values, missing = self._row_values(number, cells, columns)
            po = values.pop("po_number", None)
            if po is not None:
                current = orders.get(str(po.value))
                if current is None:
                    current = orders[str(po.value)] = _Order(po)
            elif current is None:
                if label_po is None:
                    raise ExtractionError(
                        f"{grid.place(number)} holds an order row but no PO number, and no row above it gives one",
                        reason="EXTRACT_NO_PO",
                        position=grid.where(grid.place(number)),
                    )
                current = orders[str(label_po.value)] = _Order(label_po)
            self._add_row(current, number, values, missing, columns)
        return list(orders.values())

    def _row_values(
        self, number: int, cells: Sequence[_Value], columns: dict[str, list[_Column]]
    ) -> tuple[dict[str, Found], dict[str, str]]:
        """The row's values by field path, and the paths whose cell is an unsaved formula."""
        grid = self.grid
        values: dict[str, Found] = {}
        missing: dict[str, str] = {}
        for path, cols in columns.items():
            if _ALL_FIELDS[path].kind == "text_list":
                items: list[str] = []
                headers: list[str] = []
                for col in cols:
                    if (number, col.index) in grid.unsaved:
                        missing[path] = grid.where(grid.place(number, [col.header]))
                        continue
                    raw = cells[col.index] if col.index < len(cells) else None
                    if raw is not None:
                        items.append(self._cell_text(raw, grid.place(number, [col.header])))
                        headers.append(col.header)
                if items:
                    values[path] = Found(items, grid.where(grid.place(number, headers)), min(c.confidence for c in cols))
                continue
            col = cols[0]
            place = grid.place(number, [col.header])
            if (number, col.index) in grid.unsaved:
                missing[path] = grid.where(place)
                continue
            raw = cells[col.index] if col.index < len(cells) else None
            if raw is None:
                continue
            converted, confidence = self._convert(path, raw, place)
            values[path] = Found(converted, grid.where(place), min(col.confidence, confidence))
        return values, missing

    def _add_row(
        self, order: _Order, number: int, values: dict[str, Found], missing: dict[str, str], columns: dict[str, list[_Column]]
    ) -> None:
        grid = self.grid
        line = {path.removeprefix("lines."): f for path, f in values.items() if path.startswith("lines.")}
        line_missing = {path.removeprefix("lines."): w for path, w in missing.items() if path.startswith("lines.")}
        for path, f in values.items():
            if path.startswith("lines."):
                continue
            old = order.header.get(path)
            if old is None:
                order.header[path] = f
            elif old.value != f.value:
                order.header[path] = Found(old.value, old.where, min(old.confidence, _MISMATCH_CONFIDENCE))
                order.warnings.append(f"PO {order.po.value}: " + _disagree(path, old, f))
        for path, where in missing.items():
            if not path.startswith("lines.") and path not in order.unsaved:
                order.unsaved[path] = where
                order.warnings.append(_unsaved_note(path, where))
        if not line and not line_missing:
            return
        if "quantity" not in line:
            qty = columns["lines.quantity"][0]
            place = grid.place(number, [qty.header])
            if "quantity" in line_missing:
                why = "its quantity cell is a formula with no saved result (the file was not calculated when saved)"
            else:
                why = "its quantity cell is empty"
            raise ExtractionError(
                f"{grid.place(number)} is an order line but {why}", reason="EXTRACT_BAD_VALUE", position=grid.where(place)
            )
        index = len(order.lines)
        for key, where in line_missing.items():
            order.unsaved[f"lines[{index}].{key}"] = where
            order.unsaved_lines.setdefault(key, []).append(f"lines[{index}].{key}")
        order.lines.append(line)

    # Values.

    def _cell_text(self, value: _Value, place: str) -> str:
        text = _text(value)
        if self.grid.checks_cells and len(text) > MAX_CELL_CHARS:
            raise _limit(f"a cell holds {len(text):,} characters; the limit is {MAX_CELL_CHARS:,}", self.grid.where(place))
        return text

    def _convert(self, path: str, value: _Value, place: str) -> tuple[Any, float]:
        """A cell's value for `path`, with the confidence of its reading."""
        spec = _ALL_FIELDS[path]
        template = self.template
        if spec.kind == "text":
            return self._cell_text(value, place), 1.0
        if spec.kind == "text_list":
            return [self._cell_text(value, place)], 1.0
        if spec.kind in ("amount", "integer"):
            if isinstance(value, Decimal):
                number, confidence = value, 1.0
            else:
                parsed = parse_amount(self._cell_text(value, place), decimal_comma=template.decimal_comma) if isinstance(value, str) else None
                if parsed is None:
                    raise self._bad(path, value, place, "a number")
                number, confidence = parsed
            if spec.kind == "amount":
                return number, confidence
            if number != number.to_integral_value():
                raise self._bad(path, value, place, "a whole number")
            if number.adjusted() >= _MAX_WHOLE_DIGITS:  # also past 4,300 digits Python cannot print it
                raise self._bad(path, value, place, f"a whole number of at most {_MAX_WHOLE_DIGITS} digits")
            return int(number), confidence
        if spec.kind == "date":
            if isinstance(value, dt.datetime):
                return value.date(), 1.0
            if isinstance(value, dt.date):
                return value, 1.0
            parsed_date = None
            if isinstance(value, str):
                parsed_date = parse_date(self._cell_text(value, place), formats=template.date_formats or None, day_first=template.day_first)
            if parsed_date is None:
                raise self._bad(path, value, place, "a date")
            return parsed_date
        # choice
        text = _norm(self._cell_text(value, place))
        for choice in spec.choices:
            if text == choice.casefold():
                return choice, 1.0
        raise self._bad(path, value, place, "one of " + ", ".join(spec.choices))

    def _bad(self, path: str, value: _Value, place: str, what: str) -> ExtractionError:
        shown = _text(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return ExtractionError(
            f"{place}: {shown!r} is not {what} (for {path})", reason="EXTRACT_BAD_VALUE", position=self.grid.where(place)
        )

    # Orders.

    def _build(self, orders: list[_Order], labels: dict[str, Found], sheet_totals: list[_Total]) -> list[Extraction]:
        label_unsaved = self._label_unsaved
        single = len(orders) == 1
        if not single and sheet_totals:
            self._check_all(orders, sheet_totals)
        extractions: list[Extraction] = []
        for order in orders:
            draft = Draft(self.channel)
            draft.warnings.extend(self.sheet_warnings)
            draft.set("po_number", order.po.value, order.po.where, order.po.confidence)
            for path, f in labels.items():
                if path != "po_number":
                    draft.set(path, f.value, f.where, f.confidence)
            for path, f in order.header.items():
                old = draft.fields.get(path)
                if old is None:
                    draft.set(path, f.value, f.where, f.confidence)
                elif old.value != f.value:
                    draft.lower(path, _MISMATCH_CONFIDENCE)
                    draft.warnings.append(f"PO {order.po.value}: " + _disagree(path, old, f))
            draft.warnings.extend(order.warnings)
            draft.warnings.extend(order.unsaved_line_notes())
            if "currency" not in draft.fields and self.template.currency:
                draft.set("currency", self.template.currency, _TEMPLATE_WHERE, 1.0)
            for line in order.lines:
                draft.add_line(line)
            checks: list[_Total] = []
            column_total = order.header.get("totals.total")
            if column_total is not None:
                checks.append(_Total(column_total.value, column_total.where, column_total.confidence))
            if single:  # a total above or below the table is this order's
                for total in sheet_totals:
                    if "totals.total" not in draft.fields:
                        draft.set("totals.total", total.amount, total.where, total.confidence)
                    checks.append(total)
            for total in checks:
                self._check(draft, total, draft.lines)
            unsaved = {**{p: w for p, w in label_unsaved.items() if p != "po_number"}, **order.unsaved}
            absent: dict[str, str] = {}
            for path, where in unsaved.items():
                if path in draft.fields:
                    draft.lower(path, _UNSAVED_CONFIDENCE)
                else:
                    absent[path] = where
            extraction = draft.build()
            for path, where in absent.items():
                extraction.provenance.setdefault(path, f"{where} (a formula with no saved result)")
                extraction.confidence.setdefault(path, _UNSAVED_CONFIDENCE)
            extractions.append(extraction)
        return extractions

    def _check(self, draft: Draft, total: _Total, lines: list[dict[str, Found]]) -> None:
        """Compare a stated total with the lines; on a mismatch mark it and the prices 0.5."""
        computed, why = _lines_sum(lines)
        if computed is None:
            draft.warnings.append(f"the total in {total.where} was not checked against the lines: {why}")
            return
        if _same_amount(total.amount, computed, len(lines)):
            return
        draft.lower("totals.total", _MISMATCH_CONFIDENCE)
        _lower_prices(lines)
        draft.warnings.append(
            f"the lines add up to {computed:f} but {total.where} says {total.amount:f}: "
            "the total and the unit prices are marked for checking"
        )

    def _check_all(self, orders: list[_Order], totals: list[_Total]) -> None:
        """A sheet-wide total under several POs: compared with all their lines."""
        lines = [line for order in orders for line in order.lines]
        computed, why = _lines_sum(lines)
        pos = ", ".join(str(o.po.value) for o in orders)
        for total in totals:
            if computed is None:
                note = f"the total in {total.where} covers POs {pos} and was not checked against their lines: {why}"
            elif _same_amount(total.amount, computed, len(lines)):
                continue
            else:
                for order in orders:
                    _lower_prices(order.lines)
                note = (
                    f"the lines of POs {pos} add up to {computed:f} but {total.where} says {total.amount:f}: "
                    "the unit prices are marked for checking"
                )
            for order in orders:
                order.warnings.append(note)


def _lines_sum(lines: list[dict[str, Found]]) -> tuple[Decimal | None, str]:
    total = Decimal(0)
    for line in lines:
        price = line.get("unit_price")
        if price is None:
            return None, f"{line['quantity'].where.rpartition(', column')[0]} has no unit price"
        total += line["quantity"].value * price.value
    return total, ""


def _same_amount(stated: Decimal, computed: Decimal, count: int) -> bool:
    """Equal within rounding: half a unit of the stated total's last decimal (at least the
    cent) per line, since each line's amount may have been rounded before it was added."""
    exponent = stated.as_tuple().exponent
    places = max(2, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
    tolerance = Decimal(5).scaleb(-places - 1) * max(count, 1)
    return abs(stated - computed) <= tolerance


def _lower_prices(lines: list[dict[str, Found]]) -> None:
    for line in lines:
        price = line.get("unit_price")
        if price is not None and price.confidence > _MISMATCH_CONFIDENCE:
            line["unit_price"] = Found(price.value, price.where, _MISMATCH_CONFIDENCE)


def _disagree(path: str, old: Found, new: Found) -> str:
    return (
        f"{path} reads {_shown(old.value)} in {old.where} but {_shown(new.value)} in {new.where}; "
        "the first is kept and marked for checking"
    )


def _unsaved_note(path: str, where: str) -> str:
    return (
        f"{where} holds a formula with no saved result (the file was not calculated when saved); "
        f"it was read as empty and {path} is marked for checking"
    )


def _shown(value: Any) -> str:
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")

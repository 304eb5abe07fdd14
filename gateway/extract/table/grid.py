"""A sheet as read (`_Grid`: rows of cells, each text, a Decimal, a date or empty), the
limits every reader enforces (EXTRACT_LIMIT), and how cells and header labels compare.
See "Limits" in the package docstring (`gateway.extract.table`).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from gateway.extract.base import ExtractionError

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
_IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".emf",
    ".wmf",
    ".svg",
    ".ico",
)
_FORMULA_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s>/]")
_SIGNIFICANT = 15  # digits Excel keeps of a number
_MAX_WHOLE_DIGITS = (
    18  # a count or a number of days; also fits the 64-bit integers of databases and ERPs
)
_UNSAVED_CONFIDENCE = 0.5
_MISMATCH_CONFIDENCE = 0.5
_TEMPLATE_WHERE = "the partner's e-mail template"
# catch_warnings swaps process-wide state; two threads reading workbooks at once must not
# interleave their enter/exit (the service polls sources on a thread pool).
_WARNINGS_LOCK = threading.Lock()

_Value = str | Decimal | dt.date | None  # a cell as read (dt.datetime is a dt.date)
_Kind = Literal["text", "text_list", "amount", "integer", "date", "choice"]

# -- a sheet as read ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Grid:
    """The rows with content of one CSV or sheet, and what reading them noticed."""

    label: str
    sheet: str | None  # the XLSX sheet's name
    rows: list[tuple[int, list[_Value]]]  # (1-based row number, cells), rows with content only
    unsaved: set[tuple[int, int]] = field(
        default_factory=set
    )  # (row, 0-based column): formula, no result
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


def _limit(message: str, where: str) -> ExtractionError:
    return ExtractionError(message, reason="EXTRACT_LIMIT", position=where)

"""Reading an XLSX attachment into a `_Grid`, safely: the zip within limits, no DTD outside
images, defusedxml, the sheet the template names, numbers as Excel kept them, and formulas
saved without a result noted. See the package docstring (`gateway.extract.table`).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from gateway.extract.base import ExtractionError
from gateway.extract.table.grid import (
    _DTD_MARKS,
    _FORMULA_TAG,
    _IMAGE_SUFFIXES,
    _OLE,
    _SHEET_MAX_ROWS,
    _SIGNIFICANT,
    _WARNINGS_LOCK,
    MAX_COLUMNS,
    MAX_ROWS,
    _column_letter,
    _Grid,
    _limit,
    _Value,
)
from gateway.extract.table.spec import TableSpec
from gateway.formats.ziplimits import ZipProblem, is_zip, read_zip

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
            raise ExtractionError(
                f"{what} is past a limit for workbooks: {exc.message}", reason="EXTRACT_LIMIT"
            ) from exc
        raise ExtractionError(
            f"{what} is a damaged Excel workbook: {exc.message}", reason="EXTRACT_XLSX_INVALID"
        ) from exc
    parts = {e.name: e.data for e in entries}
    if "[Content_Types].xml" not in parts:
        raise ExtractionError(
            f"{what} is a ZIP archive but not an Excel workbook (it has no [Content_Types].xml)",
            reason="EXTRACT_XLSX_INVALID",
        )
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
                    raise _limit(
                        f"the sheet runs past row {_SHEET_MAX_ROWS:,}",
                        grid.where(grid.place(number)),
                    )
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
                    raise _limit(
                        f"the sheet has more than {MAX_ROWS:,} rows; the limit is {MAX_ROWS:,}",
                        grid.where(grid.place(number)),
                    )
        finally:
            close: Callable[[], object] | None = getattr(rows, "close", None)
            if close is not None:
                close()  # the sheet's XML stream, when the rows were not all read
        return grid
    finally:
        workbook.close()


def _guarded(
    rows: Iterable[Sequence[Any]], label: str, errors: tuple[type[BaseException], ...]
) -> Iterator[Sequence[Any]]:
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
        f"the workbook {label} has no sheet {name!r} (the template's table.sheet); it has {have}",
        reason="EXTRACT_NO_TABLE",
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
                if (
                    "f" in children
                    and col
                    and (
                        saved is None
                        or (not saved.text and element.get("t") not in ("str", "s", "inlineStr"))
                    )
                ):
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

"""Reading a CSV attachment into a `_Grid`: the encoding (a BOM, UTF-8, else Windows-1252
with a note), the delimiter (the template's, else sniffed among , ; tab |) and the limits.
See "How a sheet is read" in the package docstring (`gateway.extract.table`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from gateway.extract.base import ExtractionError
from gateway.extract.table.grid import (
    _DELIMITERS,
    _SHEET_MAX_ROWS,
    HEADER_SEARCH_ROWS,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_ROWS,
    _Grid,
    _limit,
)
from gateway.extract.table.reader import _find_header, _match_columns
from gateway.extract.table.spec import TableSpec

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
            raise _limit(
                f"row {number} has {len(cells)} columns; the limit is {MAX_COLUMNS}",
                grid.where(grid.place(number)),
            )
        for i, cell in enumerate(cells):
            if cell is not None and len(cell) > MAX_CELL_CHARS:
                raise _limit(
                    f"a cell holds {len(cell):,} characters; the limit is {MAX_CELL_CHARS:,}",
                    grid.where(grid.cell(number, i)),
                )
        grid.rows.append((number, list(cells)))
        if len(grid.rows) > MAX_ROWS:
            raise _limit(
                f"the CSV has more than {MAX_ROWS:,} rows; the limit is {MAX_ROWS:,}",
                grid.where(grid.place(number)),
            )
    return grid


def _csv_records(text: str, delimiter: str, label: str) -> Iterator[tuple[int, list[str | None]]]:
    """(1-based record number, cells stripped, trailing empties dropped) for records with content."""
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar='"',
        doublequote=True,
        strict=False,
    )
    number = 0
    try:
        for record in reader:
            number += 1
            if number > _SHEET_MAX_ROWS:
                raise _limit(
                    f"the CSV runs past {_SHEET_MAX_ROWS:,} rows",
                    f"attachment {label}, row {number}",
                )
            cells: list[str | None] = [c.strip() or None for c in record]
            while cells and cells[-1] is None:
                cells.pop()
            if cells:
                yield number, cells
    except csv.Error as exc:
        where = f"attachment {label}, row {number + 1}"
        if "field larger than field limit" in str(exc):
            raise _limit(
                f"a cell holds more than {MAX_CELL_CHARS:,} characters; the limit is {MAX_CELL_CHARS:,}",
                where,
            ) from exc
        raise ExtractionError(
            f"the CSV cannot be read ({exc})", reason="EXTRACT_CSV_INVALID", position=where
        ) from exc


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

"""CSV export that a spreadsheet opens as data, never as formulas.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read
by Excel, LibreOffice and Google Sheets as a formula (CSV injection: a partner name such as
``=HYPERLINK(...)`` arriving in an order). Such a cell is written with a leading ``'``, which
the spreadsheet shows as text. Numbers are written as numbers: only text is a risk.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["FORMULA_STARTS", "safe_cell", "write_csv", "write_rows"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value` as a CSV cell: times in ISO 8601, None empty, text that could start a formula
    prefixed with ``'``; numbers unchanged."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    text = value.isoformat() if isinstance(value, dt.date | dt.datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_rows(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """`header` then `rows` as CSV into `out`, every cell made safe (header included)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])


def write_csv(path: Path, row_type: Any, rows: Sequence[Any]) -> int:
    """`rows` of the dataclass `row_type` to `path`, one column per field (the header even
    when there are no rows); returns the number of rows written."""
    fields = [f.name for f in dataclasses.fields(row_type)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        write_rows(fh, fields, ([getattr(r, f) for f in fields] for r in rows))
    return len(rows)

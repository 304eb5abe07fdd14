"""From a grid to orders: the header row found by the template's labels, columns matched,
rows grouped by PO number, each cell read as its field's kind, and the totals checked
against the lines. See "How a sheet is read" in the package docstring
(`gateway.extract.table`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gateway.extract.base import Draft, Extraction, ExtractionError, Found, parse_amount, parse_date
from gateway.extract.table.grid import (
    _MAX_WHOLE_DIGITS,
    _MISMATCH_CONFIDENCE,
    _TEMPLATE_WHERE,
    _UNSAVED_CONFIDENCE,
    HEADER_SEARCH_ROWS,
    MAX_CELL_CHARS,
    _Grid,
    _label_key,
    _limit,
    _norm,
    _text,
    _Value,
)
from gateway.extract.table.spec import _ALL_FIELDS, TableSpec
from gateway.model import Channel

if TYPE_CHECKING:
    from gateway.extract.template import EmailTemplate

# -- from a grid to orders --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    index: int  # 0-based
    header: str  # as written in the header row
    confidence: float


def _find_header(
    rows: Sequence[tuple[int, Sequence[_Value]]], spec: TableSpec
) -> tuple[int, Sequence[_Value]] | None:
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
    headers: list[tuple[int, str, str]] = [
        (i, _norm(_text(v)), _text(v)) for i, v in enumerate(cells) if v is not None
    ]
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
    unsaved_lines: dict[str, list[str]] = field(
        default_factory=dict
    )  # line field -> its lines[i].x paths
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
        self._label_unsaved: dict[
            str, str
        ] = {}  # label path -> where its value is an unsaved formula
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
                return [
                    _Total(parsed[0], grid.where(f"{grid.cell(number, first)} ({what})"), parsed[1])
                ]
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
                        found[path] = Found(
                            old.value, old.where, min(old.confidence, _MISMATCH_CONFIDENCE)
                        )
                        self.sheet_warnings.append(_disagree(path, old, new))
                    break
        return found

    def _value_right_of(
        self, number: int, cells: Sequence[_Value], i: int, labels: set[str]
    ) -> tuple[int, _Value] | None:
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
            if len(mapped) >= 2 and all(
                _norm(_text(v)) == header_text[i] for i, v in mapped.items()
            ):
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
                    values[path] = Found(
                        items,
                        grid.where(grid.place(number, headers)),
                        min(c.confidence for c in cols),
                    )
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
        self,
        order: _Order,
        number: int,
        values: dict[str, Found],
        missing: dict[str, str],
        columns: dict[str, list[_Column]],
    ) -> None:
        grid = self.grid
        line = {
            path.removeprefix("lines."): f
            for path, f in values.items()
            if path.startswith("lines.")
        }
        line_missing = {
            path.removeprefix("lines."): w
            for path, w in missing.items()
            if path.startswith("lines.")
        }
        for path, f in values.items():
            if path.startswith("lines."):
                continue
            old = order.header.get(path)
            if old is None:
                order.header[path] = f
            elif old.value != f.value:
                order.header[path] = Found(
                    old.value, old.where, min(old.confidence, _MISMATCH_CONFIDENCE)
                )
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
                f"{grid.place(number)} is an order line but {why}",
                reason="EXTRACT_BAD_VALUE",
                position=grid.where(place),
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
            raise _limit(
                f"a cell holds {len(text):,} characters; the limit is {MAX_CELL_CHARS:,}",
                self.grid.where(place),
            )
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
                parsed = (
                    parse_amount(
                        self._cell_text(value, place), decimal_comma=template.decimal_comma
                    )
                    if isinstance(value, str)
                    else None
                )
                if parsed is None:
                    raise self._bad(path, value, place, "a number")
                number, confidence = parsed
            if spec.kind == "amount":
                return number, confidence
            if number != number.to_integral_value():
                raise self._bad(path, value, place, "a whole number")
            if (
                number.adjusted() >= _MAX_WHOLE_DIGITS
            ):  # also past 4,300 digits Python cannot print it
                raise self._bad(
                    path, value, place, f"a whole number of at most {_MAX_WHOLE_DIGITS} digits"
                )
            return int(number), confidence
        if spec.kind == "date":
            if isinstance(value, dt.datetime):
                return value.date(), 1.0
            if isinstance(value, dt.date):
                return value, 1.0
            parsed_date = None
            if isinstance(value, str):
                parsed_date = parse_date(
                    self._cell_text(value, place),
                    formats=template.date_formats or None,
                    day_first=template.day_first,
                )
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
            f"{place}: {shown!r} is not {what} (for {path})",
            reason="EXTRACT_BAD_VALUE",
            position=self.grid.where(place),
        )

    # Orders.

    def _build(
        self, orders: list[_Order], labels: dict[str, Found], sheet_totals: list[_Total]
    ) -> list[Extraction]:
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
                checks.append(
                    _Total(column_total.value, column_total.where, column_total.confidence)
                )
            if single:  # a total above or below the table is this order's
                for total in sheet_totals:
                    if "totals.total" not in draft.fields:
                        draft.set("totals.total", total.amount, total.where, total.confidence)
                    checks.append(total)
            for total in checks:
                self._check(draft, total, draft.lines)
            unsaved = {
                **{p: w for p, w in label_unsaved.items() if p != "po_number"},
                **order.unsaved,
            }
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
            draft.warnings.append(
                f"the total in {total.where} was not checked against the lines: {why}"
            )
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

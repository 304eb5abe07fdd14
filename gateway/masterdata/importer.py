"""`gateway data import KIND FILE`: master data from CSV or XLSX into the store.

A file's columns are found by a small declarative mapping (``mappings/masterdata/KIND.yaml``,
or another named with ``--mapping``): for each field, the header names it may have::

    kind: items
    columns:
      sku: [sku, item number, article]     # header names, compared without case or punctuation
      gtin: [gtin, ean, upc]

The file is read as a stream (CSV row by row, XLSX through openpyxl's read-only mode) and
written in chunks inside one transaction. Every problem names its row and column and says what
to do; when any row is bad nothing of the file is stored, unless ``skip_bad`` is set (then the
good rows are stored and the bad ones reported). Each stored row records the file's name as
its source and the time of the import.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError, GatewayError
from gateway.masterdata.model import KINDS

if TYPE_CHECKING:
    from gateway.store import Store

__all__ = ["FIELDS", "ColumnMapping", "ImportProblem", "ImportRefused", "ImportReport", "import_file", "load_mapping", "pull_stock"]

CHUNK = 5000  # rows per INSERT batch
MAX_PROBLEMS = 200  # kept for the report; the count goes on
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


class ImportRefused(GatewayError):
    """The file cannot be imported as a whole (unreadable, no header, a required column missing)."""


# -- field types: text in, a value out, or ValueError with what to do ---------------------------


def _text(limit: int) -> Callable[[Any], Any]:
    def parse(value: Any) -> str | None:
        text = _cell(value)
        if text and len(text) > limit:
            raise ValueError(f"is {len(text)} characters long; at most {limit} fit")
        return text

    return parse


def _code(limit: int) -> Callable[[Any], Any]:
    def parse(value: Any) -> str | None:
        text = _cell(value)
        if text is None:
            return None
        if len(text) > limit or any(c.isspace() for c in text):
            raise ValueError(f"{text!r} is not a code: at most {limit} characters, no spaces")
        return text.upper()

    return parse


def _decimal(*, negative: bool = False) -> Callable[[Any], Any]:
    def parse(value: Any) -> Decimal | None:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        if isinstance(value, int | float):
            number = Decimal(str(value))
        else:
            text = _cell(value)
            if text is None:
                return None
            text = text.replace(" ", "").replace("\u00a0", "")
            if "," in text and "." not in text and text.count(",") == 1:
                text = text.replace(",", ".")  # 12,5: a decimal comma
            try:
                number = Decimal(text)
            except InvalidOperation:
                raise ValueError(f"{text!r} is not a number; write it like 1234.50") from None
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a number")
        if number < 0 and not negative:
            raise ValueError(f"{number} is negative; it must be 0 or more")
        exponent = number.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < -4:
            raise ValueError(f"{number} has more than 4 decimals")
        if abs(number) >= Decimal("1e14"):
            raise ValueError(f"{number} is too large")
        return number

    return parse


def _positive(value: Any) -> Decimal | None:
    number = _decimal()(value)
    if number is not None and number <= 0:
        raise ValueError(f"{number} must be more than 0")
    return number  # type: ignore[no-any-return]


_TRUE = {"y", "yes", "true", "1", "x", "j", "ja", "oui", "discontinued"}
_FALSE = {"n", "no", "false", "0", "nein", "non", "active"}


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _cell(value)
    if text is None:
        return None
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{text!r} is not yes or no; write Y or N")


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = _cell(value)
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def _currency(value: Any) -> str | None:
    text = _cell(value)
    if text is None:
        return None
    if not re.fullmatch(r"[A-Za-z]{3}", text):
        raise ValueError(f"{text!r} is not an ISO 4217 currency code (EUR, USD, ...)")
    return text.upper()


def _gtin(value: Any) -> str | None:
    text = _cell(value if not isinstance(value, int) else str(value))
    if text is None:
        return None
    if not text.isdigit() or len(text) not in (8, 12, 13, 14):
        raise ValueError(f"{text!r} is not a GTIN: 8, 12, 13 or 14 digits")
    digits = [int(c) for c in reversed(text[:-1])]
    check = (10 - sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits)) % 10) % 10
    if check != int(text[-1]):
        raise ValueError(f"{text!r} has a wrong check digit (expected {check}): a typo in the GTIN")
    return text


def _email(value: Any) -> str | None:
    text = _cell(value)
    if text is None:
        return None
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text) or len(text) > 320:
        raise ValueError(f"{text!r} is not an e-mail address")
    return text.lower()


def _uoms(value: Any) -> dict[str, Decimal] | None:
    """``CA=12; PL=480``: each unit sold and how many base units one holds."""
    text = _cell(value)
    if text is None:
        return None
    found: dict[str, Decimal] = {}
    for part in re.split(r"[;|]", text):
        if not part.strip():
            continue
        unit, sep, amount = part.replace(":", "=").partition("=")
        unit = unit.strip().upper()
        if not sep or not re.fullmatch(r"[A-Z0-9]{1,10}", unit):
            raise ValueError(f"{part.strip()!r} is not UNIT=FACTOR; write units like CA=12; PL=480")
        try:
            factor = Decimal(amount.strip())
        except InvalidOperation:
            raise ValueError(f"{amount.strip()!r} in {part.strip()!r} is not a number") from None
        if not factor.is_finite() or factor <= 0:
            raise ValueError(f"{unit} holds {amount.strip()} base units; it must be more than 0")
        found[unit] = factor
    return found


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a kind: how a cell becomes its value, and whether every row needs it."""

    parse: Callable[[Any], Any]
    required: bool = False
    help: str = ""


_SHIP_TO = ("name", "street", "city", "region", "postal_code", "country", "code")

FIELDS: dict[str, dict[str, Field]] = {
    "items": {
        "sku": Field(_text(100), True, "the seller's item number"),
        "gtin": Field(_gtin, help="GTIN/EAN/UPC, with a valid check digit"),
        "description": Field(_text(500)),
        "base_uom": Field(_code(10), help="the unit stock is counted in (EA)"),
        "uoms": Field(_uoms, help="units sold and base units in one: CA=12; PL=480"),
        "pack_size": Field(_positive, help="an order must be a multiple of it (base units)"),
        "weight_kg": Field(_decimal()),
        "length_cm": Field(_decimal()),
        "width_cm": Field(_decimal()),
        "height_cm": Field(_decimal()),
        "discontinued": Field(_bool, help="Y or N"),
    },
    "xrefs": {
        "partner": Field(_text(100), True, "the trading partner's name as configured"),
        "buyer_part_number": Field(_text(100), True, "the partner's own part number"),
        "sku": Field(_text(100), True, "our SKU it stands for"),
    },
    "prices": {
        "sku": Field(_text(100), True),
        "unit_price": Field(_decimal(), True, "per unit of `uom` (else per base unit)"),
        "currency": Field(_currency, True),
        "customer": Field(_text(100), help="account code for a contract price; empty: a list price"),
        "price_list": Field(_text(100)),
        "uom": Field(_code(10)),
        "min_quantity": Field(_decimal(), help="a quantity break"),
        "valid_from": Field(_date, help="YYYY-MM-DD"),
        "valid_to": Field(_date, help="YYYY-MM-DD, inclusive"),
    },
    "stock": {
        "sku": Field(_text(100), True),
        "warehouse": Field(_text(50), True),
        "on_hand": Field(_decimal(), True, "in base units"),
        "reorder_point": Field(_decimal()),
    },
    "accounts": {
        "code": Field(_text(100), True, "the customer account number"),
        "name": Field(_text(255)),
        "partner": Field(_text(100), help="the trading partner this account orders as"),
        "email": Field(_email, help="a cart or e-mail customer's address"),
        "channel": Field(_text(20)),
        "currency": Field(_currency),
        "credit_limit": Field(_decimal(), help="empty: no limit"),
        "open_balance": Field(_decimal(negative=True)),
        "payment_terms": Field(_text(100)),
        **{f"ship_to_{part}": Field(_text(255), help="one allowed ship-to per row; repeat the code for more") for part in _SHIP_TO},
    },
}
assert tuple(FIELDS) == KINDS


# -- mappings ---------------------------------------------------------------------------------


def _norm(header: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", header.lower()).split())


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """A kind's column mapping: normalized header name -> field."""

    kind: str
    name: str
    headers: Mapping[str, str]
    sheet: str | None = None


def _mapping_file(kind: str, name: str | None, roots: list[Path]) -> Path:
    if name and (name.endswith((".yaml", ".yml")) or "/" in name):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"--mapping {name}: no such file")
        return path
    wanted = name or kind
    if not _NAME.fullmatch(wanted):
        raise ConfigError(f"--mapping {wanted!r}: a mapping name is letters, digits, - and _ (or a path to a .yaml file)")
    for root in roots:
        path = root / "masterdata" / f"{wanted}.yaml"
        if path.is_file():
            return path
    raise ConfigError(f"no master data mapping {wanted!r}: looked for masterdata/{wanted}.yaml in {', '.join(str(r) for r in roots)}")


def load_mapping(kind: str, name: str | None = None, *, roots: list[Path] | None = None) -> ColumnMapping:
    """The mapping `name` (default: the kind's own) from the first of `roots` that has it
    (the configured mappings folder, then the shipped one). Every problem is a ConfigError
    naming the file and line."""
    import yaml

    from gateway.mapping.files import mappings_root

    if kind not in FIELDS:
        raise ConfigError(f"unknown master data kind {kind!r}; one of {', '.join(KINDS)}")
    path = _mapping_file(kind, name, [*(roots or []), mappings_root()])
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the mapping: {exc}") from None
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "columns" and isinstance(value, yaml.MappingNode):
                lines.update({k.value: k.start_mark.line + 1 for k, _ in value.value})
    problems: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
        raise ConfigError(f"{path}:1: a mapping needs `columns:` (field: [header names])")
    for key in sorted(set(data) - {"kind", "columns", "sheet", "description"}):
        problems.append(f"{path}: unknown key {key!r} (kind, columns, sheet, description)")
    if data.get("kind", kind) != kind:
        problems.append(f"{path}: this mapping is for {data.get('kind')!r}, not {kind!r}")
    fields = FIELDS[kind]
    headers: dict[str, str] = {}
    for target, names in data["columns"].items():
        where = f"{path}:{lines.get(str(target), 1)}"
        if target not in fields:
            problems.append(f"{where}: {kind} has no field {target!r} (fields: {', '.join(fields)})")
            continue
        listed = [names] if isinstance(names, str) else names
        if not isinstance(listed, list) or not all(isinstance(n, str) and n.strip() for n in listed):
            problems.append(f"{where}: {target}: give the header names as a list of text")
            continue
        for header in [target, *listed]:
            key = _norm(header)
            if headers.get(key, target) != target:
                problems.append(f"{where}: header {header!r} is given for both {headers[key]} and {target}")
            headers[key] = target
    if problems:
        raise ConfigError(problems)
    for target in fields:  # a field a mapping leaves out is still found by its own name
        headers.setdefault(_norm(target), target)
    sheet = data.get("sheet")
    return ColumnMapping(kind, str(path), headers, str(sheet) if sheet else None)


# -- reading files ----------------------------------------------------------------------------


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _csv_rows(path: Path, encoding: str) -> Iterator[tuple[int, list[Any]]]:
    with open(path, encoding=encoding, newline="") as fh:
        head = fh.read(8192)
        fh.seek(0)
        first = head.splitlines()[0] if head else ""
        delimiter = max(",;\t|", key=first.count) if first else ","
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            for number, row in enumerate(reader, start=1):
                yield number, list(row)
        except csv.Error as exc:
            raise ImportRefused(f"{path.name}: line {reader.line_num}: not readable as CSV ({exc})") from None


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, list[Any]]]:
    import openpyxl.xml
    from openpyxl.reader.excel import load_workbook

    if not openpyxl.xml.DEFUSEDXML:  # entities must be refused, never expanded
        raise ImportRefused(f"{path.name}: not read: openpyxl is not using defusedxml here; install defusedxml")
    load: Callable[..., Any] = load_workbook  # openpyxl has no type hints
    try:
        book = load(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign file
        raise ImportRefused(f"{path.name}: not readable as an XLSX workbook ({type(exc).__name__}: {exc})") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ImportRefused(f"{path.name}: no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})")
        ws = book[sheet] if sheet else book.worksheets[0]
        for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
            yield number, list(row)
    finally:
        book.close()


def _rows(path: Path, sheet: str | None, encoding: str) -> Iterator[tuple[int, list[Any]]]:
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PK\x03\x04":
        return _xlsx_rows(path, sheet)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        raise ImportRefused(f"{path.name}: not an XLSX workbook (an .xls from old Excel? save it as .xlsx or CSV)")
    return _csv_rows(path, encoding)


# -- the import -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One bad cell or row: where it is and what to do."""

    row: int
    column: str | None  # the header as written in the file, with its letter
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(slots=True)
class ImportReport:
    """What one `gateway data import` did."""

    kind: str
    file: str
    mapping: str
    rows: int = 0  # data rows read
    stored: int = 0  # rows written (an account with several ship-to rows counts once)
    removed: int = 0  # rows of the kind --replace removed
    bad_rows: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    committed: bool = False


def import_file(
    store: Store,
    kind: str,
    path: Path,
    *,
    mapping: ColumnMapping | None = None,
    replace: bool = False,
    skip_bad: bool = False,
    chunk: int = CHUNK,
    encoding: str = "utf-8",
) -> ImportReport:
    """Import one CSV or XLSX file of `kind`. Raises ImportRefused for a file that cannot be
    read at all; bad rows are in the report (and, without `skip_bad`, nothing is stored)."""
    from gateway.store.masterdata import loading

    started = time.perf_counter()
    mapping = mapping or load_mapping(kind)
    fields = FIELDS[kind]
    report = ImportReport(kind, path.name, mapping.name)
    try:
        rows = _rows(path, mapping.sheet, _encoding(encoding))
        header_row, header = next(((n, r) for n, r in rows if any(_cell(v) for v in r)), (0, []))
    except OSError as exc:
        raise ImportRefused(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise _not_text(path, encoding, exc) from None
    if not header:
        raise ImportRefused(f"{path.name}: the file is empty; the first row must name the columns")

    columns: list[tuple[int, str, str]] = []  # (index, field, header as written)
    seen: dict[str, str] = {}
    for index, raw in enumerate(header):
        title = _cell(raw) or ""
        target = mapping.headers.get(_norm(title))
        label = f'"{title}" ({_column_letter(index)})'
        if target is None:
            if title:
                report.ignored_columns.append(title)
            continue
        if target in seen:
            raise ImportRefused(f"{path.name}: row {header_row}: columns {seen[target]} and {label} both map to {target}; remove one")
        seen[target] = label
        columns.append((index, target, label))
    missing = [f for f, spec in fields.items() if spec.required and f not in seen]
    if missing:
        expected = "; ".join(f"{f} (header {_aliases(mapping, f)})" for f in missing)
        raise ImportRefused(
            f"{path.name}: row {header_row}: no column for {expected}. Rename the column or add its header to {mapping.name}"
        )

    present = {target for _, target, _ in columns}
    if kind == "accounts":
        present = (present - {f"ship_to_{p}" for p in _SHIP_TO}) | {"ship_to"}
    keys_seen: dict[tuple[Any, ...], int] = {}
    accounts: dict[str, tuple[dict[str, Any], list[dict[str, str]]]] = {}
    pending: list[dict[str, Any]] = []

    def problem(row: int, column: str | None, message: str) -> None:
        if len(report.problems) < MAX_PROBLEMS:
            report.problems.append(ImportProblem(row, column, message))

    try:
        with loading(store, kind, source=path.name, fields=present, replace=replace) as loader:
            for number, raw in rows:
                if not any(_cell(v) for v in raw):
                    continue
                report.rows += 1
                values: dict[str, Any] = {}
                bad = False
                for index, target, label in columns:
                    cell = raw[index] if index < len(raw) else None
                    spec = fields[target]
                    try:
                        value = spec.parse(cell)
                    except ValueError as exc:
                        problem(number, label, f"{target}: {exc}")
                        bad = True
                        continue
                    if value is None and spec.required:
                        problem(number, label, f"{target} is empty; every row needs it ({spec.help or target})")
                        bad = True
                        continue
                    if value is not None:
                        values[target] = value
                if not bad:
                    bad = not _check_row(kind, number, values, seen, keys_seen, problem)
                if bad:
                    report.bad_rows += 1
                    if not skip_bad:
                        loader.discard()
                    continue
                if kind == "accounts":
                    _collect_account(values, accounts)
                    continue
                pending.append(values)
                if len(pending) >= chunk:
                    loader.write(pending)
                    pending = []
            if kind == "accounts":
                pending = [{**acct, "ship_to": ship_to} for acct, ship_to in accounts.values()]
            loader.write(pending)
            report.stored, report.committed = loader.written, not loader.discarded
            if loader.discarded:
                report.stored = 0
        report.removed = loader.removed if report.committed else 0
    except UnicodeDecodeError as exc:
        raise _not_text(path, encoding, exc) from None
    report.seconds = time.perf_counter() - started
    return report


def _encoding(name: str) -> str:
    import codecs

    try:
        found = codecs.lookup(name).name
    except LookupError:
        raise ConfigError(f"--encoding {name!r}: no such text encoding (utf-8, cp1252, latin-1, ...)") from None
    return "utf-8-sig" if found == "utf-8" else found  # a BOM is not part of the first header


def _not_text(path: Path, encoding: str, exc: UnicodeDecodeError) -> ImportRefused:
    return ImportRefused(
        f"{path.name}: byte {exc.start} is not {encoding} text; save the CSV as UTF-8, "
        "or name its encoding with --encoding (an export from Excel on Windows is often cp1252)"
    )


def _aliases(mapping: ColumnMapping, target: str) -> str:
    names = sorted(h for h, f in mapping.headers.items() if f == target)
    return " or ".join(f'"{n}"' for n in names[:5])


def _check_row(
    kind: str,
    number: int,
    values: dict[str, Any],
    columns: Mapping[str, str],
    keys_seen: dict[tuple[Any, ...], int],
    problem: Callable[[int, str | None, str], None],
) -> bool:
    """Checks across the cells of one row, and one key once per file."""
    if kind == "prices":
        start, end = values.get("valid_from"), values.get("valid_to")
        if start and end and end < start:
            problem(number, columns.get("valid_to"), f"valid_to {end} is before valid_from {start}; swap them or fix the year")
            return False
    if kind == "accounts":
        return True  # one account over several rows: each row adds a ship-to
    key: tuple[Any, ...]
    if kind == "items":
        key = (values["sku"],)
    elif kind == "xrefs":
        key = (values["partner"], values["buyer_part_number"])
    elif kind == "stock":
        key = (values["sku"], values["warehouse"])
    else:
        key = (
            values["sku"], values.get("customer"), values.get("price_list"), values["currency"],
            values.get("uom"), values.get("min_quantity") or Decimal(0), values.get("valid_from"),
        )
    first = keys_seen.setdefault(key, number)
    if first != number:
        what = " / ".join(str(k) for k in key if k is not None)
        problem(number, None, f"{what} is already on row {first}; keep one of the two rows")
        return False
    return True


def _collect_account(values: dict[str, Any], accounts: dict[str, tuple[dict[str, Any], list[dict[str, str]]]]) -> None:
    address = {p: values.pop(f"ship_to_{p}") for p in _SHIP_TO if f"ship_to_{p}" in values}
    if "country" in address:
        address["country"] = address["country"].upper()
    code = values["code"]
    if code not in accounts:
        accounts[code] = (values, [])
    if address:
        accounts[code][1].append(address)



def pull_stock(store: Store, rows: list[dict[str, Any]], *, source: str, replace: bool = False) -> tuple[int, int]:
    """Store stock rows a connector read from its system (`gateway data pull stock`): each
    (sku, warehouse, on_hand) checked as an import's cells are, written in one transaction;
    `replace` removes the stock rows of SKUs and warehouses the system no longer lists,
    only among those this source reported: stock from other systems or files stays.
    Returns (written, removed). ImportRefused naming the first bad row."""
    from gateway.store.masterdata import loading

    fields = FIELDS["stock"]
    clean: list[dict[str, Any]] = []
    for n, row in enumerate(rows, 1):
        try:
            values = {name: fields[name].parse(row.get(name)) for name in ("sku", "warehouse", "on_hand")}
        except ValueError as exc:
            raise ImportRefused(f"{source}: row {n}: {exc}") from None
        if any(v is None for v in values.values()):
            raise ImportRefused(f"{source}: row {n} has no SKU, warehouse or on-hand quantity: {row!r}")
        clean.append(values)
    with loading(store, "stock", source=source, fields={"sku", "warehouse", "on_hand"}, replace=replace,
                 replace_own_rows_only=True) as loader:
        for start in range(0, len(clean), 5_000):
            loader.write(clean[start : start + 5_000])
    return loader.written, loader.removed

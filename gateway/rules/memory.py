"""Master data and order history held in memory: for tests, and for trying rules without a
database (``masterdata: {folder: ...}`` reads a folder of CSV files at start-up).

The folder's files, each optional, with a header row (column names as below; unknown columns
are an error, so a typo is not silently ignored):

- ``items.csv``: sku, description, gtin, base_uom, uoms (``CA=12;PK=6``: base units in one), pack_size,
  weight_kg, discontinued (true/false)
- ``xrefs.csv``: partner, buyer_part_number, sku
- ``prices.csv``: sku, unit_price, currency, uom, customer, price_list, min_quantity, valid_from, valid_to
- ``stock.csv``: sku, warehouse, on_hand, reserved, reorder_point
- ``accounts.csv``: code, name, partner, email, channel, currency, credit_limit, open_balance, payment_terms
- ``history.csv``: account, orders (how many orders it placed before)
- ``usual.csv``: account, sku, quantity (what it usually orders of the SKU)

A bad value is a ConfigError naming file, row and column.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.masterdata.model import Account, AccountKey, Item, Price, StockLevel

__all__ = ["InMemoryHistory", "InMemoryMasterData", "load_folder"]


class InMemoryMasterData:
    """A :class:`gateway.masterdata.model.MasterData` over plain lists. Counts its calls
    (``calls``) so a test can tell a batch costs a few look-ups, not one per line."""

    def __init__(
        self,
        items: Iterable[Item] = (),
        xrefs: Mapping[tuple[str, str], str] | None = None,  # (partner, buyer part) -> sku
        prices: Iterable[Price] = (),
        stock: Iterable[StockLevel] = (),
        accounts: Iterable[Account] = (),
    ):
        self._items = {i.sku: i for i in items}
        self._gtins = {i.gtin: i for i in self._items.values() if i.gtin}
        self._xrefs = dict(xrefs or {})
        self._prices: dict[str, list[Price]] = {}
        for p in prices:
            self._prices.setdefault(p.sku, []).append(p)
        # SKUs whose only price is a list price valid on every day: their list is the answer
        # for every customer and day (most of a catalogue; the look-up is per order line).
        self._plain = {sku for sku, found in self._prices.items() if len(found) == 1 and _always(found[0])}
        self._stock: dict[str, list[StockLevel]] = {}
        for s in stock:
            self._stock.setdefault(s.sku, []).append(s)
        self._accounts = list(accounts)
        self._by: dict[str, dict[str, Account]] = {"code": {}, "partner": {}, "email": {}}
        for a in self._accounts:
            for attr in ("code", "partner", "email"):
                value = getattr(a, attr)
                if value is not None:
                    self._by[attr].setdefault(value.lower() if attr == "email" else value, a)
        self.calls = 0

    def items(self, skus: Collection[str]) -> Mapping[str, Item]:
        self.calls += 1
        return {s: self._items[s] for s in skus if s in self._items}

    def items_by_gtin(self, gtins: Collection[str]) -> Mapping[str, Item]:
        self.calls += 1
        return {g: self._gtins[g] for g in gtins if g in self._gtins}

    def cross_references(
        self, partner: str, buyer_part_numbers: Collection[str]
    ) -> Mapping[str, str]:
        self.calls += 1
        return {
            b: self._xrefs[(partner, b)] for b in buyer_part_numbers if (partner, b) in self._xrefs
        }

    def prices(self, skus: Collection[str], customer: str | None, day: dt.date) -> Mapping[str, list[Price]]:
        self.calls += 1
        out: dict[str, list[Price]] = {}
        plain = self._plain
        for sku in skus:
            found = self._prices.get(sku)
            if not found:
                continue
            if sku in plain:
                out[sku] = list(found)
                continue
            valid = [p for p in found if (p.customer is None or p.customer == customer) and p.valid_on(day)]
            if len(valid) > 1:
                valid.sort(key=lambda p: p.customer is None)  # contract prices first
            if valid:
                out[sku] = valid
        return out

    def stock(self, skus: Collection[str]) -> Mapping[str, list[StockLevel]]:
        self.calls += 1
        return {s: list(self._stock[s]) for s in skus if s in self._stock}

    def accounts(self, keys: Collection[AccountKey]) -> Mapping[AccountKey, Account | None]:
        self.calls += 1
        return {k: self._account(*k) for k in keys}

    def account(
        self, *, code: str | None = None, partner: str | None = None, email: str | None = None
    ) -> Account | None:
        self.calls += 1
        return self._account(code, partner, email)

    def _account(self, code: str | None, partner: str | None, email: str | None) -> Account | None:
        for want, attr in (
            (code, "code"),
            (partner, "partner"),
            (email.lower() if email else None, "email"),
        ):
            if want is not None and want in self._by[attr]:
                return self._by[attr][want]
        return None


def _always(price: Price) -> bool:
    """A list price valid on every day."""
    return price.customer is None and price.valid_from is None and price.valid_to is None


class InMemoryHistory:
    """An :class:`gateway.rules.context.OrderHistory` from dicts."""

    def __init__(
        self,
        counts: Mapping[str, int] | None = None,
        usual: Mapping[tuple[str, str], Decimal] | None = None,
        seen: Mapping[str, str] | None = None,
    ):
        self.counts = dict(counts or {})
        self.usual = dict(usual or {})
        self.fingerprints = dict(seen or {})

    def order_counts(self, accounts: Collection[str]) -> Mapping[str, int]:
        return {a: self.counts.get(a, 0) for a in accounts}

    def usual_quantities(self, accounts: Collection[str]) -> Mapping[tuple[str, str], Decimal]:
        return {k: v for k, v in self.usual.items() if k[0] in accounts}

    def seen(self, fingerprints: Collection[str]) -> Mapping[str, str]:
        return {f: self.fingerprints[f] for f in fingerprints if f in self.fingerprints}


# -- CSV folder ------------------------------------------------------------------------------------

_COLUMNS = {
    "items": (
        "sku",
        "description",
        "gtin",
        "base_uom",
        "uoms",
        "pack_size",
        "weight_kg",
        "discontinued",
    ),
    "xrefs": ("partner", "buyer_part_number", "sku"),
    "prices": (
        "sku",
        "unit_price",
        "currency",
        "uom",
        "customer",
        "price_list",
        "min_quantity",
        "valid_from",
        "valid_to",
    ),
    "stock": ("sku", "warehouse", "on_hand", "reserved", "reorder_point"),
    "accounts": (
        "code",
        "name",
        "partner",
        "email",
        "channel",
        "currency",
        "credit_limit",
        "open_balance",
        "payment_terms",
    ),
    "history": ("account", "orders"),
    "usual": ("account", "sku", "quantity"),
}
_REQUIRED = {
    "items": ("sku",),
    "xrefs": ("partner", "buyer_part_number", "sku"),
    "prices": ("sku", "unit_price", "currency"),
    "stock": ("sku", "warehouse", "on_hand"),
    "accounts": ("code",),
    "history": ("account", "orders"),
    "usual": ("account", "sku", "quantity"),
}


def load_folder(folder: Path) -> tuple[InMemoryMasterData, InMemoryHistory]:
    """Master data and history from a folder of CSV files; ConfigError (file:row: column) on bad data."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: the master-data folder does not exist")
    problems: list[str] = []
    rows = {kind: _read(folder / f"{kind}.csv", kind, problems) for kind in _COLUMNS}
    parsed: dict[str, list[Any]] = {kind: [] for kind in _COLUMNS}
    builders: dict[str, Callable[[dict[str, str]], Any]] = {
        "items": _item,
        "xrefs": lambda r: ((r["partner"], r["buyer_part_number"]), r["sku"]),
        "prices": _price,
        "stock": _stock,
        "accounts": _account,
        "history": lambda r: (r["account"], int(r["orders"])),
        "usual": lambda r: ((r["account"], r["sku"]), _dec(r["quantity"], "quantity")),
    }
    for kind, found in rows.items():
        for where, row in found:
            try:
                parsed[kind].append(builders[kind](row))
            except _Bad as exc:
                problems.append(f"{where}: column {exc.column}: {exc.message}")
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
    if problems:
        raise ConfigError(problems)
    md = InMemoryMasterData(
        parsed["items"],
        dict(parsed["xrefs"]),
        parsed["prices"],
        parsed["stock"],
        parsed["accounts"],
    )
    return md, InMemoryHistory(dict(parsed["history"]), dict(parsed["usual"]))


class _Bad(ValueError):
    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column, self.message = column, message


def _read(path: Path, kind: str, problems: list[str]) -> list[tuple[str, dict[str, str]]]:
    if not path.exists():
        return []
    out = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        unknown = [h for h in header if h not in _COLUMNS[kind]]
        missing = [c for c in _REQUIRED[kind] if c not in header]
        if unknown or missing:
            problems.append(
                f"{path}:1: "
                + "; ".join(
                    (
                        [
                            f"unknown column(s) {', '.join(unknown)} (known: {', '.join(_COLUMNS[kind])})"
                        ]
                        if unknown
                        else []
                    )
                    + ([f"missing column(s) {', '.join(missing)}"] if missing else [])
                )
            )
            return []
        for n, raw in enumerate(reader, 2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            for c in _REQUIRED[kind]:
                if not row.get(c):
                    problems.append(f"{path}:{n}: column {c}: a value is required")
                    break
            else:
                out.append((f"{path}:{n}", row))
    return out


def _dec(value: str, column: str) -> Decimal:
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise _Bad(column, f"{value!r} is not a number") from None
    if not d.is_finite():
        raise _Bad(column, f"{value!r} is not a number")
    return d


def _opt_dec(row: dict[str, str], column: str) -> Decimal | None:
    return _dec(row[column], column) if row.get(column) else None


def _opt(row: dict[str, str], column: str) -> str | None:
    return row.get(column) or None


def _date(row: dict[str, str], column: str) -> dt.date | None:
    if not row.get(column):
        return None
    try:
        return dt.date.fromisoformat(row[column])
    except ValueError:
        raise _Bad(column, f"{row[column]!r} is not a date (YYYY-MM-DD)") from None


def _item(row: dict[str, str]) -> Item:
    uoms: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in row.get("uoms", "").split(";"))):
        unit, sep, factor = part.partition("=")
        if not sep or not unit.strip():
            raise _Bad("uoms", f"{part!r} must read UNIT=FACTOR (CA=12)")
        uoms[unit.strip().upper()] = _dec(factor.strip(), "uoms")
    flag = row.get("discontinued", "").lower()
    if flag not in ("", "true", "false", "yes", "no", "1", "0"):
        raise _Bad("discontinued", f"{row['discontinued']!r} must be true or false")
    return Item(
        sku=row["sku"],
        description=_opt(row, "description"),
        gtin=_opt(row, "gtin"),
        base_uom=(row.get("base_uom") or "EA").upper(),
        uoms=uoms,
        pack_size=_opt_dec(row, "pack_size"),
        weight_kg=_opt_dec(row, "weight_kg"),
        discontinued=flag in ("true", "yes", "1"),
        source="items.csv",
    )


def _price(row: dict[str, str]) -> Price:
    return Price(
        sku=row["sku"],
        unit_price=_dec(row["unit_price"], "unit_price"),
        currency=row["currency"].upper(),
        uom=(row.get("uom") or "").upper() or None,
        customer=_opt(row, "customer"),
        price_list=row.get("price_list") or "default",
        min_quantity=_opt_dec(row, "min_quantity") or Decimal(0),
        valid_from=_date(row, "valid_from"),
        valid_to=_date(row, "valid_to"),
        source="prices.csv",
    )


def _stock(row: dict[str, str]) -> StockLevel:
    return StockLevel(
        sku=row["sku"],
        warehouse=row["warehouse"],
        on_hand=_dec(row["on_hand"], "on_hand"),
        reserved=_opt_dec(row, "reserved") or Decimal(0),
        reorder_point=_opt_dec(row, "reorder_point"),
        source="stock.csv",
    )


def _account(row: dict[str, str]) -> Account:
    return Account(
        code=row["code"],
        name=_opt(row, "name"),
        partner=_opt(row, "partner"),
        email=(row.get("email") or "").lower() or None,
        channel=_opt(row, "channel"),
        currency=_opt(row, "currency"),
        credit_limit=_opt_dec(row, "credit_limit"),
        open_balance=_opt_dec(row, "open_balance") or Decimal(0),
        payment_terms=_opt(row, "payment_terms"),
        source="accounts.csv",
    )

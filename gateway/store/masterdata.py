"""Master data in the store: the rules' read side, the importer's write side, stock reservations.

- :class:`StoreMasterData` implements :class:`gateway.masterdata.model.MasterData` over one
  connection: every method takes a batch and costs one query per kind (IN lists cut at 1,000),
  and remembers what it read for the life of the object (one processing batch).
- :func:`loading` is the write side of `gateway data import`: one transaction for a whole file,
  rows upserted in chunks, nothing kept when the importer discards it (a bad row).
- :class:`StockKeeper` holds stock for orders. It can never oversell: a reservation is one
  conditional ``UPDATE stock SET reserved = reserved + q WHERE on_hand - reserved >= q``
  checked by its row count. PostgreSQL re-evaluates the condition on the newest row version
  after waiting for a concurrent writer (READ COMMITTED), SQLite runs one writer at a time
  (BEGIN IMMEDIATE), so two processes or nodes can never both take the last unit. It is
  idempotent per order: reserving again for an order that holds stock returns what it holds.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gateway.masterdata.model import (
    KINDS,
    Account,
    AccountKey,
    Address,
    Item,
    Price,
    Reservation,
    ReserveOutcome,
    StockLevel,
)
from gateway.states import ReservationState, move
from gateway.store import tables as t
from gateway.store.db import Bulk, Store, add_event, add_events, as_utc, utcnow

__all__ = [
    "KindStatus",
    "LineReservation",
    "Loader",
    "ReserveLine",
    "ReserveResult",
    "StockKeeper",
    "StoreMasterData",
    "TABLES",
    "data_status",
    "list_reservations",
    "list_rows",
    "loading",
    "routes_of",
    "save_routes",
    "unknown_skus",
]

TABLES: dict[str, Table] = {
    "items": t.items,
    "xrefs": t.item_xrefs,
    "prices": t.prices,
    "stock": t.stock,
    "accounts": t.accounts,
}
assert tuple(TABLES) == KINDS
KEYS: dict[str, tuple[str, ...]] = {
    "items": ("sku",),
    "xrefs": ("partner", "buyer_part_number"),
    "prices": ("key",),
    "stock": ("sku", "warehouse"),
    "accounts": ("code",),
}
# What a row gets on insert when the file has no column for it.
DEFAULTS: dict[str, dict[str, Any]] = {
    "items": {
        "gtin": None, "description": None, "base_uom": "EA", "uoms": {}, "pack_size": None,
        "weight_kg": None, "length_cm": None, "width_cm": None, "height_cm": None, "discontinued": False,
    },
    "xrefs": {},
    "prices": {
        "customer": "", "price_list": "default", "uom": None, "min_quantity": Decimal(0),
        "valid_from": None, "valid_to": None,
    },
    "stock": {"reorder_point": None},
    "accounts": {
        "name": None, "partner": None, "email": None, "channel": None, "currency": None,
        "credit_limit": None, "open_balance": Decimal(0), "payment_terms": None, "ship_to": [],
    },
}
_IN_CHUNK = 1000  # IN-list size: well inside SQLite's and PostgreSQL's parameter limits
_STEP = Decimal("0.0001")  # the columns' scale
_EPS = Decimal("0.00005")  # half a step: SQLite compares REALs, PostgreSQL exact numerics
_ONE = Decimal(1)


def _num(value: Any) -> Decimal | None:
    """A stored number as a plain Decimal (12, not 12.0000)."""
    if value is None:
        return None
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return _tidy(d.quantize(_STEP))


def _tidy(d: Decimal) -> Decimal:
    """12, not 12.0000; 2.5, not 2.5000."""
    return d.quantize(_ONE) if d == d.to_integral_value() else d.normalize()


def _stored(value: Any) -> Decimal:
    """A stored quantity as an exact Decimal at the columns' scale, without `_num`'s tidying
    (a hot path: one per stock row read for a batch). SQLite hands back int or float."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    return Decimal(repr(value)).quantize(_STEP) if value is not None else Decimal(0)


def _chunks(values: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted({v for v in values if v})
    for i in range(0, len(ordered), _IN_CHUNK):
        yield ordered[i : i + _IN_CHUNK]


def price_key(row: Mapping[str, Any]) -> str:
    """Every column that tells two prices of one SKU apart (the upsert key)."""
    parts = (
        row["sku"], row.get("customer") or "", row.get("price_list") or "default", row["currency"],
        row.get("uom") or "", str(_num(row.get("min_quantity")) or 0), str(row.get("valid_from") or ""),
    )
    return "|".join(str(p) for p in parts)[:400]


# -- reading ----------------------------------------------------------------------------------


def _item(r: Any) -> Item:
    return Item(
        sku=r.sku, description=r.description, gtin=r.gtin, base_uom=r.base_uom,
        uoms={str(k): Decimal(str(v)) for k, v in (r.uoms or {}).items()},
        pack_size=_num(r.pack_size), weight_kg=_num(r.weight_kg), length_cm=_num(r.length_cm),
        width_cm=_num(r.width_cm), height_cm=_num(r.height_cm), discontinued=bool(r.discontinued),
        source=r.source, updated_at=as_utc(r.updated_at),
    )


def _price(r: Any) -> Price:
    return Price(
        sku=r.sku, unit_price=_num(r.unit_price) or Decimal(0), currency=r.currency, uom=r.uom,
        customer=r.customer or None, price_list=r.price_list, min_quantity=_num(r.min_quantity) or Decimal(0),
        valid_from=r.valid_from, valid_to=r.valid_to, source=r.source, updated_at=as_utc(r.updated_at),
    )


def _stock(r: Any) -> StockLevel:
    return StockLevel(
        sku=r.sku, warehouse=r.warehouse, on_hand=_num(r.on_hand) or Decimal(0),
        reserved=_num(r.reserved) or Decimal(0), reorder_point=_num(r.reorder_point),
        source=r.source, updated_at=as_utc(r.updated_at),
    )


def _account(r: Any) -> Account:
    return Account(
        code=r.code, name=r.name, partner=r.partner, email=r.email, channel=r.channel, currency=r.currency,
        credit_limit=_num(r.credit_limit), open_balance=_num(r.open_balance) or Decimal(0),
        payment_terms=r.payment_terms, ship_to=tuple(Address(**a) for a in (r.ship_to or [])),
        source=r.source, updated_at=as_utc(r.updated_at),
    )


class StoreMasterData:
    """:class:`~gateway.masterdata.model.MasterData` read from the store through `conn`.

    Meant to live for one processing batch: what it has read it does not read again, so rules
    that each ask for the same SKUs cost one query between them.
    """

    def __init__(self, conn: Connection):
        self._conn = conn
        self._items: dict[str, Item | None] = {}
        self._gtins: dict[str, Item | None] = {}
        self._xrefs: dict[tuple[str, str], str | None] = {}
        self._prices: dict[tuple[str | None, dt.date], dict[str, list[Price]]] = {}
        self._stock: dict[str, list[StockLevel]] = {}
        self._accounts: dict[tuple[str, str], Account | None] = {}
        self.queries = 0  # how many SELECTs it issued (tests pin the batching)

    def _rows(self, stmt: Any) -> list[Any]:
        self.queries += 1
        return list(self._conn.execute(stmt))

    def items(self, skus: Collection[str]) -> Mapping[str, Item]:
        missing = [s for s in set(skus) if s not in self._items]
        for part in _chunks(missing):
            found = {r.sku: _item(r) for r in self._rows(select(t.items).where(t.items.c.sku.in_(part)))}
            for sku in part:
                self._items[sku] = found.get(sku)
        return {s: item for s in skus if (item := self._items.get(s)) is not None}

    def items_by_gtin(self, gtins: Collection[str]) -> Mapping[str, Item]:
        missing = [g for g in set(gtins) if g not in self._gtins]
        for part in _chunks(missing):
            found = {r.gtin: _item(r) for r in self._rows(select(t.items).where(t.items.c.gtin.in_(part)))}
            for gtin in part:
                self._gtins[gtin] = found.get(gtin)
        return {g: item for g in gtins if (item := self._gtins.get(g)) is not None}

    def cross_references(self, partner: str, buyer_part_numbers: Collection[str]) -> Mapping[str, str]:
        x = t.item_xrefs
        missing = [b for b in set(buyer_part_numbers) if (partner, b) not in self._xrefs]
        for part in _chunks(missing):
            rows = self._rows(select(x.c.buyer_part_number, x.c.sku).where(x.c.partner == partner, x.c.buyer_part_number.in_(part)))
            found = {r.buyer_part_number: r.sku for r in rows}
            for bpn in part:
                self._xrefs[(partner, bpn)] = found.get(bpn)
        return {b: sku for b in buyer_part_numbers if (sku := self._xrefs.get((partner, b))) is not None}

    def prices(self, skus: Collection[str], customer: str | None, day: dt.date) -> Mapping[str, list[Price]]:
        p = t.prices
        known = self._prices.setdefault((customer, day), {})
        missing = [s for s in set(skus) if s not in known]
        who = p.c.customer == "" if not customer else p.c.customer.in_(["", customer])
        for part in _chunks(missing):
            stmt = select(p).where(
                p.c.sku.in_(part), who,
                or_(p.c.valid_from.is_(None), p.c.valid_from <= day),
                or_(p.c.valid_to.is_(None), p.c.valid_to >= day),
            )
            found: dict[str, list[Price]] = {s: [] for s in part}
            for r in self._rows(stmt):
                found[r.sku].append(_price(r))
            for sku, listed in found.items():
                # The customer's contract prices first, then list prices; each by quantity break.
                known[sku] = sorted(listed, key=lambda x: (x.customer is None, x.price_list, x.uom or "", x.min_quantity, x.valid_from or dt.date.min))
        return {s: known[s] for s in skus if known.get(s)}

    def stock(self, skus: Collection[str]) -> Mapping[str, list[StockLevel]]:
        missing = [s for s in set(skus) if s not in self._stock]
        for part in _chunks(missing):
            found: dict[str, list[StockLevel]] = {s: [] for s in part}
            for r in self._rows(select(t.stock).where(t.stock.c.sku.in_(part)).order_by(t.stock.c.sku, t.stock.c.warehouse)):
                found[r.sku].append(_stock(r))
            self._stock.update(found)
        return {s: self._stock[s] for s in skus if self._stock.get(s)}

    def accounts(self, keys: Collection[AccountKey]) -> Mapping[AccountKey, Account | None]:
        """Accounts for many keys: one IN query per kind of key (code, partner, e-mail) for
        what is not cached, then each key resolved as `account()` does."""
        a = t.accounts
        wanted: dict[str, set[str]] = {"code": set(), "partner": set(), "email": set()}
        for code, partner, email in keys:
            for what, value in (("code", code), ("partner", partner), ("email", (email or "").lower() or None)):
                if value and (what, value) not in self._accounts:
                    wanted[what].add(value)
        for what, column in (("code", a.c.code), ("partner", a.c.partner), ("email", a.c.email)):
            for chunk in _chunks(wanted[what]):
                for r in self._rows(select(a).where(column.in_(chunk)).order_by(a.c.code)):
                    value = getattr(r, what)
                    if (what, value) not in self._accounts:  # the lowest code wins, as in account()
                        self._accounts[(what, value)] = _account(r)
            for value in wanted[what]:
                self._accounts.setdefault((what, value), None)
        return {k: self.account(code=k[0], partner=k[1], email=k[2]) for k in keys}

    def account(self, *, code: str | None = None, partner: str | None = None, email: str | None = None) -> Account | None:
        a = t.accounts
        for what, value, column in (("code", code, a.c.code), ("partner", partner, a.c.partner), ("email", (email or "").lower() or None, a.c.email)):
            if not value:
                continue
            if (what, value) not in self._accounts:
                rows = self._rows(select(a).where(column == value).order_by(a.c.code).limit(1))
                self._accounts[(what, value)] = _account(rows[0]) if rows else None
            found = self._accounts[(what, value)]
            if found is not None:
                return found
        return None


# -- writing (gateway data import) ------------------------------------------------------------


class _Discard(Exception):
    """Raised inside the import transaction to roll it back."""


@dataclass(slots=True)
class Loader:
    """One import's transaction: `write` chunks of rows; `discard` keeps nothing."""

    conn: Connection
    kind: str
    source: str
    stamp: dt.datetime
    fields: frozenset[str]  # the fields the file has: only those overwrite a stored row
    is_sqlite: bool
    written: int = 0
    removed: int = 0
    discarded: bool = False

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert or update `rows` (dicts of field -> Python value) by the kind's key."""
        if not rows or self.discarded:
            return
        table, keys = TABLES[self.kind], KEYS[self.kind]
        base = {**DEFAULTS[self.kind], "source": self.source, "updated_at": self.stamp}
        full = []
        for row in rows:
            values = {**base, **row}
            if self.kind == "prices":
                values["key"] = price_key(values)
            elif self.kind == "accounts" and values.get("email"):
                values["email"] = str(values["email"]).lower()
            if "uoms" in values:
                values["uoms"] = {str(k): str(v) for k, v in values["uoms"].items()}
            full.append(values)
        dialect: Any = sqlite if self.is_sqlite else postgresql
        stmt = dialect.insert(table)
        changed = {f for f in self.fields if f in table.c and f not in keys} | {"source", "updated_at"}
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in sorted(changed)})
        self.conn.execute(stmt, full)
        self.written += len(full)

    def replace_rest(self, *, own_rows_only: bool = False) -> None:
        """Remove the rows of this kind the file did not have (`--replace`); with
        `own_rows_only`, only those this source wrote last (a pull from one ERP leaves the
        stock another ERP or a file reported). Stock that is reserved for orders is kept
        with nothing on hand rather than deleted."""
        table = TABLES[self.kind]
        untouched = table.c.updated_at != self.stamp
        if own_rows_only:
            untouched = untouched & (table.c.source == self.source)
        if self.kind == "stock":
            self.removed += self.conn.execute(delete(table).where(untouched, table.c.reserved == 0)).rowcount
            self.conn.execute(update(table).where(untouched).values(on_hand=0, source=self.source, updated_at=self.stamp))
        else:
            self.removed += self.conn.execute(delete(table).where(untouched)).rowcount

    def discard(self) -> None:
        self.discarded = True


@contextmanager
def loading(store: Store, kind: str, *, source: str, fields: Collection[str], replace: bool = False,
            replace_own_rows_only: bool = False) -> Iterator[Loader]:
    """A transaction for importing one file of `kind`; committed when the block ends unless
    the loader was discarded (then nothing of the file is stored). `replace` removes the
    rows the file did not have: all of the kind, or with `replace_own_rows_only` those the
    same source wrote."""
    if kind not in TABLES:
        raise ValueError(f"unknown master data kind {kind!r}")
    try:
        with store.begin() as conn:
            loader = Loader(conn, kind, source[:255], utcnow(), frozenset(fields), store.is_sqlite)
            yield loader
            if loader.discarded:
                raise _Discard
            if replace:
                loader.replace_rest(own_rows_only=replace_own_rows_only)
            add_event(conn, "masterdata_imported", f"{kind}: {loader.written} row(s) from {source}, {loader.removed} removed")
    except _Discard:
        pass


@dataclass(frozen=True, slots=True)
class KindStatus:
    """One line of `gateway data status`: a kind, one source, how many rows, last update."""

    kind: str
    source: str | None
    rows: int
    updated_at: dt.datetime | None


def data_status(store: Store) -> list[KindStatus]:
    """Row counts and the last update per kind and source (a kind with no rows: one line)."""
    found: list[KindStatus] = []
    with store.engine.connect() as conn:
        for kind, table in TABLES.items():
            rows = conn.execute(
                select(table.c.source, func.count(), func.max(table.c.updated_at)).group_by(table.c.source).order_by(table.c.source)
            ).all()
            found.extend(KindStatus(kind, r[0], int(r[1]), as_utc(r[2])) for r in rows)
            if not rows:
                found.append(KindStatus(kind, None, 0, None))
        r = t.stock_reservations
        held = conn.execute(select(func.count(), func.max(r.c.updated_at)).where(r.c.state == ReservationState.RESERVED)).one()
        found.append(KindStatus("reservations", None, int(held[0]), as_utc(held[1])))
    return found


def list_reservations(store: Store, *, order_id: str | None = None, sku: str | None = None, limit: int = 50) -> list[tuple[Reservation, dt.datetime | None]]:
    """Stock held now (newest first), for one order or one SKU, with when it was taken."""
    r = t.stock_reservations
    stmt = select(r).where(r.c.state == ReservationState.RESERVED)
    if order_id:
        stmt = stmt.where(r.c.order_id == order_id)
    if sku:
        stmt = stmt.where(r.c.sku == sku)
    with store.engine.connect() as conn:
        rows = conn.execute(stmt.order_by(r.c.id.desc()).limit(limit)).all()
    return [(_reservation(row), as_utc(row.updated_at)) for row in rows]


def unknown_skus(store: Store, kind: str, source: str, *, sample: int = 5) -> tuple[int, list[str]]:
    """How many SKUs the rows of `kind` from `source` name that the catalogue does not have,
    and the first few of them (xrefs, prices and stock; (0, []) for the others)."""
    if kind not in ("xrefs", "prices", "stock"):
        return 0, []
    table = TABLES[kind]
    missing = select(table.c.sku).where(table.c.source == source, table.c.sku.not_in(select(t.items.c.sku))).distinct()
    with store.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(missing.subquery())).scalar_one()
        first = conn.execute(missing.order_by(table.c.sku).limit(sample)).scalars().all() if count else []
    return int(count), [str(s) for s in first]


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return str(_num(value))
    if isinstance(value, dt.datetime):
        return str(as_utc(value))[:19]
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return f"{len(value)} address(es)" if value else ""
    return str(value)


def list_rows(store: Store, kind: str, *, sku: str | None = None, limit: int = 50) -> tuple[list[str], list[list[str]], int]:
    """(columns, rows as display text, total rows of the selection) for `gateway data list`."""
    table = TABLES[kind]
    columns = [c.name for c in table.c if c.name not in ("id", "key")]
    where: list[Any] = []
    if sku:
        key = table.c.sku if "sku" in table.c else table.c.code
        where.append(key == sku)
    order = [table.c[k] for k in KEYS[kind] if k != "key"] or [
        table.c[k] for k in ("sku", "customer", "price_list", "currency", "uom", "min_quantity", "valid_from")
    ]
    with store.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
        rows = conn.execute(select(*[table.c[c] for c in columns]).where(*where).order_by(*order).limit(limit)).all()
    return columns, [[_show(v) for v in r] for r in rows], int(total)


# -- stock reservations -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReserveLine:
    """One order line to hold stock for, in base units (`Item.base_quantity`)."""

    line: str
    sku: str
    quantity: Decimal
    warehouse: str | None = None  # None: whichever warehouse has it, most available first
    prefer: tuple[str, ...] = ()  # only these warehouses, in this order (routing); (): any


@dataclass(frozen=True, slots=True)
class LineReservation:
    """What one line got."""

    line: str
    sku: str
    requested: Decimal
    outcome: ReserveOutcome
    held: tuple[Reservation, ...] = ()

    @property
    def reserved(self) -> Decimal:
        return sum((r.quantity for r in self.held), Decimal(0))


@dataclass(frozen=True, slots=True)
class ReserveResult:
    """What an order holds after `reserve` or `adjust`; `repeated`: it held it already."""

    order_id: str
    lines: tuple[LineReservation, ...]
    repeated: bool = False
    released: tuple[Reservation, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return all(x.outcome is ReserveOutcome.RESERVED for x in self.lines)

    @property
    def reservations(self) -> list[Reservation]:
        return [r for x in self.lines for r in x.held]


def _quantity(q: Decimal) -> Decimal:
    if q <= 0:
        raise ValueError(f"a reservation needs a positive quantity, not {q}")
    return _tidy(q.quantize(_STEP, rounding=ROUND_UP))


class StockKeeper:
    """Reserves, releases and adjusts stock for orders; see the module docstring for why it
    can never oversell.

    Each call is one transaction of its own, or runs in the caller's (`conn=`: the processing
    step that accepts an order reserves in the transaction that stores the decision). In the
    caller's transaction a concurrent reservation for the same order id surfaces as the
    IntegrityError of the unique (order, line, warehouse) index and rolls it all back; on its
    own the call reads what the other one holds instead."""

    def __init__(self, store: Store):
        self.store = store

    @contextmanager
    def _tx(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.store.begin() as own:
                yield own

    def held(self, order_id: str, *, conn: Connection | None = None) -> list[Reservation]:
        """The stock the order holds now."""
        if conn is not None:
            return [_reservation(r) for r in _held_rows(conn, order_id)]
        with self.store.engine.connect() as own:
            return [_reservation(r) for r in _held_rows(own, order_id)]

    def reserve(self, order_id: str, lines: Sequence[ReserveLine], *, partial: bool = False, conn: Connection | None = None) -> ReserveResult:
        """Hold stock for each line: all of it (RESERVED) or nothing (SHORT); with `partial`,
        what there is (PARTIAL), spread over warehouses when the line names none.

        Reserving again for an order that holds stock changes nothing and returns what it holds
        (`repeated`); use `adjust` for a changed order."""
        if conn is not None:
            return self._reserve(conn, order_id, lines, partial)
        try:
            with self.store.begin() as own:
                return self._reserve(own, order_id, lines, partial)
        except IntegrityError:
            # Another process reserved for the same order at the same moment: its rows stand,
            # ours were rolled back with their stock; read what it holds.
            with self.store.begin() as own:
                return self._reserve(own, order_id, lines, partial)

    def _reserve(self, conn: Connection, order_id: str, lines: Sequence[ReserveLine], partial: bool) -> ReserveResult:
        existing = _held_rows(conn, order_id)
        if existing:
            return _result(order_id, lines, [_reservation(r) for r in existing], repeated=True)
        conn.execute(delete(t.stock_reservations).where(t.stock_reservations.c.order_id == order_id))
        result = self._take_all(conn, order_id, lines, partial)
        _event(conn, order_id, "stock_reserved", result.reservations)
        return result

    def release(self, order_id: str, *, conn: Connection | None = None) -> list[Reservation]:
        """Give back everything the order holds (a cancellation or a refusal); idempotent."""
        with self._tx(conn) as tx:
            released = _release(tx, order_id, drop=False)
            if released:
                _event(tx, order_id, "stock_released", released)
            return released

    def adjust(self, order_id: str, lines: Sequence[ReserveLine], *, partial: bool = False, conn: Connection | None = None) -> ReserveResult:
        """Hold stock for the changed order's lines instead of what it held, in one transaction:
        the units it gives back count as available for its new lines."""
        with self._tx(conn) as tx:
            released = _release(tx, order_id, drop=True)
            result = self._take_all(tx, order_id, lines, partial)
            _event(tx, order_id, "stock_adjusted", result.reservations, released)
            return ReserveResult(order_id, result.lines, released=tuple(released))

    def _take_all(self, conn: Connection, order_id: str, lines: Sequence[ReserveLine], partial: bool) -> ReserveResult:
        now = utcnow()
        done: list[LineReservation] = []
        rows: list[dict[str, Any]] = []
        # Stock rows are locked in one order (sku, warehouse) by every caller: two orders that
        # share SKUs wait for each other instead of deadlocking on PostgreSQL.
        for line in sorted(lines, key=lambda x: (x.sku, x.warehouse or "")):
            want = _quantity(line.quantity)
            taken = _take(conn, line, want, partial)
            got = sum((q for _, q in taken), Decimal(0))
            outcome = ReserveOutcome.RESERVED if got >= want else ReserveOutcome.PARTIAL if got > 0 else ReserveOutcome.SHORT
            held = tuple(Reservation(order_id, line.line, line.sku, wh, q) for wh, q in taken)
            done.append(LineReservation(line.line, line.sku, want, outcome, held))
            state = move(ReservationState, None, ReservationState.RESERVED)
            rows.extend(
                {"order_id": order_id, "line": line.line, "sku": line.sku, "warehouse": wh, "quantity": q,
                 "state": state.value, "created_at": now, "updated_at": now}
                for wh, q in taken
            )
        if rows:
            conn.execute(insert(t.stock_reservations), rows)
        position = {id(x): i for i, x in enumerate(lines)}
        ordered = sorted(zip(sorted(lines, key=lambda x: (x.sku, x.warehouse or "")), done, strict=True), key=lambda p: position[id(p[0])])
        return ReserveResult(order_id, tuple(d for _, d in ordered))

    def reserve_many(self, conn: Connection, orders: Sequence[tuple[str, Sequence[ReserveLine]]]) -> dict[str, ReserveResult]:
        """`reserve` (partial) for many orders in the caller's transaction, in a few statements:
        what is available is read once for all their SKUs, each order's lines are taken from
        that picture in turn (as `reserve` would, one order after the other), and the totals
        are taken per SKU and warehouse by the same conditional update, as one executemany
        inside a savepoint. If any of those finds less than the picture said (another process
        took stock meanwhile), the savepoint is rolled back and every order is reserved on its
        own, as `reserve` does: the batch path is only ever an optimisation."""
        if not orders:
            return {}
        r = t.stock_reservations
        ids = [oid for oid, _ in orders]
        holding: set[str] = set()
        for chunk in _chunks(ids):
            holding.update(conn.execute(select(r.c.order_id).where(r.c.order_id.in_(chunk), r.c.state == ReservationState.RESERVED)).scalars())
        results = {oid: self._reserve(conn, oid, lines, True) for oid, lines in orders if oid in holding}
        fresh = [(oid, lines) for oid, lines in orders if oid not in holding]
        if not fresh:
            return results
        snap: dict[str, dict[str, Decimal]] = {}
        for chunk in _chunks({ln.sku for _, lines in fresh for ln in lines}):
            # Straight to the driver (a read per order line: SQLAlchemy's result rows and
            # expanding IN cost three times SQLite's own work). The SQL holds placeholders only.
            for sku, wh, available in Bulk(conn, _SNAPSHOT_SQL.format(", ".join("?" * len(chunk)))).read(tuple(chunk)):
                snap.setdefault(sku, {})[wh] = _stored(available)
        planned: list[tuple[str, list[tuple[ReserveLine, Decimal, list[tuple[str, Decimal]]]]]] = []
        totals: dict[tuple[str, str], Decimal] = {}
        for oid, lines in fresh:
            per_line = []
            for line in lines:
                want = _quantity(line.quantity)
                taken = _plan_take(snap.get(line.sku, {}), line, want)
                for wh, q in taken:
                    key = (line.sku, wh)
                    totals[key] = totals[key] + q if key in totals else q
                per_line.append((line, want, taken))
            planned.append((oid, per_line))
        takes = [(sku, wh, q) for (sku, wh), q in sorted(totals.items())]
        savepoint = conn.begin_nested()
        if _take_each(conn, takes) != len(takes):
            savepoint.rollback()
            results.update({oid: self._reserve(conn, oid, lines, True) for oid, lines in fresh})
            return results
        savepoint.commit()
        now = utcnow()
        put = Bulk(conn, _INSERT_SQL)
        num = put.processor(r.c.quantity)
        stamp = put.processor(r.c.created_at)(now)
        state = move(ReservationState, None, ReservationState.RESERVED).value
        rows: list[tuple[Any, ...]] = []
        events: list[dict[str, Any]] = []
        for oid, per_line in planned:
            done = []
            for line, want, taken in per_line:
                if len(taken) == 1:  # most lines: the whole of it from one warehouse
                    wh, got = taken[0]
                    held: tuple[Reservation, ...] = (Reservation(oid, line.line, line.sku, wh, got),)
                    rows.append((oid, line.line, line.sku, wh, num(got), state, stamp, stamp))
                else:
                    held = tuple(Reservation(oid, line.line, line.sku, wh, q) for wh, q in taken)
                    got = sum((q for _, q in taken), Decimal(0))
                    rows.extend((oid, line.line, line.sku, wh, num(q), state, stamp, stamp) for wh, q in taken)
                outcome = ReserveOutcome.RESERVED if got >= want else ReserveOutcome.PARTIAL if got > 0 else ReserveOutcome.SHORT
                done.append(LineReservation(line.line, line.sku, want, outcome, held))
            result = ReserveResult(oid, tuple(done))
            results[oid] = result
            events.append({"kind": "stock_reserved", "order_id": oid, "at": now, "detail": _detail(result.reservations)})
        put.run(rows)
        add_events(conn, events)
        return results


def _plan_take(snap: dict[str, Decimal], line: ReserveLine, want: Decimal) -> list[tuple[str, Decimal]]:
    """What `_take` (partial) would take of one line, worked out on a picture of what is
    available (updated in place)."""
    candidates = [(wh, a) for wh, a in snap.items() if line.warehouse is None or wh == line.warehouse]
    # a routed line goes by the route's order alone: no need to sort by quantity first
    candidates = _preferred(candidates, line.prefer) if line.prefer else sorted(candidates, key=lambda c: (-c[1], c[0]))
    for wh, avail in candidates:
        if avail + _EPS >= want:
            snap[wh] = avail - want
            return [(wh, want)]
    taken: list[tuple[str, Decimal]] = []
    need = want
    for wh, avail in candidates:
        if need <= 0:
            break
        amount = _num(min(avail, need)) or Decimal(0)
        if amount <= 0:
            continue
        snap[wh] = avail - amount
        taken.append((wh, amount))
        need -= amount
    return taken


def _detail(held: Iterable[Reservation]) -> str:
    return ("; ".join(f"{r.line}: {r.quantity} {r.sku} @ {r.warehouse}" for r in held) or "nothing")[:2000]


def _event(conn: Connection, order_id: str, kind: str, held: Iterable[Reservation], released: Iterable[Reservation] = ()) -> None:
    parts = [f"{r.line}: {r.quantity} {r.sku} @ {r.warehouse}" for r in held]
    gone = [f"{r.line}: -{r.quantity} {r.sku} @ {r.warehouse}" for r in released]
    add_event(conn, kind, ("; ".join(gone + parts) or "nothing")[:2000], order_id=order_id)


def _held_rows(conn: Connection, order_id: str) -> list[Any]:
    r = t.stock_reservations
    return list(conn.execute(select(r).where(r.c.order_id == order_id, r.c.state == ReservationState.RESERVED).order_by(r.c.id)))


def _reservation(r: Any) -> Reservation:
    return Reservation(r.order_id, r.line, r.sku, r.warehouse, _num(r.quantity) or Decimal(0))


def _result(order_id: str, lines: Sequence[ReserveLine], held: list[Reservation], *, repeated: bool) -> ReserveResult:
    done = []
    for line in lines:
        mine = tuple(h for h in held if h.line == line.line and h.sku == line.sku)
        got = sum((h.quantity for h in mine), Decimal(0))
        want = _quantity(line.quantity)
        outcome = ReserveOutcome.RESERVED if got >= want else ReserveOutcome.PARTIAL if got > 0 else ReserveOutcome.SHORT
        done.append(LineReservation(line.line, line.sku, want, outcome, mine))
    return ReserveResult(order_id, tuple(done), repeated=repeated)


_s = t.stock
# The statements every reservation runs, one at a time or a batch's at once (Bulk: straight to
# the driver; the one conditional update that moves stock into `reserved` is _TAKE_SQL).
_TAKE_SQL = "UPDATE stock SET reserved = reserved + ? WHERE sku = ? AND warehouse = ? AND on_hand - reserved >= ?"
_INSERT_SQL = (
    "INSERT INTO stock_reservations (order_id, line, sku, warehouse, quantity, state, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SNAPSHOT_SQL = "SELECT sku, warehouse, on_hand - reserved FROM stock WHERE sku IN ({})"
# Built once: a statement built per call costs more than running it (SQLAlchemy then finds its
# compiled form in the cache by the statement's identity, not by rebuilding it).
_AVAIL = (_s.c.on_hand - _s.c.reserved).label("available")
_AVAILABLE = select(_s.c.warehouse, _AVAIL).where(_s.c.sku == bindparam("b_sku")).order_by(_AVAIL.desc(), _s.c.warehouse)
_AVAILABLE_IN = select(_s.c.warehouse, _AVAIL).where(_s.c.sku == bindparam("b_sku"), _s.c.warehouse == bindparam("b_wh"))


def _take_each(conn: Connection, takes: Sequence[tuple[str, str, Decimal]]) -> int:
    """The one statement that moves stock into `reserved`, for each (sku, warehouse, quantity)
    only if that much is available there; how many of them it took."""
    take = Bulk(conn, _TAKE_SQL)
    num = take.processor(_s.c.reserved)
    return take.run([(num(q), sku, wh, num(q - _EPS)) for sku, wh, q in takes])


def _try_take(conn: Connection, sku: str, warehouse: str, q: Decimal) -> bool:
    return _take_each(conn, [(sku, warehouse, q)]) == 1


def _available(conn: Connection, sku: str, warehouse: str | None) -> list[tuple[str, Decimal]]:
    if warehouse is None:
        rows = conn.execute(_AVAILABLE, {"b_sku": sku}).all()
    else:
        rows = conn.execute(_AVAILABLE_IN, {"b_sku": sku, "b_wh": warehouse}).all()
    return [(r.warehouse, (_num(r.available) or Decimal(0))) for r in rows]


@functools.lru_cache(maxsize=256)
def _preference(prefer: tuple[str, ...]) -> tuple[str, ...]:
    """The warehouses of a route in the order `_preferred` ranks them (a repeated name counts
    where it last appears)."""
    rank = {wh: i for i, wh in enumerate(prefer)}
    return tuple(sorted(rank, key=rank.__getitem__))


def _preferred(candidates: list[tuple[str, Decimal]], prefer: tuple[str, ...]) -> list[tuple[str, Decimal]]:
    """The candidates a routed line may take from, in the route's order of preference."""
    if not prefer:
        return candidates
    available = dict(candidates)
    return [(wh, available[wh]) for wh in _preference(prefer) if wh in available]


def _take(conn: Connection, line: ReserveLine, want: Decimal, partial: bool) -> list[tuple[str, Decimal]]:
    """(warehouse, quantity) taken for one line; every unit by a conditional update."""
    candidates = _preferred(_available(conn, line.sku, line.warehouse), line.prefer)
    for wh, avail in candidates:  # the whole line from one warehouse, if one has it
        if avail + _EPS >= want and _try_take(conn, line.sku, wh, want):
            return [(wh, want)]
    if not partial:
        return []
    taken: dict[str, Decimal] = {}
    need = want
    for _ in range(20):  # each pass re-reads what others left; a lost race only means read again
        progressed = False
        for wh, avail in _preferred(_available(conn, line.sku, line.warehouse), line.prefer):
            if need <= 0:
                break
            amount = _num(min(avail, need)) or Decimal(0)
            if amount <= 0:
                continue
            if _try_take(conn, line.sku, wh, amount):
                taken[wh] = taken.get(wh, Decimal(0)) + amount
                need -= amount
                progressed = True
        if need <= 0 or not progressed:
            break
    return list(taken.items())


def _release(conn: Connection, order_id: str, *, drop: bool) -> list[Reservation]:
    """Give back the order's reservations: each row is marked released first (a conditional
    update), and only the caller that marked it gives its quantity back, once."""
    r, s = t.stock_reservations, t.stock
    released: list[Reservation] = []
    now = utcnow()
    for row in sorted(_held_rows(conn, order_id), key=lambda x: (x.sku, x.warehouse)):
        move(ReservationState, row.state, ReservationState.RELEASED)
        marked = conn.execute(
            update(r).where(r.c.id == row.id, r.c.state == ReservationState.RESERVED).values(state=ReservationState.RELEASED.value, updated_at=now)
        ).rowcount
        if marked != 1:
            continue
        conn.execute(
            update(s).where(and_(s.c.sku == row.sku, s.c.warehouse == row.warehouse)).values(reserved=s.c.reserved - row.quantity)
        )
        released.append(_reservation(row))
    if drop:
        conn.execute(delete(r).where(r.c.order_id == order_id, r.c.state == ReservationState.RELEASED))
    return released


# -- routes ------------------------------------------------------------------------------------


def save_routes(conn: Connection, routes: Mapping[str, Mapping[str, Any]]) -> None:
    """The route of each order (gateway.routing), by order id; an order routed again replaces it."""
    if not routes:
        return
    r = t.order_routes
    now = utcnow()
    conn.execute(delete(r).where(r.c.order_id.in_(sorted(routes))))
    conn.execute(insert(r), [{"order_id": oid, "route": dict(route), "created_at": now} for oid, route in routes.items()])


def routes_of(conn: Connection, order_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The stored routes of these orders (those routed)."""
    r = t.order_routes
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(order_ids):
        for row in conn.execute(select(r.c.order_id, r.c.route).where(r.c.order_id.in_(chunk))):
            if isinstance(row.route, dict):
                out[row.order_id] = row.route
    return out

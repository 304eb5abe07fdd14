"""The data rules read, fetched once per batch of orders, not once per line.

:class:`BatchContext` collects every SKU, buyer part number, GTIN and account the batch's
orders mention, asks the master data for them in a few calls, and hands each order an
:class:`OrderContext`: its lines resolved to catalogue items (SKU, else the partner's
cross-reference of the buyer part number, else the GTIN), its account, its prices, its value.

An order's history (how many orders an account placed, how much of a SKU it usually orders,
whether the same content arrived before) comes from an :class:`OrderHistory`; without one the
rules that need it skip those signals.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from gateway.masterdata.model import Account, Item, MasterData, Price, StockLevel
from gateway.model import Order, OrderLine, Purpose

if TYPE_CHECKING:
    from gateway.rules.base import StockNeed

__all__ = [
    "BatchContext",
    "OrderContext",
    "OrderHistory",
    "ResolvedLine",
    "fingerprint",
    "order_value",
]


class OrderHistory(Protocol):
    """What the gateway knows of earlier orders (the store implements it; tests use a dict)."""

    def order_counts(self, accounts: Collection[str]) -> Mapping[str, int]:
        """Orders received before, by account code."""
        ...

    def usual_quantities(self, accounts: Collection[str]) -> Mapping[tuple[str, str], Decimal]:
        """The quantity an account usually orders of a SKU (a median), by (account, sku)."""
        ...

    def seen(self, fingerprints: Collection[str]) -> Mapping[str, str]:
        """Content fingerprints already received, each with a description of that order."""
        ...


# Not frozen: one is built per order line per batch, and a frozen dataclass's __init__ (object.__setattr__
# per field) measured 4x slower; rules read these and never assign to them.
@dataclass(slots=True)
class ResolvedLine:
    index: int  # 0-based position in order.lines
    label: str  # line number as sent, else 1-based position
    line: OrderLine
    sku: str | None  # the seller's SKU after cross-reference; None: not known
    item: Item | None
    base: Decimal | None = None  # quantity in the item's base unit; None: unknown item, or a unit it is not sold in


def order_value(order: Order, priced: Decimal | None = None) -> Decimal:
    """The order's value: the declared total when there is one, else the sum of its lines
    (`priced`, when the caller summed them already)."""
    if order.totals is not None and order.totals.total is not None:
        return order.totals.total
    return lines_value(order) if priced is None else priced


def lines_value(order: Order) -> Decimal:
    return sum(
        (ln.quantity * ln.unit_price for ln in order.lines if ln.unit_price is not None), Decimal(0)
    )


@dataclass
class OrderContext:
    """One order as the rules see it."""

    order: Order
    lines: list[ResolvedLine]
    account: Account | None
    batch: BatchContext
    value: Decimal = Decimal(0)  # `order_value`
    lines_value: Decimal = Decimal(0)  # the sum of the priced lines (`lines_value`), worked out once
    fingerprint: str | None = None  # the order's content (see `fingerprint`)
    stock_needs: list[StockNeed] = field(default_factory=list)  # what to reserve if accepted (the stock rule)

    def prices(self, sku: str) -> list[Price]:
        """Prices valid on the order date for `sku`: the account's contract prices first."""
        return self.price_table().get(sku, [])

    def price_table(self) -> Mapping[str, list[Price]]:
        """Prices valid on the order date by SKU, the account's contract prices first: for a
        rule that reads every line's, once per order."""
        return self.batch.price_table(self.account.code if self.account else None)

    def order_count(self) -> int | None:
        """Orders the account placed before; None: unknown (no account or no history)."""
        if self.account is None or self.batch.history is None:
            return None
        return self.batch.counts.get(self.account.code, 0)

    def usual_quantity(self, sku: str) -> Decimal | None:
        if self.account is None:
            return None
        return self.batch.usual.get((self.account.code, sku))


@dataclass
class BatchContext:
    """Master data for one batch of orders, prefetched."""

    masterdata: MasterData | None
    history: OrderHistory | None = None
    day: dt.date = field(default_factory=dt.date.today)
    items: dict[str, Item] = field(default_factory=dict)
    by_gtin: dict[str, Item] = field(default_factory=dict)
    xrefs: dict[str, dict[str, str]] = field(default_factory=dict)  # partner -> buyer part -> sku
    accounts: dict[tuple[str | None, str | None, str | None], Account | None] = field(
        default_factory=dict
    )
    counts: Mapping[str, int] = field(default_factory=dict)
    usual: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)  # content seen in this batch (rule duplicates)
    needs: frozenset[str] = frozenset({"counts", "usual", "seen"})
    seen_before: dict[str, str] = field(default_factory=dict)  # content the history saw before this batch
    _prices: dict[str | None, Mapping[str, list[Price]]] = field(default_factory=dict)
    _skus: set[str] = field(default_factory=set)
    _stock: Mapping[str, list[StockLevel]] | None = None

    def stock(self, sku: str) -> list[StockLevel]:
        """Stock levels of `sku` per warehouse, as read for the batch (every SKU of the batch in
        one look-up, on first use: only a configured stock rule reads stock)."""
        if self._stock is None:
            self._stock = {} if self.masterdata is None or not self._skus else self.masterdata.stock(self._skus)
        return self._stock.get(sku, [])

    @classmethod
    def prefetch(
        cls,
        orders: Sequence[Order],
        masterdata: MasterData | None,
        history: OrderHistory | None = None,
        day: dt.date | None = None,
        needs: frozenset[str] = frozenset({"counts", "usual", "seen"}),
    ) -> BatchContext:
        """`needs`: what of the order history the rules read (see Rule.needs_history)."""
        ctx = cls(masterdata, history, day or dt.date.today())
        ctx.needs = needs
        if masterdata is None:
            return ctx
        skus: set[str] = set()
        gtins: set[str] = set()
        parts: dict[str, set[str]] = {}
        for o in orders:
            for ln in o.lines:
                if ln.sku:
                    skus.add(ln.sku)
                if ln.buyer_part_number and o.partner:
                    parts.setdefault(o.partner, set()).add(ln.buyer_part_number)
                if ln.gtin:
                    gtins.add(ln.gtin)
        for partner, numbers in parts.items():
            ctx.xrefs[partner] = dict(masterdata.cross_references(partner, numbers))
            skus.update(ctx.xrefs[partner].values())
        ctx.items = dict(masterdata.items(skus))
        ctx.by_gtin = {i.gtin: i for i in ctx.items.values() if i.gtin}
        missing = gtins - set(ctx.by_gtin)
        if missing:
            found = masterdata.items_by_gtin(missing)
            ctx.by_gtin.update(found)
            ctx.items.update({i.sku: i for i in found.values()})
        ctx._skus = set(ctx.items)
        keys = {(o.buyer.code if o.buyer is not None else None, o.partner, o.customer_email) for o in orders}
        ctx.accounts.update(masterdata.accounts(keys))
        codes = {a.code for a in ctx.accounts.values() if a is not None}
        if history is not None and codes:
            if "counts" in needs:
                ctx.counts = history.order_counts(codes)
            if "usual" in needs:
                ctx.usual = history.usual_quantities(codes)
        return ctx

    def account_of(self, order: Order) -> Account | None:
        code = order.buyer.code if order.buyer is not None else None
        key = (code, order.partner, order.customer_email)
        if key not in self.accounts:
            found = None
            if self.masterdata is not None:
                found = self.masterdata.account(
                    code=code, partner=order.partner, email=order.customer_email
                )
            self.accounts[key] = found
        return self.accounts[key]

    def price_table(self, customer: str | None) -> Mapping[str, list[Price]]:
        """Prices for one customer (fetched by `contexts` for its SKUs; else for every SKU of the batch)."""
        if customer not in self._prices:
            self._prices[customer] = (
                {}
                if self.masterdata is None
                else self.masterdata.prices(self._skus, customer, self.day)
            )
        return self._prices[customer]

    def resolve(self, order: Order, index: int) -> ResolvedLine:
        ln = order.lines[index]
        label = ln.line_number or str(index + 1)
        sku = ln.sku
        item: Item | None = self.items.get(sku) if sku else None
        if item is None:  # not the seller's SKU: the partner's cross-reference, else the GTIN
            if ln.buyer_part_number and order.partner and (ref := self.xrefs.get(order.partner, {}).get(ln.buyer_part_number)):
                sku, item = ref, self.items.get(ref)
            elif ln.gtin and ln.gtin in self.by_gtin:
                item = self.by_gtin[ln.gtin]
                sku = item.sku
        base = item.base_quantity(ln.quantity, ln.uom) if item is not None else None
        return ResolvedLine(index, label, ln, sku, item, base)

    def order(self, order: Order) -> OrderContext:
        lines = [self.resolve(order, i) for i in range(len(order.lines))]
        priced = lines_value(order)
        ctx = OrderContext(order, lines, self.account_of(order), self, order_value(order, priced), priced)
        ctx.fingerprint = fingerprint(order, ctx)
        return ctx

    def contexts(self, orders: Sequence[Order]) -> list[OrderContext]:
        """Every order's context; their content fingerprints are looked up in the history at once."""
        out = [self.order(o) for o in orders]
        if self.masterdata is not None:
            # Prices per customer, for that customer's SKUs only: one look-up per customer.
            wanted: dict[str | None, set[str]] = {}
            for c in out:
                skus = wanted.setdefault(c.account.code if c.account else None, set())
                skus.update(rl.sku for rl in c.lines if rl.item is not None and rl.sku)
            for customer, skus in wanted.items():
                self._prices[customer] = self.masterdata.prices(skus, customer, self.day) if skus else {}
        if self.history is not None and "seen" in self.needs:
            fps = {c.fingerprint for c in out if c.fingerprint}
            self.seen_before = dict(self.history.seen(fps)) if fps else {}
        return out


def fingerprint(order: Order, ctx: OrderContext) -> str | None:
    """The order's content as a hash; None when it says too little to be matched."""
    if order.purpose != Purpose.ORIGINAL or order.lines_are_changes or not order.lines:
        return None
    who = (
        (ctx.account.code if ctx.account else None)
        or order.partner
        or (order.customer_email or "").lower()
        or None
    )
    if who is None:
        return None
    ship = order.ship_to
    where = (
        f"{(ship.postal_code or '').replace(' ', '').upper()}|{(ship.country or '').upper()}"
        if ship
        else ""
    )
    what = sorted(
        f"{rl.sku or rl.line.buyer_part_number or rl.line.gtin or rl.line.description}={rl.line.quantity.normalize():f}"
        for rl in ctx.lines
    )
    return hashlib.sha256("\n".join([who, where, *what]).encode()).hexdigest()

"""Master data as the rules see it: items, prices, stock, customer accounts.

These are plain, immutable values. The store keeps them (`gateway.store.masterdata`), `gateway
data import KIND FILE` loads them from CSV or XLSX, and an ERP connector may refresh them; the
rules (`gateway.rules`) only read them, through :class:`MasterData`, so a rule can be tested
with an in-memory table and never imports the store.

Quantities and money are ``Decimal``. Units of measure are the codes partners send (EA, CA,
PCE, ...), upper case; an item's ``uoms`` says how many base units one of each unit it is sold
in holds (``{"EA": 1, "CA": 12}``), so a line of 2 CA asks for 24 base units.

Every record says where it came from (``source``: an import file's name, ``erp:<connector>``)
and when it was last updated, so a person can tell a stale price list from a wrong rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

__all__ = [
    "Account",
    "AccountKey",
    "Address",
    "Item",
    "KINDS",
    "MasterData",
    "Price",
    "Reservation",
    "ReserveOutcome",
    "StockLevel",
]


@dataclass(frozen=True, slots=True)
class Item:
    """One catalogue item, by the seller's SKU."""

    sku: str
    description: str | None = None
    gtin: str | None = None
    base_uom: str = "EA"
    uoms: Mapping[str, Decimal] = field(default_factory=dict)  # unit sold -> base units in one; empty: base_uom only
    pack_size: Decimal | None = None  # in base units: an order must be a multiple of it
    weight_kg: Decimal | None = None  # per base unit
    length_cm: Decimal | None = None
    width_cm: Decimal | None = None
    height_cm: Decimal | None = None
    discontinued: bool = False
    source: str = ""
    updated_at: dt.datetime | None = None

    def base_quantity(self, quantity: Decimal, uom: str | None) -> Decimal | None:
        """`quantity` of `uom` in base units; None when the item is not sold in that unit."""
        if uom is None or uom == self.base_uom:  # most order lines: the base unit
            return quantity
        unit = uom.upper()
        if unit == self.base_uom.upper():
            return quantity
        factor = self.uoms.get(unit)
        return None if factor is None else quantity * factor


@dataclass(frozen=True, slots=True)
class Price:
    """A price for one SKU: a list price (``customer`` None) or a customer's contract price."""

    sku: str
    unit_price: Decimal
    currency: str
    uom: str | None = None  # the unit the price is per; None: the item's base unit
    customer: str | None = None  # an account code; None: everyone
    price_list: str = "default"
    min_quantity: Decimal = Decimal(0)
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None  # inclusive
    source: str = ""
    updated_at: dt.datetime | None = None

    def valid_on(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class StockLevel:
    """Stock of one SKU in one warehouse, in base units."""

    sku: str
    warehouse: str
    on_hand: Decimal
    reserved: Decimal = Decimal(0)  # held for accepted orders not yet shipped
    reorder_point: Decimal | None = None
    source: str = ""
    updated_at: dt.datetime | None = None

    @property
    def available(self) -> Decimal:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class Address:
    """An allowed ship-to of an account (matched on postal code and country, then street)."""

    name: str | None = None
    street: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None
    code: str | None = None  # the partner's location code (a GLN, a store number), if any


@dataclass(frozen=True, slots=True)
class Account:
    """A customer account: who may order, on what terms, up to what credit."""

    code: str
    name: str | None = None
    partner: str | None = None  # the configured trading partner this account orders as
    email: str | None = None  # a cart or e-mail customer's address
    channel: str | None = None
    currency: str | None = None
    credit_limit: Decimal | None = None  # None: no limit
    open_balance: Decimal = Decimal(0)
    payment_terms: str | None = None
    ship_to: tuple[Address, ...] = ()  # empty: any ship-to is allowed
    source: str = ""
    updated_at: dt.datetime | None = None

    @property
    def remaining_credit(self) -> Decimal | None:
        return None if self.credit_limit is None else self.credit_limit - self.open_balance


class ReserveOutcome(StrEnum):
    RESERVED = "reserved"  # the whole quantity
    PARTIAL = "partial"  # part of it (only when the caller allowed a partial fill)
    SHORT = "short"  # nothing reserved: not enough available


@dataclass(frozen=True, slots=True)
class Reservation:
    """Stock held for one order line in one warehouse."""

    order_id: str
    line: str  # the order line's number (or its position, 1-based, as text)
    sku: str
    warehouse: str
    quantity: Decimal  # base units


KINDS = ("items", "xrefs", "prices", "stock", "accounts")  # what `gateway data import KIND` loads


AccountKey = tuple[str | None, str | None, str | None]  # (account code, partner, e-mail) as `account()` takes them


class MasterData(Protocol):
    """What rules may read. Every method takes a batch so a rule over 500 orders costs a few
    queries, not thousands; implementations cache within one processing batch."""

    def items(self, skus: Collection[str]) -> Mapping[str, Item]:
        """Items by SKU; unknown SKUs are absent."""
        ...

    def items_by_gtin(self, gtins: Collection[str]) -> Mapping[str, Item]:
        """Items by GTIN/UPC/EAN; unknown codes are absent."""
        ...

    def cross_references(self, partner: str, buyer_part_numbers: Collection[str]) -> Mapping[str, str]:
        """The seller's SKU of each buyer part number this partner uses, where one is known."""
        ...

    def prices(self, skus: Collection[str], customer: str | None, day: dt.date) -> Mapping[str, list[Price]]:
        """Prices valid on `day` by SKU: the customer's contract prices first, then list prices."""
        ...

    def stock(self, skus: Collection[str]) -> Mapping[str, list[StockLevel]]:
        """Stock levels by SKU, one per warehouse that holds the SKU."""
        ...

    def account(self, *, code: str | None = None, partner: str | None = None, email: str | None = None) -> Account | None:
        """The account with this code, else the one for this partner, else for this e-mail."""
        ...

    def accounts(self, keys: Collection[AccountKey]) -> Mapping[AccountKey, Account | None]:
        """`account()` for many (code, partner, e-mail) keys at once: a batch of orders from
        many customers costs a few queries, not one per customer."""
        ...

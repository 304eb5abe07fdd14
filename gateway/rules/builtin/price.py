"""price: the order's prices against the price list or the customer's contract, and its totals.

For each line with a known item, the price that applies is the customer's contract price if
it has one for the SKU, else the list price, in the order's currency, for the largest
``min_quantity`` the line reaches, converted to the line's unit of measure. Reason codes
(default outcome):

- PRICE_OFF_LIST (hold, per line): the line's price differs from it by more than ``tolerance_percent``
  (the 855 then says IP with our price when the order is accepted)
- PRICE_MISSING (accept, per line): the line has no price (a note; the 855 says our price)
- NO_LIST_PRICE (accept, per line): no price is known for the item in the order's currency
- TOTAL_MISMATCH (hold): the declared subtotal (or total, less tax and shipping, plus discounts)
  is not the sum of the lines, beyond ``total_tolerance``

Needs master data (items, prices).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from gateway.masterdata.model import Price
from gateway.model import Order
from gateway.rules.base import Finding, Outcome, Rule, RuleConfigBase, money
from gateway.rules.context import OrderContext, ResolvedLine

__all__ = ["PriceConfig", "PriceRule"]

_NONE: list[Price] = []  # a SKU without prices (never appended to)


class PriceConfig(RuleConfigBase):
    CODES: ClassVar[Mapping[str, Outcome]] = {
        "PRICE_OFF_LIST": Outcome.HOLD,
        "PRICE_MISSING": Outcome.ACCEPT,
        "NO_LIST_PRICE": Outcome.ACCEPT,
        "TOTAL_MISMATCH": Outcome.HOLD,
    }

    type: Literal["price"] = "price"
    tolerance_percent: Decimal = Field(
        Decimal(0), ge=0, description="How far (in percent) a line's price may be from ours."
    )
    total_tolerance: Decimal = Field(
        Decimal("0.01"),
        ge=0,
        description="How far (in the order currency) declared totals may be from the sum of the lines.",
    )


def _applying(prices: list[Price], want: str | None, base: Decimal) -> Price | None:
    """Of `prices` (contract prices first), the one for currency `want` (None: any) and a
    quantity of `base` units: the customer's, else the list's, for the largest min_quantity."""
    if len(prices) == 1:  # the usual case: one list price
        p = prices[0]
        return p if (want is None or p.currency == want) and p.min_quantity <= base else None
    usable = [p for p in prices if want is None or p.currency == want]
    contract = [p for p in usable if p.customer is not None]
    reached = [p for p in contract or usable if p.min_quantity <= base]
    return max(reached, key=lambda p: p.min_quantity, default=None)


def per_line_unit(rl: ResolvedLine, price: Price) -> Decimal | None:
    """`price` converted to the line's unit of measure (None: the units do not convert)."""
    item = rl.item
    assert item is not None
    if price.uom is None and rl.line.uom is None:  # both in the item's base unit: most lines
        return price.unit_price
    base_uom = item.base_uom.upper()
    if (price.uom is None or price.uom.upper() == base_uom) and (rl.line.uom is None or rl.line.uom.upper() == base_uom):
        return price.unit_price
    line_factor = item.base_quantity(Decimal(1), rl.line.uom)
    price_factor = item.base_quantity(Decimal(1), price.uom)
    if line_factor is None or price_factor is None or price_factor == 0:
        return None
    return price.unit_price * line_factor / price_factor


class PriceRule(Rule):
    config_model = PriceConfig
    needs_masterdata = True

    def check(self, order: Order, ctx: OrderContext) -> Iterable[Finding]:
        cfg = self.config
        assert isinstance(cfg, PriceConfig)
        table = ctx.price_table()  # read once per order, not per line (a third of this rule's time)
        want = order.currency.upper() if order.currency else None
        for rl in ctx.lines:
            if rl.item is None or rl.sku is None or rl.base is None:
                continue  # an unknown item or a unit it is not sold in: the catalogue rule says so
            price = _applying(table.get(rl.sku, _NONE), want, rl.base)
            ours = per_line_unit(rl, price) if price is not None else None
            if ours is None:
                yield self.finding(
                    "NO_LIST_PRICE",
                    f"line {rl.label}: no price for {rl.sku} in {order.currency or 'any currency'}",
                    rl.label,
                    sku=rl.sku,
                )
                continue
            given = rl.line.unit_price
            if given is None:
                yield self.finding(
                    "PRICE_MISSING",
                    f"line {rl.label}: no price sent; ours is {money(ours)}",
                    rl.label,
                    price=money(ours),
                )
                continue
            allowed = abs(ours) * cfg.tolerance_percent / 100
            if abs(given - ours) > allowed:
                kind = "contract" if price is not None and price.customer else "list"
                yield self.finding(
                    "PRICE_OFF_LIST",
                    f"line {rl.label}: price {money(given)} for {rl.sku} differs from the {kind} price {money(ours)}"
                    + (
                        f" by more than {cfg.tolerance_percent.normalize():f}%"
                        if cfg.tolerance_percent
                        else ""
                    ),
                    rl.label,
                    price=money(ours),
                    sent=money(given),
                )
        yield from self._totals(order, ctx, cfg)

    def _totals(self, order: Order, ctx: OrderContext, cfg: PriceConfig) -> Iterable[Finding]:
        t = order.totals
        if t is None or not order.lines or any(ln.unit_price is None for ln in order.lines):
            return
        lines = ctx.lines_value
        if t.subtotal is not None:
            declared, what = t.subtotal, "subtotal"
        elif t.total is not None:
            declared = (
                t.total - (t.tax_total or 0) - (t.shipping_total or 0) + (t.discount_total or 0)
            )
            what = "total (less tax and shipping, plus discounts)"
        else:
            return
        if abs(declared - lines) > cfg.total_tolerance:
            yield self.finding(
                "TOTAL_MISMATCH",
                f"the declared {what} {money(declared)} is not the sum of the lines {money(lines)}",
                declared=money(declared),
                lines=money(lines),
            )

"""stock: is there stock for every line, and what happens when there is not.

Available = on hand minus reserved, summed over the warehouses that hold the SKU, in base
units (the line's quantity in its unit times the item's conversion). What a short line does
depends on the policy of the order's partner, else its channel, else ``policy``:

- ``block``: STOCK_SHORT (default: hold; ``outcomes: {STOCK_SHORT: reject}`` refuses it);
- ``backorder``: BACKORDERED (accept, a note): the order goes on, the short units are
  backordered (855 ACK01 IB / ORDRSP line 3 with QTY+83), dated ``backorder_days`` ahead when
  set;
- ``partial``: PARTIAL_FILL (accept): what is available is filled, the rest backordered
  (``partial_rest: backorder``) or cancelled (``cancel``: the line is answered IQ with the
  quantity shipped, IR when nothing is).

REORDER_POINT (accept, an alert) when the warehouse a line would be taken from falls to its
reorder point or below.

An accepted order's lines are reserved in the transaction that stores its decision
(gateway.processing.decide); the decision and the 855 follow what was really reserved, so a
line another order took meanwhile is backordered (or, under ``block``, the order is held with
STOCK_SHORT). Needs master data (items, stock).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from gateway.masterdata.model import StockLevel
from gateway.model import Channel, Order
from gateway.rules.base import Finding, Outcome, Rule, RuleConfigBase, StockNeed
from gateway.rules.context import OrderContext

__all__ = ["Policy", "StockConfig", "StockRule"]

Policy = Literal["block", "backorder", "partial"]


class StockConfig(RuleConfigBase):
    CODES: ClassVar[Mapping[str, Outcome]] = {
        "STOCK_SHORT": Outcome.HOLD,
        "BACKORDERED": Outcome.ACCEPT,
        "PARTIAL_FILL": Outcome.ACCEPT,
        "REORDER_POINT": Outcome.ACCEPT,
    }

    type: Literal["stock"] = "stock"
    policy: Policy = Field("block", description="What a short line does: block (hold or reject), backorder, partial.")
    by_channel: dict[Channel, Policy] = Field(default_factory=dict, description="Policy per channel (overrides `policy`).")
    by_partner: dict[str, Policy] = Field(default_factory=dict, description="Policy per trading partner (overrides `by_channel`).")
    partial_rest: Literal["backorder", "cancel"] = Field("backorder", description="partial: the units not available are backordered or cancelled.")
    backorder_days: int | None = Field(None, ge=0, description="Backordered units are expected this many days after the order is decided (the 855's date); unset: no date.")

    def policy_of(self, order: Order) -> Policy:
        if order.partner and order.partner in self.by_partner:
            return self.by_partner[order.partner]
        return self.by_channel.get(order.channel, self.policy)


def _q(value: Decimal) -> str:
    return f"{value.normalize():f}"


class StockRule(Rule):
    config_model = StockConfig
    needs_masterdata = True

    def check(self, order: Order, ctx: OrderContext) -> Iterable[Finding]:
        cfg = self.config
        assert isinstance(cfg, StockConfig)
        if order.lines_are_changes:
            return
        policy = cfg.policy_of(order)
        when = ctx.batch.day + dt.timedelta(days=cfg.backorder_days) if cfg.backorder_days is not None else None
        wanted: dict[str, Decimal] = {}  # the same SKU on two lines draws on the same stock
        for rl in ctx.lines:
            if rl.item is None or rl.sku is None or rl.base is None or rl.base <= 0:
                continue  # the catalogue rule speaks for unknown items and units
            sku = rl.sku
            levels = ctx.batch.stock(sku)
            before = wanted.get(sku, Decimal(0))
            wanted[sku] = before + rl.base
            available = max(sum((lv.available for lv in levels), Decimal(0)) - before, Decimal(0))
            ctx.stock_needs.append(StockNeed(rl.index, rl.label, sku, rl.base, rl.line.quantity, policy, cfg.partial_rest, when, rl.item.weight_kg))
            unit = rl.item.base_uom
            if available < rl.base:
                short = rl.base - available
                said = f"line {rl.label}: {_q(rl.base)} {unit} of {sku} ordered, {_q(available)} available"
                if policy == "block":
                    yield self.finding("STOCK_SHORT", f"{said}; the order waits until there is stock", rl.label, sku=sku, short=_q(short))
                elif policy == "backorder":
                    dated = f" (expected {when.isoformat()})" if when else ""
                    yield self.finding("BACKORDERED", f"{said}; {_q(short)} backordered{dated}", rl.label, sku=sku, short=_q(short))
                else:
                    rest = "backordered" if cfg.partial_rest == "backorder" else "cancelled"
                    yield self.finding("PARTIAL_FILL", f"{said}; {_q(available)} shipped, {_q(short)} {rest}", rl.label, sku=sku, short=_q(short))
                continue
            low = _falls_to_reorder_point(levels, rl.base + before)
            if low is not None:
                yield self.finding(
                    "REORDER_POINT",
                    f"line {rl.label}: {sku} in warehouse {low.warehouse} falls to its reorder point "
                    f"({_q(low.available - rl.base - before)} left, reorder at {_q(low.reorder_point or Decimal(0))})",
                    rl.label, sku=sku, warehouse=low.warehouse,
                )


def _falls_to_reorder_point(levels: list[StockLevel], want: Decimal) -> StockLevel | None:
    """The warehouse the reservation would take the whole line from (the one with the most
    available, as gateway.store.masterdata.StockKeeper does), if that leaves it at or below its
    reorder point."""
    whole = [lv for lv in levels if lv.available >= want]
    if not whole:
        return None
    top = min(whole, key=lambda lv: (-lv.available, lv.warehouse))
    if top.reorder_point is not None and top.available - want <= top.reorder_point:
        return top
    return None

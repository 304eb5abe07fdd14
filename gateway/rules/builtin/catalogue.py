"""catalogue: every line names an item we sell, in a unit we sell it in, in whole packs.

A line's item is its SKU, else the partner's cross-reference of its buyer part number, else
its GTIN. Reason codes (default outcome, all per line):

- UNKNOWN_SKU (reject): no catalogue item after cross-reference
- DISCONTINUED (reject): the item is discontinued
- UOM_NOT_SOLD (reject): the item is not sold in the line's unit of measure
- PACK_SIZE_MULTIPLE (hold): the quantity (in base units) is not a multiple of the pack size

Needs master data (items, cross-references).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, Literal

from gateway.model import Order
from gateway.rules.base import Finding, Outcome, Rule, RuleConfigBase
from gateway.rules.context import OrderContext

__all__ = ["CatalogueConfig", "CatalogueRule"]


class CatalogueConfig(RuleConfigBase):
    CODES: ClassVar[Mapping[str, Outcome]] = {
        "UNKNOWN_SKU": Outcome.REJECT,
        "DISCONTINUED": Outcome.REJECT,
        "UOM_NOT_SOLD": Outcome.REJECT,
        "PACK_SIZE_MULTIPLE": Outcome.HOLD,
    }

    type: Literal["catalogue"] = "catalogue"


class CatalogueRule(Rule):
    config_model = CatalogueConfig
    needs_masterdata = True

    def check(self, order: Order, ctx: OrderContext) -> Iterable[Finding]:
        for rl in ctx.lines:
            ln, item = rl.line, rl.item
            if order.lines_are_changes and ln.change == "delete":
                continue
            if item is None:
                named = (
                    ", ".join(
                        f"{k} {v}"
                        for k, v in (
                            ("SKU", ln.sku),
                            ("buyer part", ln.buyer_part_number),
                            ("GTIN", ln.gtin),
                        )
                        if v
                    )
                    or "no item number"
                )
                yield self.finding(
                    "UNKNOWN_SKU", f"line {rl.label}: {named} is not in the catalogue", rl.label
                )
                continue
            if item.discontinued:
                yield self.finding(
                    "DISCONTINUED",
                    f"line {rl.label}: {item.sku} is discontinued",
                    rl.label,
                    sku=item.sku,
                )
                continue
            base = rl.base
            if base is None:
                sold = ", ".join([item.base_uom, *sorted(item.uoms)])
                yield self.finding(
                    "UOM_NOT_SOLD",
                    f"line {rl.label}: {item.sku} is not sold in {ln.uom} (sold in {sold})",
                    rl.label,
                    sku=item.sku,
                )
                continue
            if item.pack_size and item.pack_size > 0 and base % item.pack_size != 0:
                yield self.finding(
                    "PACK_SIZE_MULTIPLE",
                    f"line {rl.label}: {base.normalize():f} {item.base_uom} of {item.sku} is not a multiple of its pack of {item.pack_size.normalize():f}",
                    rl.label,
                    sku=item.sku,
                )

"""duplicates: the same order arriving through two channels (an e-mail and an EDI file).

The same PO number from one partner is recognised by processing already; this rule matches by
content: who orders (account, else partner, else customer e-mail), where it goes (ship-to
postal code and country) and what (each item and quantity, in any order). A match with an
order of the same batch or one the order history has seen (the store keeps the fingerprints
of decided orders) gives DUPLICATE_CONTENT (default: hold), naming the other order.
Only original orders are compared; changes and cancellations never are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, Literal

from gateway.model import Order
from gateway.rules.base import Finding, Outcome, Rule, RuleConfigBase
from gateway.rules.context import OrderContext

__all__ = ["DuplicatesConfig", "DuplicatesRule"]


class DuplicatesConfig(RuleConfigBase):
    CODES: ClassVar[Mapping[str, Outcome]] = {"DUPLICATE_CONTENT": Outcome.HOLD}

    type: Literal["duplicates"] = "duplicates"


class DuplicatesRule(Rule):
    config_model = DuplicatesConfig
    needs_history = frozenset({"seen"})

    def check(self, order: Order, ctx: OrderContext) -> Iterable[Finding]:
        fp = ctx.fingerprint
        if fp is None:
            return
        batch = ctx.batch
        earlier = batch.fingerprints.get(fp) or batch.seen_before.get(fp)
        here = f"PO {order.po_number} ({order.channel.value})"
        if earlier is None:
            batch.fingerprints[fp] = here
            return
        yield self.finding(
            "DUPLICATE_CONTENT",
            f"same customer, ship-to and items as {earlier}: probably the same order sent twice",
            fingerprint=fp,
        )

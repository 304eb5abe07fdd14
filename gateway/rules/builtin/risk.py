"""risk: high-value orders and a score of simple signals, with a threshold per channel.

Reason codes (default outcome):

- HIGH_VALUE (hold): the order's value is over ``hold_above``
- RISK_SCORE (hold): the signals add up to ``threshold`` or more (``thresholds`` per channel)

Signals and their weights (``weights``): ``countries_differ`` (billing and shipping country
differ), ``first_order`` (the account's first order, worth ``first_order_value`` or more; needs
order history), ``quantity_above_usual`` (a line over ``usual_factor`` times what the account
usually orders of the SKU; needs order history).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.model import Channel, Order
from gateway.rules.base import Finding, Outcome, Rule, RuleConfigBase, money
from gateway.rules.context import OrderContext

__all__ = ["RiskConfig", "RiskRule"]


class RiskWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    countries_differ: int = Field(30, ge=0, description="Billing and shipping country differ.")
    first_order: int = Field(
        40, ge=0, description="The account's first order, of first_order_value or more."
    )
    quantity_above_usual: int = Field(
        40, ge=0, description="A line far above what the account usually orders."
    )


class RiskConfig(RuleConfigBase):
    CODES: ClassVar[Mapping[str, Outcome]] = {
        "HIGH_VALUE": Outcome.HOLD,
        "RISK_SCORE": Outcome.HOLD,
    }

    type: Literal["risk"] = "risk"
    hold_above: Decimal | None = Field(
        None, gt=0, description="Hold every order worth more than this (order currency)."
    )
    threshold: int = Field(50, gt=0, description="Score at which an order is held.")
    thresholds: dict[Channel, int] = Field(
        default_factory=dict, description="Score threshold per channel, overriding threshold."
    )
    weights: RiskWeights = Field(default_factory=RiskWeights, description="Weight of each signal.")
    first_order_value: Decimal = Field(
        Decimal(1000), ge=0, description="A first order worth this or more is a signal."
    )
    usual_factor: Decimal = Field(
        Decimal(5), gt=1, description="A line over this many times the usual quantity is a signal."
    )


class RiskRule(Rule):
    config_model = RiskConfig
    needs_history = frozenset({"counts", "usual"})

    def check(self, order: Order, ctx: OrderContext) -> Iterable[Finding]:
        cfg = self.config
        assert isinstance(cfg, RiskConfig)
        if cfg.hold_above is not None and ctx.value > cfg.hold_above:
            yield self.finding(
                "HIGH_VALUE",
                f"order value {money(ctx.value)} is over {money(cfg.hold_above)}: a person approves it",
                value=money(ctx.value),
            )
        signals: list[tuple[str, int]] = []
        bill, ship = order.bill_to, order.ship_to
        if (
            bill
            and ship
            and bill.country
            and ship.country
            and bill.country.strip().upper() != ship.country.strip().upper()
        ):
            signals.append(
                (
                    f"billing country {bill.country} differs from shipping country {ship.country}",
                    cfg.weights.countries_differ,
                )
            )
        count = ctx.order_count()
        if count == 0 and ctx.value >= cfg.first_order_value:
            signals.append(
                (f"first order of the account, worth {money(ctx.value)}", cfg.weights.first_order)
            )
        for rl in ctx.lines:
            usual = ctx.usual_quantity(rl.sku) if rl.sku else None
            if usual and rl.line.quantity > usual * cfg.usual_factor:
                signals.append(
                    (
                        f"line {rl.label}: {rl.line.quantity.normalize():f} of {rl.sku}, usually {usual.normalize():f}",
                        cfg.weights.quantity_above_usual,
                    )
                )
                break
        score = sum(w for _, w in signals)
        limit = cfg.thresholds.get(order.channel, cfg.threshold)
        if signals and score >= limit:
            yield self.finding(
                "RISK_SCORE",
                f"risk score {score} (threshold {limit}): " + "; ".join(s for s, _ in signals),
                score=score,
            )

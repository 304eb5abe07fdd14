"""payment: a cart order that is not paid waits for a person.

Runs for cart channels (shopify, woocommerce, web_form) unless ``channels`` says otherwise.
Reason code: PAYMENT_PENDING (default: hold) when the payment status is not one of
``paid_statuses``, or the order carries none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, Literal

from pydantic import Field

from gateway.model import Channel, Order
from gateway.rules.base import Finding, Outcome, Rule, RuleConfigBase
from gateway.rules.context import OrderContext

__all__ = ["PaymentConfig", "PaymentRule"]

CART_CHANNELS = [Channel.SHOPIFY, Channel.WOOCOMMERCE, Channel.WEB_FORM]


class PaymentConfig(RuleConfigBase):
    CODES: ClassVar[Mapping[str, Outcome]] = {"PAYMENT_PENDING": Outcome.HOLD}

    type: Literal["payment"] = "payment"
    channels: list[Channel] | None = Field(
        default_factory=lambda: list(CART_CHANNELS),
        description="Channels whose orders must be paid (default: the carts).",
    )
    paid_statuses: list[str] = Field(
        default_factory=lambda: ["paid", "authorized"],
        description="Payment statuses that count as paid (lower case).",
    )


class PaymentRule(Rule):
    config_model = PaymentConfig

    def check(self, order: Order, ctx: OrderContext) -> Iterable[Finding]:
        cfg = self.config
        assert isinstance(cfg, PaymentConfig)
        status = (order.payment.status or "").strip().lower() if order.payment else ""
        if status not in {s.lower() for s in cfg.paid_statuses}:
            said = f"payment is {status}" if status else "the order says nothing about payment"
            yield self.finding(
                "PAYMENT_PENDING",
                f"{said}; ship only once it is paid ({', '.join(cfg.paid_statuses)})",
                status=status,
            )

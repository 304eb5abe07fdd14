"""credit: a B2B order over the account's remaining credit waits for a person.

The order's value (its declared total, else the sum of its lines) is compared with the
account's credit limit minus its open balance. Reason codes: CREDIT_EXCEEDED (default:
hold); ACCOUNT_UNKNOWN (default: accept, a note) when no account matches the order's buyer
code, partner or e-mail. Needs master data (accounts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, Literal

from pydantic import Field

from gateway.model import Channel, Order
from gateway.rules.base import Finding, Outcome, Rule, RuleConfigBase, money
from gateway.rules.context import OrderContext

__all__ = ["CreditConfig", "CreditRule"]

B2B_CHANNELS = [
    Channel.X12,
    Channel.EDIFACT,
    Channel.CXML,
    Channel.UBL,
    Channel.EMAIL,
    Channel.CSV,
    Channel.XLSX,
    Channel.PDF,
]


class CreditConfig(RuleConfigBase):
    CODES: ClassVar[Mapping[str, Outcome]] = {
        "CREDIT_EXCEEDED": Outcome.HOLD,
        "ACCOUNT_UNKNOWN": Outcome.ACCEPT,
    }

    type: Literal["credit"] = "credit"
    channels: list[Channel] | None = Field(
        default_factory=lambda: list(B2B_CHANNELS),
        description="Channels checked (default: the B2B ones).",
    )


class CreditRule(Rule):
    config_model = CreditConfig
    needs_masterdata = True

    def check(self, order: Order, ctx: OrderContext) -> Iterable[Finding]:
        account = ctx.account
        if account is None:
            yield self.finding(
                "ACCOUNT_UNKNOWN",
                "no customer account matches the buyer, partner or e-mail; credit not checked",
            )
            return
        left = account.remaining_credit
        if left is not None and ctx.value > left:
            yield self.finding(
                "CREDIT_EXCEEDED",
                f"order value {money(ctx.value)} is over the remaining credit {money(left)} of account {account.code} "
                f"(limit {money(account.credit_limit or left)}, open {money(account.open_balance)})",
                value=money(ctx.value),
                remaining=money(left),
            )

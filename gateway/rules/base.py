"""What a rule is: a configured check that turns one order into findings.

A finding says what a rule decided (accept, hold for a person, reject), with a stable reason
code (``PRICE_OFF_LIST``), a sentence a person understands, and the order line it concerns
(its line number as sent, else its 1-based position). The worst outcome over all findings
decides the order (:class:`Decision`).

A rule type is two classes: its configuration model (a subclass of :class:`RuleConfigBase`
whose ``type`` is a ``Literal`` of its name and whose ``CODES`` lists every reason code it
may give with its default outcome) and the rule (a subclass of :class:`Rule`, ``check``
yields findings). Operators may change the outcome of any code (``outcomes: {CODE: hold}``)
and limit a rule to some channels or partners.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.model import Channel, Order
from gateway.pickling import by_fields

if TYPE_CHECKING:
    from gateway.rules.context import OrderContext

__all__ = ["Decision", "Finding", "Outcome", "Rule", "RuleConfigBase", "StockNeed", "line_label"]


class Outcome(StrEnum):
    """What a rule decides; the worst of an order's findings decides the order."""

    ACCEPT = "accept"  # a note only: the order goes on
    HOLD = "hold"  # a person decides (`gateway approve` / `gateway reject`)
    REJECT = "reject"  # the order is quarantined and the partner told

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Outcome.ACCEPT: 0, Outcome.HOLD: 1, Outcome.REJECT: 2}


@by_fields
@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a rule found about an order (or one of its lines)."""

    rule: str  # the configured rule's name
    outcome: Outcome
    code: str  # stable reason code, e.g. PRICE_OFF_LIST
    message: str  # for a person
    line: str | None = (
        None  # the line's number as sent, else its 1-based position; None: the whole order
    )
    data: Mapping[str, str] = field(
        default_factory=dict
    )  # e.g. {"price": "12.50"}: the price we would charge

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "outcome": self.outcome.value,
            "code": self.code,
            "message": self.message,
            "line": self.line,
            "data": dict(self.data),
        }


@by_fields
@dataclass(frozen=True, slots=True)
class StockNeed:
    """Stock an accepted order must hold for one line (the stock rule says so; the decide step
    reserves it in the batch's transaction and the order's answer follows what it got)."""

    index: int  # 0-based position in order.lines
    line: str  # the line's label (see line_label)
    sku: str
    quantity: Decimal  # base units
    ordered: Decimal  # the line's quantity in its own unit (to answer in that unit)
    policy: str  # block | backorder | partial
    rest: str = "backorder"  # partial: what happens to what is not available (backorder | cancel)
    backorder_date: dt.date | None = None  # when short units are expected, when known
    weight_kg: Decimal | None = None  # per base unit (the catalogue's), for routing


@by_fields
@dataclass(frozen=True, slots=True)
class Decision:
    """The rules' verdict on one order."""

    outcome: Outcome
    findings: tuple[Finding, ...] = ()
    account: str | None = None  # the customer account the order was matched to
    fingerprint: str | None = None  # its content, to recognise it arriving again (rule duplicates)
    stock: tuple[StockNeed, ...] = ()  # what to reserve once accepted (the stock rule)

    @classmethod
    def of(
        cls,
        findings: Iterable[Finding],
        *,
        account: str | None = None,
        fingerprint: str | None = None,
        stock: Iterable[StockNeed] = (),
    ) -> Decision:
        found = tuple(findings)
        worst = max((f.outcome for f in found), key=lambda o: o.severity, default=Outcome.ACCEPT)
        return cls(worst, found, account, fingerprint, tuple(stock))

    @property
    def deciding(self) -> tuple[Finding, ...]:
        """The findings whose outcome is the decision's (the reasons a person is shown first)."""
        return tuple(f for f in self.findings if f.outcome is self.outcome)

    @property
    def reason(self) -> str | None:
        """The code of the first deciding finding; None for an order accepted without a word."""
        deciding = self.deciding
        return deciding[0].code if deciding and self.outcome is not Outcome.ACCEPT else None

    def summary(self) -> str:
        """Every deciding finding in one line, for the order's error column and its history."""
        return "; ".join(
            f"{f.code}{' line ' + f.line if f.line else ''}: {f.message}" for f in self.deciding
        )

    def codes(self) -> list[str]:
        return list(dict.fromkeys(f.code for f in self.findings))


def line_label(order: Order, index: int) -> str:
    """How findings name a line: its number as sent, else its 1-based position."""
    line = order.lines[index]
    return line.line_number or str(index + 1)


class RuleConfigBase(BaseModel):
    """What every rule's configuration has; each type adds its own keys."""

    model_config = ConfigDict(extra="forbid")

    CODES: ClassVar[Mapping[str, Outcome]] = {}  # reason code -> default outcome

    type: str = Field(
        description="Rule type (a built-in such as price, or one an installed package adds)."
    )
    name: str | None = Field(
        None, description="Name shown with the rule's findings (default: the type)."
    )
    channels: list[Channel] | None = Field(
        None, description="Run only for orders from these channels (default: all)."
    )
    partners: list[str] | None = Field(
        None, description="Run only for these partners' orders (default: all)."
    )
    outcomes: dict[str, Outcome] = Field(
        default_factory=dict,
        description="Outcome per reason code, overriding the rule's default (e.g. {PRICE_OFF_LIST: reject}).",
    )

    @model_validator(mode="after")
    def _known_codes(self) -> RuleConfigBase:
        unknown = sorted(set(self.outcomes) - set(self.codes()))
        if unknown:
            raise ValueError(
                f"outcomes: unknown reason code(s) {', '.join(unknown)}; this rule gives {', '.join(sorted(self.codes()))}"
            )
        return self

    def codes(self) -> Mapping[str, Outcome]:
        """The reason codes this configured rule may give (an expression rule names its own)."""
        return self.CODES

    @property
    def label(self) -> str:
        return self.name or self.type


class Rule:
    """A configured rule. Subclasses set ``config_model`` and implement :meth:`check`."""

    config_model: ClassVar[type[RuleConfigBase]] = RuleConfigBase
    needs_masterdata: ClassVar[bool] = False  # a configuration error when no master data is configured
    # What the rule reads of the order history (gateway.rules.context.OrderHistory): "counts"
    # (orders per account), "usual" (usual quantities), "seen" (content seen before). Only what
    # some configured rule reads is fetched.
    needs_history: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: RuleConfigBase):
        self.config = config

    def applies(self, order: Order) -> bool:
        c = self.config
        if c.channels is not None and order.channel not in c.channels:
            return False
        return c.partners is None or order.partner in c.partners

    def check(self, order: Order, ctx: OrderContext) -> Iterable[Finding]:
        raise NotImplementedError

    def finding(self, code: str, message: str, line: str | None = None, **data: Any) -> Finding:
        outcome = self.config.outcomes.get(code) or self.config.codes()[code]
        return Finding(
            self.config.label, outcome, code, message, line, {k: str(v) for k, v in data.items()}
        )


def money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")

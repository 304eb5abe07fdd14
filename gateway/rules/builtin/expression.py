"""expression: a custom condition in a restricted expression language (rule-engine, never eval).

``when`` is a rule-engine expression over the order; when it is true the rule gives ``code``
with ``outcome`` and ``message``. With ``per_line: true`` it is evaluated for each line, with
the line as ``line``. Symbols (checked when the configuration loads, like the syntax):

    po_number, channel, partner, currency, order_type, value (order value), line_count,
    customer_email, payment_status, ship_country, ship_region, ship_postal_code,
    bill_country, account (code or null), credit_remaining, order_count,
    lines (each: sku, quantity, unit_price, uom, description, buyer_part_number, gtin),
    line (with per_line), and every registered function (gateway.rules.functions).

Example: ``when: 'channel == "shopify" and value > 5000 and ship_country != "US"'``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import rule_engine
from pydantic import Field, ValidationInfo, field_validator

from gateway.model import Order, OrderLine
from gateway.rules.base import Finding, Outcome, Rule, RuleConfigBase
from gateway.rules.context import OrderContext
from gateway.rules.functions import functions

__all__ = ["ExpressionConfig", "ExpressionRule"]

_T = rule_engine.DataType
_LINE = _T.MAPPING(_T.STRING, _T.UNDEFINED)
_SYMBOLS: dict[str, Any] = {
    "po_number": _T.STRING,
    "channel": _T.STRING,
    "partner": _T.STRING,
    "currency": _T.STRING,
    "order_type": _T.STRING,
    "value": _T.FLOAT,
    "line_count": _T.FLOAT,
    "customer_email": _T.STRING,
    "payment_status": _T.STRING,
    "ship_country": _T.STRING,
    "ship_region": _T.STRING,
    "ship_postal_code": _T.STRING,
    "bill_country": _T.STRING,
    "account": _T.STRING,
    "credit_remaining": _T.FLOAT,
    "order_count": _T.FLOAT,
    "lines": _T.ARRAY(_LINE),
}


def _context(per_line: bool) -> rule_engine.Context:
    types = dict(_SYMBOLS)
    types.update({name: _T.FUNCTION(name) for name in functions()})
    if per_line:
        types["line"] = _LINE
    return rule_engine.Context(
        type_resolver=rule_engine.type_resolver_from_dict(types), resolver=_resolve, default_timezone="UTC"
    )


class ExpressionConfig(RuleConfigBase):
    type: Literal["expression"] = "expression"
    per_line: bool = Field(False, description="Evaluate for each line, with the line as `line`.")
    when: str = Field(description="rule-engine expression; true gives the finding.")
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{2,59}$", description="Stable reason code (upper case), e.g. EXPORT_CHECK.")
    message: str = Field(description="What a person is told.")
    outcome: Outcome = Field(Outcome.HOLD, description="accept (a note), hold or reject.")

    @field_validator("when")
    @classmethod
    def _compiles(cls, when: str, info: ValidationInfo) -> str:
        try:
            rule_engine.Rule(when, context=_context(bool(info.data.get("per_line"))))
        except rule_engine.errors.SymbolResolutionError as exc:
            raise ValueError(f"unknown name {exc.symbol_name!r} in {when!r} (see the expression rule's symbols in README)") from None
        except rule_engine.errors.EngineError as exc:
            raise ValueError(f"not a valid expression {when!r}: {exc.message}") from None
        return when

    def codes(self) -> Mapping[str, Outcome]:
        return {self.code: self.outcome}


def _line(ln: OrderLine) -> dict[str, Any]:
    return {
        "sku": ln.sku,
        "quantity": ln.quantity,
        "unit_price": ln.unit_price,
        "uom": ln.uom,
        "description": ln.description,
        "buyer_part_number": ln.buyer_part_number,
        "gtin": ln.gtin,
        "line_number": ln.line_number,
    }


@dataclass(frozen=True, slots=True)
class _Facts:
    """What an expression reads; each symbol is computed only when the expression asks for it."""

    order: Order
    ctx: OrderContext
    line: OrderLine | None = None


def _party(f: _Facts, role: str, attr: str) -> Any:
    party = getattr(f.order, role)
    return getattr(party, attr) if party is not None else None


def _count(f: _Facts) -> Decimal | None:
    count = f.ctx.order_count()
    return Decimal(count) if count is not None else None


_GETTERS: dict[str, Callable[[_Facts], Any]] = {
    "po_number": lambda f: f.order.po_number,
    "channel": lambda f: f.order.channel.value,
    "partner": lambda f: f.order.partner,
    "currency": lambda f: f.order.currency,
    "order_type": lambda f: f.order.order_type,
    "value": lambda f: f.ctx.value,
    "line_count": lambda f: Decimal(len(f.order.lines)),
    "customer_email": lambda f: f.order.customer_email,
    "payment_status": lambda f: f.order.payment.status if f.order.payment else None,
    "ship_country": lambda f: _party(f, "ship_to", "country"),
    "ship_region": lambda f: _party(f, "ship_to", "region"),
    "ship_postal_code": lambda f: _party(f, "ship_to", "postal_code"),
    "bill_country": lambda f: _party(f, "bill_to", "country"),
    "account": lambda f: f.ctx.account.code if f.ctx.account else None,
    "credit_remaining": lambda f: f.ctx.account.remaining_credit if f.ctx.account else None,
    "order_count": _count,
    "lines": lambda f: [_line(ln) for ln in f.order.lines],
}


def _resolve(facts: _Facts, name: str) -> Any:
    getter = _GETTERS.get(name)
    if getter is not None:
        return getter(facts)
    if name == "line" and facts.line is not None:
        return _line(facts.line)
    fn = functions().get(name)
    if fn is not None:
        return fn
    raise rule_engine.errors.SymbolResolutionError(name)


class ExpressionRule(Rule):
    config_model = ExpressionConfig
    needs_history = frozenset({"counts"})  # order_count

    def __init__(self, config: RuleConfigBase):
        super().__init__(config)
        assert isinstance(config, ExpressionConfig)
        self._rule = rule_engine.Rule(config.when, context=_context(config.per_line))

    def check(self, order: Order, ctx: OrderContext) -> Iterable[Finding]:
        cfg = self.config
        assert isinstance(cfg, ExpressionConfig)
        if not cfg.per_line:
            if self._rule.matches(_Facts(order, ctx)):
                yield self.finding(cfg.code, cfg.message)
            return
        for rl in ctx.lines:
            if self._rule.matches(_Facts(order, ctx, rl.line)):
                yield self.finding(cfg.code, f"line {rl.label}: {cfg.message}", rl.label)

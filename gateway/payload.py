"""Shaping what a connector sends: a JMESPath expression over the canonical order.

A payload file holds one JMESPath expression (comments with '#' allowed), for example

    {orderNumber: po_number, customer: buyer.code,
     items: lines[].{sku: sku, qty: quantity, price: unit_price}}

JMESPath is a restricted, side-effect-free language: a mapping cannot run code, read files
or reach the network. Expressions are compiled when the configuration is loaded, so a typo
stops start-up instead of an order. With no payload file the canonical order is sent as is.

A connector that comes after others (``after: [erp]``, see `gateway.store.outbox`) gets the
order with ``steps``: each earlier step's receipt reference, for example

    {orderNumber: po_number, erpOrder: steps.erp.reference}
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

__all__ = ["Payload", "PayloadError", "load_payload"]


class PayloadError(ValueError):
    pass


class Payload:
    def __init__(self, expression: ParsedResult | None, source: str = "<canonical>"):
        self._expression = expression
        self.source = source

    def render(self, order: dict[str, Any]) -> Any:
        if self._expression is None:
            return order
        return self._expression.search(order)


@lru_cache(maxsize=64)
def load_payload(path: Path | None) -> Payload:
    if path is None:
        return Payload(None)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PayloadError(f"cannot read payload mapping {path}: {exc.strerror}") from exc
    expr = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")).strip()
    if not expr:
        raise PayloadError(f"payload mapping {path} is empty")
    try:
        return Payload(jmespath.compile(expr), str(path))
    except JMESPathError as exc:
        raise PayloadError(f"payload mapping {path} is not valid JMESPath: {exc}") from exc

"""Basic order validation: what every order needs before it may reach an ERP.

Each problem has a stable rule name (`VALIDATION:<rule>`) and a sentence for a person.
The full rule engine (addresses, SKUs, stock, prices, holds) extends this list.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.model import Order, Purpose

__all__ = ["Problem", "validate"]


@dataclass(frozen=True, slots=True)
class Problem:
    rule: str
    message: str

    @property
    def reason(self) -> str:
        return f"VALIDATION:{self.rule}"


def validate(order: Order) -> list[Problem]:
    """Problems of a complete order. A cancellation needs no lines; a change document (only
    the lines that change) is checked here for what it says, and again once merged onto the
    order's current version (gateway.versions)."""
    problems: list[Problem] = []
    if not order.po_number or not order.po_number.strip():
        problems.append(Problem("po_number_missing", "the order has no PO number"))
    if not order.lines and order.purpose != Purpose.CANCEL and not order.lines_are_changes:
        problems.append(Problem("no_lines", f"PO {order.po_number} has no order lines"))
    seen: set[str] = set()
    for i, line in enumerate(order.lines, 1):
        label = f"line {line.line_number or i}"
        if order.lines_are_changes and line.change == "delete":
            continue  # a line being removed needs no quantity or item
        if line.quantity <= 0:
            problems.append(Problem("quantity_not_positive", f"{label}: quantity {line.quantity} must be greater than zero"))
        if line.unit_price is not None and line.unit_price < Decimal(0):
            problems.append(Problem("negative_price", f"{label}: unit price {line.unit_price} is negative"))
        if not (line.sku or line.buyer_part_number or line.gtin or line.description):
            problems.append(Problem("item_missing", f"{label}: no item number, GTIN or description says what is ordered"))
        if line.line_number:
            if line.line_number in seen:
                problems.append(Problem("duplicate_line_number", f"{label}: line number {line.line_number} appears twice"))
            seen.add(line.line_number)
    return problems

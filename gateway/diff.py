"""What changed between two versions of an order, in words a person reads in the history.

Header fields and parties are compared field by field; lines are matched by line number
(else by item), so "line 2: quantity 10 -> 12" rather than a wall of JSON.
"""

from __future__ import annotations

from typing import Any

__all__ = ["order_diff"]

# Compared on the header; source, notes and unmapped segments are not "changes" of the order.
_HEADER = (
    "purpose",
    "order_type",
    "order_date",
    "currency",
    "requested_delivery_date",
    "release_number",
    "contract_number",
    "customer_email",
    "customer_phone",
)
_PARTIES = ("buyer", "seller", "ship_to", "bill_to")
_LINE = ("quantity", "uom", "unit_price", "sku", "buyer_part_number", "gtin", "description")


def order_diff(old: dict[str, Any], new: dict[str, Any], *, limit: int = 40) -> list[str]:
    changes: list[str] = []
    for key in _HEADER:
        if old.get(key) != new.get(key):
            changes.append(f"{key}: {_show(old.get(key))} -> {_show(new.get(key))}")
    for role in _PARTIES:
        a, b = old.get(role) or {}, new.get(role) or {}
        for key in sorted(set(a) | set(b)):
            if key != "references" and a.get(key) != b.get(key):
                changes.append(f"{role}.{key}: {_show(a.get(key))} -> {_show(b.get(key))}")
    old_lines, new_lines = _by_key(old.get("lines") or []), _by_key(new.get("lines") or [])
    for key, line in new_lines.items():
        before = old_lines.get(key)
        if before is None:
            changes.append(f"line {key} added: {_line(line)}")
            continue
        for field in _LINE:
            if before.get(field) != line.get(field):
                changes.append(
                    f"line {key}: {field} {_show(before.get(field))} -> {_show(line.get(field))}"
                )
    for key, line in old_lines.items():
        if key not in new_lines:
            changes.append(f"line {key} removed: {_line(line)}")
    total_a = (old.get("totals") or {}).get("total")
    total_b = (new.get("totals") or {}).get("total")
    if total_a != total_b:
        changes.append(f"total: {_show(total_a)} -> {_show(total_b)}")
    if len(changes) > limit:
        changes = [*changes[:limit], f"... and {len(changes) - limit} more"]
    return changes


def _by_key(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i, line in enumerate(lines, 1):
        key = str(
            line.get("line_number") or line.get("sku") or line.get("buyer_part_number") or f"#{i}"
        )
        while key in out:
            key += "'"
        out[key] = line
    return out


def _line(line: dict[str, Any]) -> str:
    item = (
        line.get("sku")
        or line.get("buyer_part_number")
        or line.get("gtin")
        or line.get("description")
        or "?"
    )
    return f"{line.get('quantity')} {line.get('uom') or ''} {item}".replace("  ", " ")


def _show(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "(none)"
    return str(value)

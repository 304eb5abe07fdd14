"""A split order's parts: what one part of an order is, as a connector receives it.

The routing (gateway.routing) splits an order over warehouses when one cannot fill it; each
warehouse's share is a *part* (``route["parts"]``, numbered from 1). A connector that ships
(``per_part``, default for those whose `Capabilities.ships`) gets one delivery per part,
each linked to the original order by its id and ``part``; every other connector gets the
whole order once. This module is the one place that says what a part's delivery holds:

- ``lines``: the order's lines the part takes, matched by the line's label (its number as
  sent, else its 1-based position, as the rules name lines). A line spread over two
  warehouses is in both parts, each with its share of the quantity (in the line's own unit:
  ordered quantity x the part's base units / every part's base units of that line). Lines
  the route names nowhere (no stock needs, nothing reserved) ship with part 1.
- ``route``: the part's warehouse, carrier, service and weight (what a whole order's
  ``route`` holds, so a connector reads it the same way), with the part's number and count.
- ``part``: ``{"number": 2, "of": 3, "warehouse": "WEST"}``.

Part 0 is "the whole order": a row before parts existed, or an order not split.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["WHOLE", "describe", "label", "part_count", "part_key", "part_route", "restrict"]

WHOLE = 0  # the part number of a delivery of the whole order


def part_key(key: str, part: int) -> str:
    """The idempotency key of part `part` of a delivery whose whole-order key is `key`: each
    part its own (a retried part is recognised, two parts never collide), path- and
    header-safe (no "/": the file connector names files by it)."""
    return key if part == WHOLE else f"{key}-part-{part}"


def part_count(route: Mapping[str, Any] | None) -> int:
    """How many deliveries a per-part connector gets for an order with this route: the number
    of parts when the route split it, else 0 (the whole order, once)."""
    parts = route.get("parts") if isinstance(route, Mapping) else None
    return len(parts) if isinstance(parts, list) and len(parts) > 1 else 0


def part_route(route: Mapping[str, Any] | None, part: int) -> dict[str, Any] | None:
    """Part `part` of `route` (its warehouse, carrier, service, weight_kg and lines); None
    when the route has no such part."""
    parts = route.get("parts") if isinstance(route, Mapping) else None
    for p in parts if isinstance(parts, list) else []:
        if isinstance(p, Mapping) and p.get("part") == part:
            return dict(p)
    return None


def label(part: int, part_of: int, warehouse: str | None = None) -> str:
    """How people read a part: "part 2 of 3, warehouse WEST"; "" for the whole order."""
    if part == WHOLE:
        return ""
    text = f"part {part} of {part_of}"
    return f"{text}, warehouse {warehouse}" if warehouse else text


def describe(connector: str, part: int, part_of: int) -> str:
    """A delivery as the history names it: "shipstation" or "shipstation part 2 of 3"."""
    return f"{connector} {label(part, part_of)}" if part != WHOLE else connector


def restrict(order: Mapping[str, Any], route: Mapping[str, Any] | None, part: int, part_of: int) -> dict[str, Any]:
    """The canonical order `order` (JSON data) as part `part` of `part_of` of its `route`
    (see the module docstring). The whole order, with its route, for part 0. A part the
    route does not have keeps the order's lines that no part names (none, usually) and says
    so in ``part`` with no warehouse: a connector sees an empty part, never another's lines."""
    if part == WHOLE:
        return {**order, "route": dict(route)} if isinstance(route, Mapping) else dict(order)
    mine = part_route(route, part)
    shares = _shares(route)
    lines: list[dict[str, Any]] = []
    for i, line in enumerate(order.get("lines") or []):
        if not isinstance(line, Mapping):
            continue
        name = str(line.get("line_number") or i + 1)
        held = shares.get(name)
        if held is None:  # no part names it: it ships with the first
            if part == 1:
                lines.append(dict(line))
            continue
        here = held.get(part)
        if here is None:
            continue
        total = sum(held.values(), Decimal(0))
        lines.append(dict(line) if here == total else {**line, "quantity": _scaled(line.get("quantity"), here, total)})
    warehouse = mine.get("warehouse") if mine else None
    slim = {k: v for k, v in (mine or {}).items() if k not in ("part", "lines")}
    return {
        **order,
        "lines": lines,
        "route": {**slim, "part": part, "of": part_of, "lines": list((mine or {}).get("lines") or [])},
        "part": {"number": part, "of": part_of, "warehouse": warehouse},
    }


def _shares(route: Mapping[str, Any] | None) -> dict[str, dict[int, Decimal]]:
    """line label -> {part number: base units it takes}."""
    out: dict[str, dict[int, Decimal]] = {}
    parts = route.get("parts") if isinstance(route, Mapping) else None
    for p in parts if isinstance(parts, list) else []:
        if not isinstance(p, Mapping):
            continue
        for pl in p.get("lines") or []:
            if isinstance(pl, Mapping) and isinstance(p.get("part"), int):
                by_part = out.setdefault(str(pl.get("line")), {})
                by_part[p["part"]] = by_part.get(p["part"], Decimal(0)) + _decimal(pl.get("quantity"))
    return out


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def _scaled(quantity: Any, here: Decimal, total: Decimal) -> str:
    """The line's quantity (in its own unit) times the part's share of its base units."""
    if not total:
        return str(quantity)
    value = _decimal(quantity) * here / total
    return f"{value.normalize():f}"

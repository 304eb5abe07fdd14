"""Segment handlers of the line groups: LIN, PIA, IMD, PRI. See "What goes
where" in `gateway.mapping.edifact_orders`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.mapping.edifact_orders.segments import _comps, _join, _val

if TYPE_CHECKING:
    from gateway.mapping.edifact_orders.build import _Build

# -- lines


def _lin(b: _Build, seg: list[Any]) -> None:
    if b.area == "summary":
        b.keep(seg)
        return
    b.set_ctx(None)
    b.close_line()
    b.area = "line"
    b.lin_count += 1
    line: dict[str, Any] = {"line_number": _val(seg, 1)}
    b.lp = f"lines[{len(b.lines)}]"
    b.line_k, b.qty_kind, b.qty_seg, b.price_kind = b.k, None, None, None
    b.line = line
    b.lines.append(line)
    if b.tr is not None and line["line_number"] is not None:
        b.trace(f"{b.lp}.line_number", "LIN", "1082")
    if _item_id(b, line, b.components(seg, 3), "LIN", "C212 7140"):
        b.keep_rest(seg)
    else:
        b.keep(seg)


def _item_id(b: _Build, line: dict[str, Any], c212: list[str], label: str, element: str) -> bool:
    """Record an item number (C212 7140 with its type 7143); False if one has no type."""
    value = c212[0].strip() if c212 else ""
    qualifier = c212[1].strip() if len(c212) > 1 else ""
    if not value or not qualifier:
        return not value
    ids = line.setdefault("item_ids", [])
    if b.tr is not None:
        b.trace(f"{b.lp}.item_ids[{len(ids)}]", label, element)
    ids.append({"qualifier": qualifier, "value": value})
    field = b.t.product_ids.get(qualifier)
    if field is not None and field not in line:
        line[field] = value
        if b.tr is not None:
            b.trace(f"{b.lp}.{field}", label, element)
    return True


def _pia(b: _Build, seg: list[Any]) -> None:
    line = b.line
    if line is None:
        b.keep(seg)
        return
    complete = True
    for i in range(2, min(len(seg), 7)):
        complete = _item_id(b, line, _comps(seg, i), "PIA", "C212 7140") and complete
    if complete:
        b.keep_rest(seg)
    else:
        b.keep(seg)  # an item number without its type


def _imd(b: _Build, seg: list[Any]) -> None:
    if b.line is None or b.ctx == "X":
        b.keep(seg)
        return
    c273 = b.components(seg, 3)
    text = _join(c273[3:5])
    if text is None:
        b.keep(seg)  # a coded description only
        return
    b.description.append(text)
    if b.tr is not None:
        b.description_src.append(b.src("IMD", "C273 7008"))
    if c273 and c273[0].strip():
        b.keep(seg)  # the code (7009) too
    else:
        b.keep_rest(seg)


def _pri(b: _Build, seg: list[Any]) -> None:
    line = b.line
    if line is None:
        b.keep(seg)
        return
    b.set_ctx("PRI")
    comps = b.components(seg, 1)
    qualifier = comps[0].strip() if comps else ""
    raw = comps[1].strip() if len(comps) > 1 else ""
    if not qualifier or not raw:
        b.keep(seg)
        return
    price = b.dec(raw, seg, "C509 5118")
    assert price is not None
    kind = comps[2].strip() if len(comps) > 2 else ""
    basis = " ".join(c.strip() for c in comps[4:6] if c.strip())
    taken = b.price_kind
    if (qualifier == "AAA" and taken != "AAA") or (qualifier == "AAB" and taken is None):
        if taken is not None:  # a gross price came first: it moves to prices
            line.setdefault("prices", []).append(
                {"qualifier": taken, "value": format(line["unit_price"], "f")}
            )
        line["unit_price"] = price
        b.price_kind = qualifier
        line["price_basis"] = basis or kind or None
        if b.tr is not None:
            b.trace(f"{b.lp}.unit_price", "PRI", "C509 5118")
            if basis or kind:
                b.trace(f"{b.lp}.price_basis", "PRI", "C509 5284:6411" if basis else "C509 5375")
        if basis and kind:
            b.keep(seg)
        else:
            b.keep_rest(seg)
        return
    prices = line.setdefault("prices", [])
    if b.tr is not None:
        b.trace(f"{b.lp}.prices[{len(prices)}]", "PRI", "C509 5118")
    prices.append(
        {"qualifier": qualifier, "value": format(price, "f"), "description": basis or kind or None}
    )
    b.keep_rest(seg)

"""Segment handlers of the groups that header and lines share, and of the summary: TAX, CUX,
PAT, TDT, TOD, LOC, QTY, ALC, PCD, MOA, RTE, UNS, CNT. See "What goes where" in `gateway.mapping.edifact_orders`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.mapping.edifact_orders.segments import _COVER, _join, _uncovered, _val

if TYPE_CHECKING:
    from gateway.mapping.edifact_orders.build import _Build

# -- header groups


def _tax(b: _Build, seg: list[Any]) -> None:
    if b.ctx == "X" or b.ctx == "ALC":  # a TAX inside an allowance group: kept as sent
        b.keep(seg)
        return
    rate = b.components(seg, 5)
    tax: dict[str, Any] = {
        "type": _val(seg, 2, 0),
        "jurisdiction": _val(seg, 3, 0),
        "percent": b.dec(rate[3].strip() or None, seg, "C243 5278") if len(rate) > 3 else None,
    }
    if b.line is not None:
        target, prefix = b.line.setdefault("taxes", []), f"{b.lp}.taxes"
    else:
        target, prefix = b.taxes, "taxes"
    path = f"{prefix}[{len(target)}]"
    target.append(tax)
    b.set_ctx("TAX", tax, path)
    if b.tr is not None:
        b.trace_fields(
            path,
            tax,
            "TAX",
            {"type": "C241 5153", "jurisdiction": "C533 5289", "percent": "C243 5278"},
        )
    b.keep_rest(seg)


def _cux(b: _Build, seg: list[Any]) -> None:
    pairs = [b.components(seg, i) for i in (1, 2)]
    chosen = next((c for c in pairs if c and c[0].strip() == "2" and len(c) > 1), None)
    if chosen is None:
        chosen = next((c for c in pairs if len(c) > 1 and c[1].strip()), None)
    currency = chosen[1].strip() if chosen is not None else None
    current = b.order.get("currency")
    if b.line is None or b.ctx != "PRI":
        b.set_ctx("CUX")  # its PCD/DTM belong to it (in a PRI group, to the price)
    if currency and current is None:
        b.order["currency"] = currency
        if b.tr is not None:
            b.trace("currency", "CUX", "C504 6345")
        if _val(seg, 2, 1) or _val(seg, 3) or _val(seg, 4):
            b.keep(seg)  # a second currency or an exchange rate: kept as sent
        else:
            b.keep_rest(seg)
    elif currency is None or currency != current or _val(seg, 2, 1):
        b.keep(seg)


def _pat(b: _Build, seg: list[Any]) -> None:
    if b.line is not None or b.ctx == "X":
        b.set_ctx("X")  # line-level terms: the group is kept as sent
        b.keep(seg)
        return
    kind = _val(seg, 1)
    terms_text = b.components(seg, 2)
    timing = b.components(seg, 3)
    terms: dict[str, Any] = {
        "type_code": kind,
        "description": _join(terms_text[3:5]),
        "basis_date_code": (timing[0].strip() or None) if timing else None,
    }
    period = timing[2].strip() if len(timing) > 2 else ""
    count = timing[3].strip() if len(timing) > 3 else ""
    uncovered = (
        bool(terms_text and terms_text[0].strip())
        or (len(timing) > 1 and timing[1].strip() not in ("", "1", "3"))
        or any(seg[4:])
    )
    if count:
        if period == "D":
            field = "discount_days" if kind == "22" else "net_days"
            terms[field] = b.int_(count, seg, "C112 2152")
        else:
            uncovered = True  # months or weeks: kept as sent
    path = f"payment_terms[{len(b.terms)}]"
    b.terms.append(terms)
    b.set_ctx("PAT", terms, path)
    if b.tr is not None:
        b.trace_fields(
            path,
            terms,
            "PAT",
            {
                "type_code": "4279",
                "description": "C110 4276",
                "basis_date_code": "C112 2475",
                "net_days": "C112 2152",
                "discount_days": "C112 2152",
            },
        )
    if uncovered:
        b.keep(seg)


def _tdt(b: _Build, seg: list[Any]) -> None:
    if b.line is not None or b.area != "header":
        b.set_ctx("X")
        b.keep(seg)
        return
    values = {
        "routing_sequence": _val(seg, 1),
        "transport_method": _val(seg, 3, 0),
        "carrier_code": _val(seg, 5, 0),
        "carrier_qualifier": _val(seg, 5, 2),
        "routing": _val(seg, 5, 3),
    }
    b.set_ctx("TDT")
    ship = b.shipping
    if any(k in ship for k in values):
        b.keep(seg)  # a second transport stage: kept whole
        return
    for k, v in values.items():
        if v is not None:
            ship[k] = v
    if b.tr is not None:
        b.trace_fields(
            "shipping",
            ship,
            "TDT",
            {
                "routing_sequence": "8051",
                "transport_method": "C220 8067",
                "carrier_code": "C040 3127",
                "carrier_qualifier": "C040 3055",
                "routing": "C040 3128",
            },
        )
    b.keep_rest(seg)


def _tod(b: _Build, seg: list[Any]) -> None:
    ship = b.shipping
    if b.line is not None or b.area != "header" or "incoterms" in ship:
        b.set_ctx("X")
        b.keep(seg)
        return
    terms = b.components(seg, 3)
    values = {
        "fob_payment_method": _val(seg, 2),
        "incoterms": (terms[0].strip() or None) if terms else None,
    }
    for k, v in values.items():
        if v is not None:
            ship[k] = v
    text = _join(terms[3:5])
    if text:
        ship.setdefault("instructions", []).append(text)
    b.set_ctx("TOD")
    if b.tr is not None:
        b.trace_fields(
            "shipping", ship, "TOD", {"fob_payment_method": "4215", "incoterms": "C100 4053"}
        )
        if text:
            b.trace(f"shipping.instructions[{len(ship['instructions']) - 1}]", "TOD", "C100 4052")
    b.keep_rest(seg)


def _loc(b: _Build, seg: list[Any]) -> None:
    ctx = b.ctx
    if ctx == "TOD":
        place = _val(seg, 2, 0) or _val(seg, 2, 3)
        if place and "incoterms_location" not in b.shipping:
            b.shipping["incoterms_location"] = place
            if b.tr is not None:
                b.trace("shipping.incoterms_location", "LOC", "C517 3225")
            b.keep_rest(seg)
        else:
            b.keep(seg)
        return
    if b.line is None or (ctx is not None and ctx not in ("LOC", "RFF", "PRI")):
        b.keep(seg)  # a place inside a party, tax, transport or other group
        return
    b.set_ctx("LOC")
    b.pending_loc = (seg, b.k)


def _qty(b: _Build, seg: list[Any]) -> None:
    line = b.line
    ctx = b.ctx
    if line is None:
        b.keep(seg)
        return
    comps = b.components(seg, 1)
    qualifier = comps[0].strip() if comps else ""
    value = comps[1].strip() if len(comps) > 1 else ""
    unit = (comps[2].strip() or None) if len(comps) > 2 else None
    if ctx == "LOC":
        pending = b.pending_loc
        if pending is None:
            b.keep(seg)
            return
        loc, k = pending
        b.pending_loc = None
        quantity = b.dec(value or None, seg, "C186 6060")
        location = _val(loc, 2, 0) or _val(loc, 2, 3)
        if quantity is None or location is None:
            here, b.k = b.k, k
            b.keep(loc)
            b.k = here
            b.keep(seg)
            return
        dests = line.setdefault("destinations", [])
        dest = {"location": location, "location_qualifier": _val(loc, 2, 2), "quantity": quantity}
        if b.tr is not None:
            path = f"{b.lp}.destinations[{len(dests)}]"
            b.trace(f"{path}.quantity", "QTY", "C186 6060")
            here, b.k = b.k, k
            b.trace(f"{path}.location", "LOC", "C517 3225")
            b.trace(f"{path}.location_qualifier", "LOC", "C517 3055")
            b.k = here
        dests.append(dest)
        if _uncovered(loc, _COVER["LOC"]):
            here, b.k = b.k, k
            b.keep(loc)
            b.k = here
        if unit is not None and unit != line.get("uom"):
            b.keep(seg)  # a unit other than the line's
        return
    if ctx == "ALC" and b.obj is not None:
        if "quantity" in b.obj or not value:
            b.keep(seg)
            return
        b.obj["quantity"] = b.dec(value, seg, "C186 6060")
        if b.tr is not None:
            b.trace(f"{b.op}.quantity", "QTY", "C186 6060")
        b.keep_rest(seg)
        return
    if ctx == "X" or qualifier not in ("21", "1"):
        b.keep(seg)
        return
    taken = b.qty_kind
    quantity = b.dec(value or None, seg, "C186 6060")
    if quantity is None or taken == "21" or (taken == "1" and qualifier == "1"):
        b.keep(seg)  # QTY+21 wins over QTY+1, and the first of each kind
        return
    if b.qty_seg is not None:  # a QTY+1 came first: kept as sent
        first, k = b.qty_seg
        here, b.k = b.k, k
        b.keep(first)
        b.k = here
    line["quantity"] = quantity
    line["uom"] = unit
    b.qty_kind, b.qty_seg = qualifier, (seg, b.k)
    if b.tr is not None:
        b.trace(f"{b.lp}.quantity", "QTY", "C186 6060")
        if unit is not None:
            b.trace(f"{b.lp}.uom", "QTY", "C186 6411")
    b.keep_rest(seg)


def _alc(b: _Build, seg: list[Any]) -> None:
    if b.ctx == "X":
        b.keep(seg)
        return
    indicator = _val(seg, 1) or ""
    special = b.components(seg, 5)
    code = (special[0].strip() or None) if special else None
    own = _val(seg, 2, 1)
    item: dict[str, Any] = {
        "indicator": b.t.allowance_charge.get(indicator, indicator or "unknown"),
        "code": code or own,
        "handling": _val(seg, 3),
        "description": _join(special[3:5]),
    }
    if b.line is not None:
        target, prefix = b.line.setdefault("allowances_charges", []), f"{b.lp}.allowances_charges"
    else:
        target, prefix = b.allowances, "allowances_charges"
    path = f"{prefix}[{len(target)}]"
    target.append(item)
    b.set_ctx("ALC", item, path)
    if b.tr is not None:
        b.trace_fields(
            path,
            item,
            "ALC",
            {
                "indicator": "5463",
                "code": "C214 7161" if code else "C552 5189",
                "handling": "4471",
                "description": "C214 7160",
            },
        )
    if code and own and own != code:
        b.keep(seg)
    else:
        b.keep_rest(seg)


def _pcd(b: _Build, seg: list[Any]) -> None:
    obj = b.obj
    qualifier = _val(seg, 1, 0)
    if b.ctx == "ALC" and obj is not None and "percent" not in obj:
        field = "percent"
    elif b.ctx == "PAT" and obj is not None and qualifier == "12" and "discount_percent" not in obj:
        field = "discount_percent"
    else:
        b.keep(seg)
        return
    obj[field] = b.dec(_val(seg, 1, 1), seg, "C501 5482")
    if b.tr is not None:
        b.trace(f"{b.op}.{field}", "PCD", "C501 5482")
    b.keep_rest(seg)


def _moa(b: _Build, seg: list[Any]) -> None:
    comps = b.components(seg, 1)
    qualifier = comps[0].strip() if comps else ""
    raw = comps[1].strip() if len(comps) > 1 else ""
    ctx, obj = b.ctx, b.obj
    if ctx in ("TAX", "ALC") and obj is not None:
        if "amount" in obj or not raw:
            b.keep(seg)
            return
        obj["amount"] = b.dec(raw, seg, "C516 5004")
        if b.tr is not None:
            b.trace(f"{b.op}.amount", "MOA", "C516 5004")
        b.keep_rest(seg)
        return
    if ctx == "PAT" and obj is not None:
        if qualifier != "52" or "discount_amount" in obj or not raw:
            b.keep(seg)
            return
        obj["discount_amount"] = b.dec(raw, seg, "C516 5004")
        if b.tr is not None:
            b.trace(f"{b.op}.discount_amount", "MOA", "C516 5004")
        b.keep_rest(seg)
        return
    if ctx is not None or b.line is not None or not qualifier or not raw:
        b.keep(seg)  # a line amount or an amount of a group that is not mapped
        return
    amount = b.dec(raw, seg, "C516 5004")
    field = b.t.amount_roles.get(qualifier)
    if field is not None and field not in b.totals:
        b.totals[field] = amount
        if b.tr is not None:
            b.trace(f"totals.{field}", "MOA", "C516 5004")
    else:
        if b.tr is not None:
            b.trace(f"totals.amounts[{len(b.amounts)}]", "MOA", "C516 5004")
        b.amounts.append({"qualifier": qualifier, "value": format(amount, "f")})
    b.keep_rest(seg)


def _rte(b: _Build, seg: list[Any]) -> None:
    obj = b.obj
    if b.ctx != "ALC" or obj is None or "rate" in obj:
        b.keep(seg)
        return
    obj["rate"] = b.dec(_val(seg, 1, 1), seg, "C128 5420")
    if b.tr is not None:
        b.trace(f"{b.op}.rate", "RTE", "C128 5420")
    b.keep_rest(seg)


def _uns(b: _Build, seg: list[Any]) -> None:
    if _val(seg, 1) == "S":
        b.set_ctx(None)
        b.close_line()
        b.area = "summary"
    b.keep_rest(seg)


def _cnt(b: _Build, seg: list[Any]) -> None:
    qualifier = _val(seg, 1, 0)
    value = _val(seg, 1, 1)
    if qualifier == "2" and "line_count" not in b.totals:
        b.totals["line_count"] = b.int_(value, seg, "C270 6066")
        b.cnt_at = (seg, b.k)
        field = "line_count"
    elif qualifier == "1" and "quantity_total" not in b.totals:
        b.totals["quantity_total"] = b.dec(value, seg, "C270 6066")
        field = "quantity_total"
    else:
        b.keep(seg)
        return
    if b.tr is not None:
        b.trace(f"totals.{field}", "CNT", "C270 6066")
    b.keep_rest(seg)

"""Segment handlers of the 850's header and of what header and lines share: BEG, CUR, REF
and N9 (with MSG/NTE notes), DTM, PER, ITD, TD5/TD1/TD3/TD4, FOB, SAC, TXI, AMT, PID. Each
is f(build, segment). See "What goes where" in `gateway.mapping.x12_850`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.mapping.x12_850.segments import (
    _AMT_TRACE,
    _BEG_TRACE,
    _DTM_TRACE,
    _ITD_TRACE,
    _REF_TRACE,
    _SAC_TRACE,
    _TD5_TRACE,
    _TXI_TRACE,
    _element,
    _line_path,
    _text,
    _trace_fields,
    _val,
)
from gateway.model import Purpose

if TYPE_CHECKING:
    from gateway.mapping.x12_850.build import _Build

# ------------------------------------------------------------------------------------------
# Segment handlers: f(build, segment), looked up in _PARTY inside an N1 loop, else in
# _HEADER_AREA or _LINE_AREA (_COMMON plus what only that area has). A segment with no
# handler goes to Order.unmapped.


def _beg(b: _Build, seg: list[Any]) -> None:
    if b.saw_beg:
        b.keep(seg)
        return
    b.saw_beg = True
    o = b.order
    code = _val(seg, 1)
    purpose = b.t.purpose.get(code or "")
    if purpose is None:
        purpose = Purpose.OTHER if code else Purpose.ORIGINAL
        if code:
            b.extensions["purpose_code"] = code
    o["purpose"] = purpose
    o["order_type"] = _val(seg, 2)
    o["po_number"] = _val(seg, 3)
    o["release_number"] = _val(seg, 4)
    o["order_date"] = b.date(seg, 5)
    o["contract_number"] = _val(seg, 6)
    tr = b.prov
    if tr is not None:
        p = b.pos()
        tr["purpose"] = "BEG01" + p  # an empty BEG01 is an original
        if "purpose_code" in b.extensions:
            tr["extensions.purpose_code"] = "BEG01" + p
        for name, element in _BEG_TRACE.items():
            if o[name] is not None:
                tr[name] = element + p


def _cur(b: _Build, seg: list[Any]) -> None:
    currency = _val(seg, 2)
    current = b.order.get("currency")
    if currency is not None and current is None:
        b.order["currency"] = currency
        if b.prov is not None:
            b.prov["currency"] = "CUR02" + b.pos()
    elif currency is None or currency != current:
        b.keep(seg)  # no currency, or a second, different one


def _reference(b: _Build, seg: list[Any]) -> dict[str, Any] | None:
    qualifier = _val(seg, 1)
    if qualifier is None:
        b.keep(seg)
        return None
    return {
        "qualifier": qualifier,
        "value": _val(seg, 2),
        "description": _val(seg, 3),
        "role": b.t.reference_roles.get(qualifier),
    }


def _trace_reference(b: _Build, path: str, seg: list[Any], ref: Mapping[str, Any]) -> None:
    _trace_fields(b, path, ref, _REF_TRACE[seg[0]])  # REF or N9


def _ref(b: _Build, seg: list[Any]) -> None:
    ref = _reference(b, seg)
    if ref is not None:
        target = b.line.setdefault("references", []) if b.line is not None else b.references
        if b.prov is not None:
            where = f"{_line_path(b)}.references" if b.line is not None else "references"
            _trace_reference(b, f"{where}[{len(target)}]", seg, ref)
        target.append(ref)


def _n9(b: _Build, seg: list[Any]) -> None:
    _ref(b, seg)
    b.n9_notes = b.line.setdefault("notes", []) if b.line is not None else b.notes


def _note(b: _Build, seg: list[Any], target: list[str] | None = None) -> None:
    text = _val(seg, 1 if seg[0] == "MSG" else 2)
    if text is None:
        b.keep(seg)
        return
    if target is None:
        target = b.line.setdefault("notes", []) if b.line is not None else b.notes
    if b.prov is not None:
        # An N9 loop's notes are the order's or, inside a PO1 loop, that line's.
        where = "notes" if target is b.notes else f"{_line_path(b)}.notes"
        element = "MSG01" if seg[0] == "MSG" else "NTE02"
        b.prov[f"{where}[{len(target)}]"] = element + b.pos()
    target.append(text)


def _dated(b: _Build, seg: list[Any]) -> dict[str, Any]:
    qualifier = _val(seg, 1)
    value = _val(seg, 2)
    fmt = _val(seg, 5)
    if value is None and fmt in ("D8", "RD8", "D6"):
        # DTM05/06: a date or range given as a period; a range counts from its start.
        period = _val(seg, 6)
        value = period.split("-")[0] if period else None
        return {
            "role": b.t.date_roles.get(qualifier or "", qualifier or "unknown"),
            "qualifier": qualifier,
            "date": b.date(seg, 6, value),
            "time": _val(seg, 3),
        }
    return {
        "role": b.t.date_roles.get(qualifier or "", qualifier or "unknown"),
        "qualifier": qualifier,
        "date": b.date(seg, 2),
        "time": _val(seg, 3),
    }


def _dtm(b: _Build, seg: list[Any]) -> None:
    event = _dated(b, seg)
    if b.line is not None:
        dates = b.line.setdefault("dates", [])
        if b.prov is not None:
            _trace_dtm(b, seg, f"{_line_path(b)}.dates[{len(dates)}]", event, None)
        dates.append(event)
        return
    b.dates.append(event)
    role, date = event["role"], event["date"]
    field = None  # the order field this DTM sets too
    if role == "requested_delivery" and date and "requested_delivery_date" not in b.order:
        field = "requested_delivery_date"
        b.order[field] = date
    elif role == "order_date" and date and not b.order.get("order_date"):
        field = "order_date"
        b.order[field] = date
    if b.prov is not None:
        _trace_dtm(b, seg, f"dates[{len(b.dates) - 1}]", event, field)


def _trace_dtm(
    b: _Build, seg: list[Any], path: str, event: Mapping[str, Any], field: str | None
) -> None:
    # As _dated reads it: DTM02, else the period in DTM06 (DTM05 D8, RD8 or D6).
    period = _val(seg, 2) is None and _val(seg, 5) in ("D8", "RD8", "D6")
    date = "DTM06" if period else "DTM02"
    p = b.pos()
    _trace_fields(b, path, event, _DTM_TRACE[date], p)
    if field is not None:
        assert b.prov is not None
        b.prov[field] = date + p


def _contact(b: _Build, seg: list[Any]) -> dict[str, Any]:
    contact: dict[str, Any] = {"name": _val(seg, 2)}
    qualifiers = b.t.contact_qualifiers
    for q in (3, 5, 7):
        field = qualifiers.get(_val(seg, q) or "")
        if field is not None and contact.get(field) is None:
            contact[field] = _val(seg, q + 1)
    return contact


def _trace_contact(b: _Build, path: str, seg: list[Any], p: str) -> None:
    """Trace the contact `_contact` makes of a PER: each field from the first pair that
    gives it a value."""
    tr = b.prov
    assert tr is not None
    if _val(seg, 2) is not None:
        tr[f"{path}.name"] = "PER02" + p
    qualifiers = b.t.contact_qualifiers
    for q in (3, 5, 7):
        field = qualifiers.get(_val(seg, q) or "")
        if field is not None and _val(seg, q + 1) is not None:
            tr.setdefault(f"{path}.{field}", _element("PER", q + 1) + p)


def _per(b: _Build, seg: list[Any]) -> None:
    if b.line is not None:
        b.keep(seg)
    else:
        b.header_contacts.append((_contact(b, seg), seg, b.k))  # traced in finish()


def _itd(b: _Build, seg: list[Any]) -> None:
    terms = {
        "type_code": _val(seg, 1),
        "basis_date_code": _val(seg, 2),
        "discount_percent": b.dec(seg, 3),
        "discount_due_date": b.date(seg, 4),
        "discount_days": b.int_(seg, 5),
        "net_due_date": b.date(seg, 6),
        "net_days": b.int_(seg, 7),
        "discount_amount": b.dec(seg, 8, implied=2),
        "description": _val(seg, 12),
    }
    if b.prov is not None:
        _trace_fields(b, f"payment_terms[{len(b.terms)}]", terms, _ITD_TRACE)
    b.terms.append(terms)


def _td5(b: _Build, seg: list[Any]) -> None:
    values = {
        "routing_sequence": _val(seg, 1),
        "carrier_qualifier": _val(seg, 2),
        "carrier_code": _val(seg, 3),
        "transport_method": _val(seg, 4),
        "routing": _val(seg, 5),
        "service_level": _val(seg, 12),
    }
    ship = b.shipping
    if any(v is not None and ship.get(k, v) != v for k, v in values.items()):
        b.keep_shipping(seg)  # a second, different routing: keep it whole
        return
    for k, v in values.items():
        if v is not None:
            ship[k] = v
    # status, location, transit time: kept verbatim
    rest = any(_val(seg, i) for i in (6, 7, 8, 9, 10, 11, 13, 14, 15))
    if b.prov is not None:
        _trace_fields(b, "shipping", values, _TD5_TRACE)
        if rest:
            b.prov[f"extensions.x12_shipping[{len(b.shipping_raw)}]"] = "TD5" + b.pos()
    if rest:
        b.shipping_raw.append(_text(seg))


def _td_other(b: _Build, seg: list[Any]) -> None:
    tr = b.prov
    if tr is not None:
        p = b.pos()
        tr[f"extensions.x12_shipping[{len(b.shipping_raw)}]"] = seg[0] + p
        if seg[0] == "TD4" and _val(seg, 4):
            tr[f"shipping.instructions[{len(b.shipping.get('instructions', ()))}]"] = "TD404" + p
    b.shipping_raw.append(_text(seg))
    if seg[0] == "TD4":
        text = _val(seg, 4)
        if text:
            b.shipping.setdefault("instructions", []).append(text)


def _fob(b: _Build, seg: list[Any]) -> None:
    ship = b.shipping
    if "fob_payment_method" in ship or "incoterms" in ship:
        b.keep_shipping(seg)
        return
    for key, i in (("fob_payment_method", 1), ("fob_location_qualifier", 2), ("fob_location", 3)):
        v = _val(seg, i)
        if v is not None:
            ship[key] = v
    terms = _val(seg, 5)
    # FOB04 01 = Incoterms; many senders leave FOB04 empty and still send an Incoterm.
    incoterms = terms is not None and _val(seg, 4) in ("01", None)
    if b.prov is not None:
        _trace_fob(b, seg, incoterms)
    if terms is not None:
        if incoterms:
            ship["incoterms"] = terms
            place = _val(seg, 7)
            if place is not None:
                ship["incoterms_location"] = place
        else:
            b.shipping_raw.append(_text(seg))  # other transportation terms: kept verbatim


def _trace_fob(b: _Build, seg: list[Any], incoterms: bool) -> None:
    """Trace what `_fob` is about to set (an FOB that is not kept whole)."""
    tr = b.prov
    assert tr is not None
    p = b.pos()
    elements = {"fob_payment_method": 1, "fob_location_qualifier": 2, "fob_location": 3}
    if incoterms:
        elements |= {"incoterms": 5, "incoterms_location": 7}
    elif _val(seg, 5) is not None:
        tr[f"extensions.x12_shipping[{len(b.shipping_raw)}]"] = "FOB" + p
    for key, i in elements.items():
        if _val(seg, i) is not None:
            tr[f"shipping.{key}"] = _element("FOB", i) + p


def _sac(b: _Build, seg: list[Any]) -> None:
    indicator = _val(seg, 1) or ""
    item = {
        "indicator": b.t.allowance_charge.get(indicator, indicator or "unknown"),
        "code": _val(seg, 2),
        "amount": b.dec(seg, 5, implied=2),
        "percent": b.dec(seg, 7),
        "rate": b.dec(seg, 8),
        "quantity": b.dec(seg, 10),
        "handling": _val(seg, 12),
        "description": _val(seg, 15),
    }
    target = b.line.setdefault("allowances_charges", []) if b.line is not None else b.allowances
    if b.prov is not None:
        where = "allowances_charges" if b.line is None else f"{_line_path(b)}.allowances_charges"
        _trace_fields(b, f"{where}[{len(target)}]", item, _SAC_TRACE)
    target.append(item)


def _txi(b: _Build, seg: list[Any]) -> None:
    tax = {
        "type": _val(seg, 1),
        "amount": b.dec(seg, 2),
        "percent": b.dec(seg, 3),
        "jurisdiction": _val(seg, 5),
    }
    target = b.line.setdefault("taxes", []) if b.line is not None else b.taxes
    if b.prov is not None:
        where = "taxes" if b.line is None else f"{_line_path(b)}.taxes"
        _trace_fields(b, f"{where}[{len(target)}]", tax, _TXI_TRACE)
    target.append(tax)


def _amt(b: _Build, seg: list[Any]) -> None:
    if b.line is not None:
        b.keep(seg)
        return
    qualifier = _val(seg, 1)
    amount = b.dec(seg, 2)
    field = b.t.amount_roles.get(qualifier or "")
    if field is not None and field not in b.totals:
        b.totals[field] = amount
        if b.prov is not None and amount is not None:
            b.prov[f"totals.{field}"] = "AMT02" + b.pos()
    elif qualifier is not None:
        item = {"qualifier": qualifier, "value": _val(seg, 2), "description": _val(seg, 3)}
        if b.prov is not None:
            _trace_fields(b, f"totals.amounts[{len(b.amounts)}]", item, _AMT_TRACE)
        b.amounts.append(item)
    else:
        b.keep(seg)


def _pid(b: _Build, seg: list[Any]) -> None:
    kind, text = _val(seg, 1), _val(seg, 5)
    line = b.line
    if line is None:
        if text and kind in ("F", "X"):
            if b.prov is not None:
                b.prov[f"notes[{len(b.notes)}]"] = "PID05" + b.pos()
            b.notes.append(text)
        else:
            b.keep(seg)
        return
    if b.prov is not None:
        _trace_pid(b, seg, kind, text, line)
    if kind == "S" or (kind == "X" and _val(seg, 4)):
        line.setdefault("notes", []).append(_text(seg))  # a coded description: kept as sent
    if text and kind in ("F", "X"):
        b.description.append(text)
    elif kind not in ("S", "X"):
        b.unmapped.append(_text(seg))  # traced by _trace_pid


def _trace_pid(
    b: _Build, seg: list[Any], kind: str | None, text: str | None, line: Mapping[str, Any]
) -> None:
    """Trace what `_pid` is about to do with a PID inside a PO1 loop."""
    tr = b.prov
    assert tr is not None
    p, lp = b.pos(), _line_path(b)
    if kind == "S" or (kind == "X" and _val(seg, 4)):
        tr[f"{lp}.notes[{len(line.get('notes', ()))}]"] = "PID" + p
    if text and kind in ("F", "X"):
        path, src = f"{lp}.description", "PID05" + p
        # Several PIDs make one description (see _close_line): their sources joined.
        tr[path] = f"{tr[path]}; {src}" if b.description and path in tr else src
    elif kind not in ("S", "X"):
        tr[f"unmapped[{len(b.unmapped)}]"] = "PID" + p

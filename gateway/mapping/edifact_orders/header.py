"""Segment handlers of the ORDERS header: BGM, DTM, RFF, FTX. Each is f(build, segment)
and decides by the area (header, line, summary) and the segment group it is in
(build.ctx). See "What goes where" in `gateway.mapping.edifact_orders`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.errors import MappingError
from gateway.mapping.edifact_orders.segments import _BY_LENGTH, _RANGE_FORMATS, _join, _val
from gateway.model import Purpose

if TYPE_CHECKING:
    from gateway.mapping.edifact_orders.build import _Build

# ------------------------------------------------------------------------------------------
# Segment handlers: f(build, segment), looked up by tag; a segment with no handler goes to
# Order.unmapped. Each handler decides by the area (header, line, summary) and the segment
# group it is in (build.ctx).


def _bgm(b: _Build, seg: list[Any]) -> None:
    if b.saw_bgm or b.area != "header":
        b.keep(seg)
        return
    b.saw_bgm = True
    o = b.order
    o["order_type"] = _val(seg, 1)
    o["po_number"] = _val(seg, 2)
    code = _val(seg, 3)
    purpose = b.t.purpose.get(code or "")
    if purpose is None:
        purpose = Purpose.OTHER if code else Purpose.ORIGINAL
        if code:
            b.extensions["purpose_code"] = code
    o["purpose"] = purpose
    response = _val(seg, 4)
    if response:
        b.extensions["response_type"] = response
    if b.tr is not None:
        if o["po_number"] is not None:
            b.trace("po_number", "BGM", "1004")
        if o["order_type"] is not None:
            b.trace("order_type", "BGM", "C002 1001")
        if code:
            b.trace("purpose", "BGM", "1225")
            if "purpose_code" in b.extensions:
                b.trace("extensions.purpose_code", "BGM", "1225")
        if response:
            b.trace("extensions.response_type", "BGM", "4343")
    b.keep_rest(seg)


def _dated(b: _Build, seg: list[Any], role: str | None = None) -> list[dict[str, Any]] | None:
    """DatedEvents of a DTM (two for a range), or None if its format is not one we read."""
    comps = b.components(seg, 1)
    qualifier = (comps[0].strip() or None) if comps else None
    value = comps[1].strip() if len(comps) > 1 else ""
    fmt = comps[2].strip() if len(comps) > 2 else ""
    if role is None:
        role = b.t.date_roles.get(qualifier or "", qualifier or "unknown")
    if not value:
        return None
    if not fmt:
        fmt = _BY_LENGTH.get(len(value), "") if value.isdigit() else ""
    width = _RANGE_FORMATS.get(fmt)
    if width is not None:
        start, sep, end = value.partition("-")
        if not sep or len(start) != width or len(end) != width:
            raise MappingError(
                f"DTM 2380 {value!r} is not a range in format {fmt}",
                reason="EDIFACT_BAD_DATE",
                position=b.position(seg, "2380"),
            )
        single = "102" if width == 8 else "203"
        first = b.date_time(start, single, seg)
        last = b.date_time(end, single, seg)
        assert first is not None and last is not None
        return [
            {"role": f"{role}_start", "qualifier": qualifier, "date": first[0], "time": first[1]},
            {"role": f"{role}_end", "qualifier": qualifier, "date": last[0], "time": last[1]},
        ]
    parsed = b.date_time(value, fmt, seg)
    if parsed is None:
        return None
    return [{"role": role, "qualifier": qualifier, "date": parsed[0], "time": parsed[1]}]


def _add_dates(b: _Build, seg: list[Any], role: str | None = None) -> list[dict[str, Any]]:
    """Add a DTM's dates to the line or the header; unreadable formats go to unmapped."""
    events = _dated(b, seg, role)
    if events is None:
        b.keep(seg)
        return []
    if b.line is not None:
        target, prefix = b.line.setdefault("dates", []), f"{b.lp}.dates"
    else:
        target, prefix = b.dates, "dates"
    for event in events:
        if b.tr is not None:
            b.trace_fields(
                f"{prefix}[{len(target)}]",
                event,
                "DTM",
                {"date": "2380", "time": "2380", "qualifier": "2005", "role": "2005"},
            )
        target.append(event)
    return events


def _dtm(b: _Build, seg: list[Any]) -> None:
    ctx = b.ctx
    if ctx is None:
        events = _add_dates(b, seg)
        if b.line is None and b.area == "header":
            o = b.order
            for event in events:
                role, date = event["role"], event["date"]
                if role in ("requested_delivery", "requested_delivery_start"):
                    if "requested_delivery_date" not in o:
                        o["requested_delivery_date"] = date
                        if b.tr is not None:
                            b.trace("requested_delivery_date", "DTM", "2380")
                elif role == "order_date" and "order_date" not in o:
                    o["order_date"] = date
                    if b.tr is not None:
                        b.trace("order_date", "DTM", "2380")
        b.keep_rest(seg)
    elif ctx == "RFF":
        code = _val(seg, 1, 0) or ""
        date_role = b.t.date_roles.get(code, code or "date")
        role = f"{b.ref_role}_date" if code == "171" else f"{b.ref_role}_{date_role}"
        _add_dates(b, seg, role)
        b.keep_rest(seg)
    elif ctx == "PAT" and b.obj is not None:
        field = _TERMS_DATES.get(_val(seg, 1, 0) or "")
        dated = _dated(b, seg) if field else None
        if field is None or dated is None or len(dated) != 1 or field in b.obj:
            b.keep(seg)
            return
        b.obj[field] = dated[0]["date"]
        if b.tr is not None:
            b.trace(f"{b.op}.{field}", "DTM", "2380")
    else:
        b.keep(seg)


# DTM qualifiers inside a PAT group -> the PaymentTerms field they fill.
_TERMS_DATES = {"13": "net_due_date", "140": "net_due_date", "12": "discount_due_date"}


def _rff(b: _Build, seg: list[Any]) -> None:
    ctx = b.ctx
    qualifier = _val(seg, 1, 0)
    if qualifier is None:
        b.keep(seg)
        return
    ref = {
        "qualifier": qualifier,
        "value": _val(seg, 1, 1),
        "role": b.t.reference_roles.get(qualifier),
    }
    fields = {"qualifier": "C506 1153", "value": "C506 1154", "role": "C506 1153"}
    if b.party is not None and ctx is not None and (ctx.startswith("NAD") or ctx == "CTA"):
        refs = b.party.setdefault("references", [])
        if b.tr is not None:
            b.trace_fields(f"{b.pp}.references[{len(refs)}]", ref, "RFF", fields)
        refs.append(ref)
        b.ctx = "NAD.RFF"
        b.keep_rest(seg)
        return
    if ctx == "X":  # inside a group that is not mapped (PAC, SCC, RCS, ...)
        b.keep(seg)
        return
    if b.line is not None:
        target, prefix = b.line.setdefault("references", []), f"{b.lp}.references"
    else:
        target, prefix = b.references, "references"
        if qualifier == "CT" and ref["value"] and "contract_number" not in b.order:
            b.order["contract_number"] = ref["value"]
            if b.tr is not None:
                b.trace("contract_number", "RFF", "C506 1154")
    b.set_ctx("RFF", ref, f"{prefix}[{len(target)}]")
    b.ref_role = ref["role"] or qualifier
    if b.tr is not None:
        b.trace_fields(f"{prefix}[{len(target)}]", ref, "RFF", fields)
    target.append(ref)
    b.keep_rest(seg)


def _ftx(b: _Build, seg: list[Any]) -> None:
    if b.ctx == "X":
        b.keep(seg)
        return
    text = _join(b.components(seg, 4))
    if text is None:
        b.keep(seg)
        return
    if b.line is not None:
        target, prefix = b.line.setdefault("notes", []), f"{b.lp}.notes"
    else:
        target, prefix = b.notes, "notes"
    if b.tr is not None:
        b.tr[f"{prefix}[{len(target)}]"] = b.src("FTX", "C108 4440")
    target.append(text)
    b.keep_rest(seg)

"""Segment handlers of the 850's loops: the N1 loop (N1 N2 N3 N4 REF PER, a party) and the
PO1 loop (PO1 and PO4, SDQ, CTP, LIN, CUR inside it, a line), and CTT. See "What goes
where" in `gateway.mapping.x12_850`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gateway.errors import MappingError
from gateway.mapping.x12_850.header import (
    _contact,
    _cur,
    _reference,
    _trace_contact,
    _trace_reference,
)
from gateway.mapping.x12_850.segments import (
    _CTP_TRACE,
    _CTT_TRACE,
    _N1_TRACE,
    _N4_TRACE,
    _PO1_TRACE,
    _PO4_TRACE,
    _element,
    _line_path,
    _trace_fields,
    _val,
)

if TYPE_CHECKING:
    from gateway.mapping.x12_850.build import _Build

# -- N1 loop


def _n1(b: _Build, seg: list[Any]) -> None:
    role = _val(seg, 1) or "unknown"
    party: dict[str, Any] = {
        "name": _val(seg, 2),
        "code_qualifier": _val(seg, 3),
        "code": _val(seg, 4),
        "address_lines": [],
        "references": [],
    }
    field: str | None = None  # buyer, ship_to, ...; None: other_parties[key]
    if b.line is not None:
        key = _free_key(b.others, f"{role}@line{b.line.get('line_number') or b.po1_count}")
        b.others[key] = party
    else:
        field = b.t.party_roles.get(role)
        if field is not None and field not in b.parties:
            b.parties[field] = party
        else:
            field = None
            key = _free_key(b.others, role)
            b.others[key] = party
    b.party = party
    b.n9_notes = None
    tr = b.prov
    if tr is not None:
        path = field or f"other_parties.{key}"
        p = b.pos()
        tr[path] = f"N1*{_val(seg, 1)} loop{p}" if _val(seg, 1) else f"N1 loop{p}"
        _trace_fields(b, path, party, _N1_TRACE, p)


def _party_path(b: _Build) -> str:
    """Trace path of the N1 loop being read: ``"ship_to"``, ``"other_parties.ST@line1"``. Its
    party is the last one added (a dict keeps its order), to the roles or to the others."""
    party = b.party
    for parties, prefix in ((b.parties, ""), (b.others, "other_parties.")):
        if parties:
            key = next(reversed(parties))
            if parties[key] is party:
                return prefix + key
    raise AssertionError("an N1 loop without its party")


def _free_key(existing: Mapping[str, Any], key: str) -> str:
    if key not in existing:
        return key
    n = 2
    while f"{key}_{n}" in existing:
        n += 1
    return f"{key}_{n}"


def _n2n3(b: _Build, seg: list[Any]) -> None:
    assert b.party is not None
    lines = b.party["address_lines"]
    if b.prov is not None:
        n, p, sid = len(lines), b.pos(), seg[0]
        for i in (1, 2):
            if _val(seg, i) is not None:
                b.prov[f"{_party_path(b)}.address_lines[{n}]"] = f"{sid}0{i}{p}"
                n += 1
    for i in (1, 2):
        v = _val(seg, i)
        if v is not None:
            lines.append(v)


def _n4(b: _Build, seg: list[Any]) -> None:
    party = b.party
    assert party is not None
    if "city" in party:
        b.keep(seg)
        return
    party["city"] = _val(seg, 1)
    party["region"] = _val(seg, 2)
    party["postal_code"] = _val(seg, 3)
    party["country"] = _val(seg, 4)
    if b.prov is not None:
        _trace_fields(b, _party_path(b), party, _N4_TRACE)


def _party_ref(b: _Build, seg: list[Any]) -> None:
    assert b.party is not None
    ref = _reference(b, seg)
    if ref is not None:
        refs = b.party["references"]
        if b.prov is not None:
            _trace_reference(b, f"{_party_path(b)}.references[{len(refs)}]", seg, ref)
        refs.append(ref)


def _party_per(b: _Build, seg: list[Any]) -> None:
    assert b.party is not None
    if "contact" in b.party:
        b.keep(seg)
    else:
        b.party["contact"] = _contact(b, seg)
        if b.prov is not None:
            _trace_contact(b, f"{_party_path(b)}.contact", seg, b.pos())


# -- PO1 loop


def _po1(b: _Build, seg: list[Any]) -> None:
    if b.summary:
        b.keep(seg)
        return
    if b.line is not None:
        _close_line(b)
    b.po1_count += 1
    # PO101..PO105 read one by one instead of through _val: one PO1 per order line
    # makes this the busiest handler. A composite among them is rare: AttributeError.
    e = seg if len(seg) > 5 else [*seg, "", "", "", "", ""]
    try:
        line_number = e[1].strip() or None
        quantity_text = e[2].strip() or None
        uom = e[3].strip() or None
        price_text = e[4].strip() or None
        price_basis = e[5].strip() or None
    except AttributeError:
        line_number, quantity_text, uom, price_text, price_basis = [_val(e, i) for i in range(1, 6)]
    quantity = b.dec(seg, 2, value=quantity_text)
    if quantity is None:
        raise MappingError(
            f"PO1 line {line_number or b.po1_count} has no quantity (PO102)",
            reason="X12_MISSING_QUANTITY",
            position=b.where(seg, 2),
        )
    line: dict[str, Any] = {
        "line_number": line_number,
        "quantity": quantity,
        "uom": uom,
        "unit_price": b.dec(seg, 4, value=price_text),
        "price_basis": price_basis,
    }
    if len(seg) > 7:
        _item_ids(b, seg, line, 6)
    b.line = line
    b.lines.append(line)
    if b.prov is not None:
        _trace_po1(b, seg, line)


def _item_ids(b: _Build, seg: list[Any], line: dict[str, Any], start: int) -> None:
    """Qualifier/value pairs from seg[start] on -> item_ids, and the fields the table names."""
    fields = b.t.product_ids
    ids = line.setdefault("item_ids", [])
    for i in range(start, len(seg) - 1, 2):
        # _val written out: two or more pairs on every PO1.
        qualifier, value = seg[i], seg[i + 1]
        try:
            qualifier, value = qualifier.strip(), value.strip()
        except AttributeError:  # a composite: its first component counts
            qualifier = (qualifier if qualifier.__class__ is str else qualifier[0]).strip()
            value = (value if value.__class__ is str else value[0]).strip()
        if qualifier and value:
            ids.append({"qualifier": qualifier, "value": value})
            field = fields.get(qualifier)
            if field is not None and field not in line:
                line[field] = value


def _trace_po1(b: _Build, seg: list[Any], line: Mapping[str, Any]) -> None:
    tr = b.prov
    assert tr is not None
    p, lp = b.pos(), _line_path(b)
    tr[lp] = "PO1 loop" + p
    _trace_fields(b, lp, line, _PO1_TRACE, p)
    if "item_ids" in line:
        _trace_item_ids(b, seg, line, 6, p, lp, 0)


def _trace_item_ids(
    b: _Build,
    seg: list[Any],
    line: Mapping[str, Any],
    start: int,
    p: str,
    lp: str,
    first: int | None = None,
) -> None:
    """Trace the item ids `_item_ids` has just added to the line being read (the last ones;
    `first`: the index of the first of them, if known)."""
    tr = b.prov
    assert tr is not None
    sid, ids, fields = seg[0], line["item_ids"], b.t.product_ids
    elements: Sequence[int]
    if first == 0 and len(ids) == (len(seg) - start) // 2:
        elements = range(start, len(seg) - 1, 2)  # every pair made an id (the usual PO1)
    else:
        elements = [i for i in range(start, len(seg) - 1, 2) if _val(seg, i) and _val(seg, i + 1)]
    n = len(ids) - len(elements)
    for i in elements:
        # One entry per id, "PO106/PO107 (...)": its qualifier and value fall back to it.
        value = _element(sid, i + 1)
        tr[f"{lp}.item_ids[{n}]"] = f"{_element(sid, i)}/{value}{p}"
        field = fields.get(ids[n]["qualifier"])
        if field is not None:
            tr.setdefault(f"{lp}.{field}", value + p)  # the first match sets the field
        n += 1


def _close_line(b: _Build) -> None:
    if b.line is None:
        return
    if b.description:
        b.line["description"] = " ".join(b.description)
        b.description = []
    b.line = None


def _lin(b: _Build, seg: list[Any]) -> None:
    assert b.line is not None
    _item_ids(b, seg, b.line, 2)
    if b.prov is not None:
        _trace_item_ids(b, seg, b.line, 2, b.pos(), _line_path(b))


def _po4(b: _Build, seg: list[Any]) -> None:
    line = b.line
    assert line is not None
    if "pack" in line:
        b.keep(seg)
        return
    line["pack"] = {
        "pack": b.dec(seg, 1),
        "size": b.dec(seg, 2),
        "uom": _val(seg, 3),
        "packaging_code": _val(seg, 4),
        "weight": b.dec(seg, 6),
        "weight_uom": _val(seg, 7),
        "volume": b.dec(seg, 8),
        "volume_uom": _val(seg, 9),
    }
    if b.prov is not None:
        _trace_fields(b, f"{_line_path(b)}.pack", line["pack"], _PO4_TRACE)


def _sdq(b: _Build, seg: list[Any]) -> None:
    line = b.line
    assert line is not None
    qualifier = _val(seg, 2)
    for i in range(3, len(seg) - 1, 2):
        location = _val(seg, i)
        if location is None:
            continue
        quantity = b.dec(seg, i + 1)
        if quantity is None:
            raise MappingError(
                f"SDQ location {location} has no quantity",
                reason="X12_BAD_NUMBER",
                position=b.where(seg, i + 1),
            )
        line.setdefault("destinations", []).append(
            {"location_qualifier": qualifier, "location": location, "quantity": quantity}
        )
    if b.prov is not None:
        _trace_sdq(b, seg, line)


def _trace_sdq(b: _Build, seg: list[Any], line: Mapping[str, Any]) -> None:
    """Trace the destinations `_sdq` has just added (the last ones of the line)."""
    tr = b.prov
    assert tr is not None
    p, lp = b.pos(), _line_path(b)
    pairs = [i for i in range(3, len(seg) - 1, 2) if _val(seg, i) is not None]
    n = len(line.get("destinations", ())) - len(pairs)
    for i in pairs:
        path = f"{lp}.destinations[{n}]"
        if _val(seg, 2) is not None:
            tr[f"{path}.location_qualifier"] = "SDQ02" + p
        tr[f"{path}.location"] = _element("SDQ", i) + p
        tr[f"{path}.quantity"] = _element("SDQ", i + 1) + p
        n += 1


def _ctp(b: _Build, seg: list[Any]) -> None:
    line = b.line
    assert line is not None
    price = b.dec(seg, 3)
    qualifier = _val(seg, 2)
    if price is None or qualifier is None:
        b.keep(seg)
        return
    prices = line.setdefault("prices", [])
    item = {"qualifier": qualifier, "value": _val(seg, 3), "description": _val(seg, 1)}
    if b.prov is not None:
        _trace_fields(b, f"{_line_path(b)}.prices[{len(prices)}]", item, _CTP_TRACE)
    prices.append(item)


def _line_cur(b: _Build, seg: list[Any]) -> None:
    _cur(b, seg)


def _ctt(b: _Build, seg: list[Any]) -> None:
    _close_line(b)
    b.summary = True
    if "line_count" in b.totals:
        b.keep(seg)
        return
    count = b.int_(seg, 1)
    b.totals["line_count"] = count
    b.totals["quantity_total"] = b.dec(seg, 2)
    if b.prov is not None:
        _trace_fields(b, "totals", b.totals, _CTT_TRACE)

"""Segment handlers of the party groups: NAD (a party by its role), CTA and COM (its
contact). See "What goes where" in `gateway.mapping.edifact_orders`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.mapping.edifact_orders.segments import _join, _val

if TYPE_CHECKING:
    from gateway.mapping.edifact_orders.build import _Build

# -- parties


def _nad(b: _Build, seg: list[Any]) -> None:
    if b.area == "summary":
        b.keep(seg)
        return
    role = _val(seg, 1) or "unknown"
    label = f"NAD+{role}"
    c058 = [c.strip() for c in b.components(seg, 3) if c.strip()]
    c080 = b.components(seg, 4)
    streets = [c.strip() for c in b.components(seg, 5) if c.strip()]
    name = _join(c080[:5])
    name_from = "C080 3036"
    lines: list[str] = []
    if name is None and c058:
        name, c058 = c058[0], c058[1:]
        name_from = "C058 3124"
    lines = c058 + streets
    party: dict[str, Any] = {
        "code": _val(seg, 2, 0),
        "code_qualifier": _val(seg, 2, 2),
        "name": name,
        "address_lines": lines,
        "city": _val(seg, 6),
        "region": _val(seg, 7, 0),
        "postal_code": _val(seg, 8),
        "country": _val(seg, 9),
        "references": [],
    }
    if b.line is not None:
        key = f"{role}@line{b.line.get('line_number') or b.lin_count}"
        key = _free_key(b.others, key)
        b.others[key] = party
        path = f"other_parties.{key}"
    else:
        field = b.t.party_roles.get(role)
        if field is not None and field not in b.parties:
            b.parties[field] = party
            path = field
        else:
            key = _free_key(b.others, role)
            b.others[key] = party
            path = f"other_parties.{key}"
    b.set_ctx("NAD", party, path)
    b.party, b.pp = party, path
    if b.tr is not None:
        b.trace_fields(
            path,
            party,
            label,
            {
                "code": "C082 3039",
                "code_qualifier": "C082 3055",
                "name": name_from,
                "city": "3164",
                "region": "C819 3229",
                "postal_code": "3251",
                "country": "3207",
            },
        )
        if lines:
            b.trace(f"{path}.address_lines", label, "C059 3042" if not c058 else "C058/C059")
    b.keep_rest(seg)


def _free_key(existing: Mapping[str, Any], key: str) -> str:
    if key not in existing:
        return key
    n = 2
    while f"{key}_{n}" in existing:
        n += 1
    return f"{key}_{n}"


def _cta(b: _Build, seg: list[Any]) -> None:
    party = b.party
    if party is None or "contact" in party:
        b.keep(seg)
        if party is None:
            b.set_ctx("X")
        else:
            b.ctx = "CTA.X"  # a second contact: its COMs are kept with it
        return
    comps = b.components(seg, 2)
    name = (comps[1].strip() if len(comps) > 1 else "") or (comps[0].strip() if comps else "")
    contact: dict[str, Any] = {"name": name or None}
    party["contact"] = contact
    b.ctx = "CTA"
    if b.tr is not None and contact["name"]:
        b.trace(f"{b.pp}.contact.name", f"CTA+{_val(seg, 1) or ''}".rstrip("+"), "C056 3412")
    b.keep_rest(seg)


def _com(b: _Build, seg: list[Any]) -> None:
    party = b.party
    ctx = b.ctx
    if party is None or ctx is None or not (ctx.startswith("NAD") or ctx == "CTA"):
        b.keep(seg)
        return
    comps = b.components(seg, 1)
    number = comps[0].strip() if comps else ""
    channel = comps[1].strip() if len(comps) > 1 else ""
    field = b.t.contact_qualifiers.get(channel)
    contact = party.setdefault("contact", {"name": None})
    if field is None or not number or contact.get(field) is not None:
        b.keep(seg)
        return
    contact[field] = number
    if b.tr is not None:
        b.trace(f"{b.pp}.contact.{field}", "COM", "C076 3148")
    b.keep_rest(seg)

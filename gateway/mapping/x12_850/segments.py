"""Reading an 850's segments, and where each traced field comes from: a segment's text and
element values (`_text`, `_val`), and the element each field of a segment is traced to
(``trace["lines[0].quantity"] == "PO102 (segment 14, line 15)"``). See "Field provenance"
in the package docstring (`gateway.mapping.x12_850`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.mapping.x12_850.build import _Build


_LINE_PARTY_SEGMENTS = frozenset({"N2", "N3", "N4", "REF", "PER"})


def _text(segment: list[Any]) -> str:
    """A segment as text: '*' between elements, ':' between components."""
    return "*".join(e if e.__class__ is str else ":".join(e) for e in segment)


def _val(seg: list[Any], i: int) -> str | None:
    """Element i (1-based, as in PO102) stripped, or None if absent or empty."""
    if i >= len(seg):
        return None
    v = seg[i]
    if v.__class__ is not str:
        v = v[0]
    return v.strip() or None


# What the envelope's values in Order.source come from (the envelope has no segment numbers).
_SOURCE_TRACE = {
    "sender_id": "ISA06",
    "sender_qualifier": "ISA05",
    "receiver_id": "ISA08",
    "receiver_qualifier": "ISA07",
    "interchange_control_number": "ISA13",
    "group_control_number": "GS06",
    "transaction_control_number": "ST02",
    "version": "GS08 (ISA12 without one)",
    "test_indicator": "ISA15",
}

# The element each field a segment fills comes from, for the trace.
_Fields = tuple[tuple[str, str, str], ...]  # (field, ".field", element)


def _fields(**elements: str) -> _Fields:
    return tuple((name, "." + name, element) for name, element in elements.items())


_BEG_TRACE = {
    "order_type": "BEG02",
    "po_number": "BEG03",
    "release_number": "BEG04",
    "order_date": "BEG05",
    "contract_number": "BEG06",
}
_REF_TRACE = {
    sid: _fields(qualifier=f"{sid}01", value=f"{sid}02", description=f"{sid}03", role=f"{sid}01")
    for sid in ("REF", "N9")
}
_DTM_TRACE = {  # by the element the date is read from
    date: _fields(role="DTM01", qualifier="DTM01", date=date, time="DTM03")
    for date in ("DTM02", "DTM06")
}
_ITD_TRACE = _fields(
    type_code="ITD01",
    basis_date_code="ITD02",
    discount_percent="ITD03",
    discount_due_date="ITD04",
    discount_days="ITD05",
    net_due_date="ITD06",
    net_days="ITD07",
    discount_amount="ITD08",
    description="ITD12",
)
_TD5_TRACE = _fields(
    routing_sequence="TD501",
    carrier_qualifier="TD502",
    carrier_code="TD503",
    transport_method="TD504",
    routing="TD505",
    service_level="TD512",
)
_SAC_TRACE = _fields(
    indicator="SAC01",
    code="SAC02",
    amount="SAC05",
    percent="SAC07",
    rate="SAC08",
    quantity="SAC10",
    handling="SAC12",
    description="SAC15",
)
_TXI_TRACE = _fields(type="TXI01", amount="TXI02", percent="TXI03", jurisdiction="TXI05")
_AMT_TRACE = _fields(qualifier="AMT01", value="AMT02", description="AMT03")
_N1_TRACE = _fields(name="N102", code_qualifier="N103", code="N104")
_N4_TRACE = _fields(city="N401", region="N402", postal_code="N403", country="N404")
_PO1_TRACE = _fields(
    line_number="PO101", quantity="PO102", uom="PO103", unit_price="PO104", price_basis="PO105"
)
_PO4_TRACE = _fields(
    pack="PO401",
    size="PO402",
    uom="PO403",
    packaging_code="PO404",
    weight="PO406",
    weight_uom="PO407",
    volume="PO408",
    volume_uom="PO409",
)
_CTP_TRACE = _fields(qualifier="CTP02", value="CTP03", description="CTP01")
_CTT_TRACE = _fields(line_count="CTT01", quantity_total="CTT02")


def _trace_fields(
    b: _Build, path: str, obj: Mapping[str, Any], fields: _Fields, p: str = ""
) -> None:
    """Trace each field of `obj` that is set to its element (``path.field -> "ITD03 (...)"``)."""
    tr = b.prov
    assert tr is not None
    p = p or b.pos()
    for name, key, element in fields:
        if obj.get(name) is not None:
            tr[path + key] = element + p


_NN = tuple(f"{i:02d}" for i in range(100))


def _element(sid: str, i: int) -> str:
    """``"PO107"``: element i of a segment, for a trace entry (a format spec costs more)."""
    return sid + (_NN[i] if i < 100 else str(i))


def _line_path(b: _Build) -> str:
    """Trace path of the PO1 loop being read: ``"lines[3]"``."""
    return f"lines[{len(b.lines) - 1}]"

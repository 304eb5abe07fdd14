"""The standard X12 850 (purchase order) mapping: one `Document` in, one canonical `Order` out.

Code tables (BEG01 purposes, product id qualifiers, N1 roles, DTM roles, REF roles, ...) are
data in ``mappings/x12/850.yaml``, loaded and checked once (`load_x12_tables`); a partner
file can override entries.

What goes where
    BEG             purpose (table), order_type, po_number, release_number, order_date
                    (CCYYMMDD or YYMMDD), contract_number
    CUR             currency (CUR02; the first one, header or line, sets it)
    REF, N9         references, with a readable role (table); MSG/NTE after N9 -> notes
    PER (header)    the buyer's contact, when the buyer (N1*BY) has none of its own
    DTM             dates by role (table); "requested_delivery" also sets
                    requested_delivery_date (and "order_date" the order date if BEG05 is empty)
    ITD             payment_terms; TD5, FOB -> shipping (FOB05 -> incoterms when FOB04 is 01
                    or empty, FOB07 -> incoterms_location);
                    TD1/TD3/TD4 are kept verbatim in extensions["x12_shipping"]
                    (TD404 text also goes to shipping.instructions)
    SAC             allowances_charges (SAC05 has two implied decimals: 1000 = 10.00)
    AMT             totals (AMT*TT -> total, others -> totals.amounts); TXI -> taxes
    N1 loop         N1 N2 N3 N4 REF PER -> buyer, ship_to, bill_to, seller (table) or
                    other_parties[N101]; a second N1*ST (a role already taken) goes to
                    other_parties["ST"], a third to other_parties["ST_2"], ...
    PO1 loop        one OrderLine: PO101..PO105, product id pairs from PO106 on -> item_ids
                    and sku/buyer_part_number/gtin (table, first match wins); PID*F ->
                    description (several joined with a space), PID*S -> notes; PO4 -> pack;
                    SDQ -> destinations; CTP -> prices; REF/DTM/SAC/TXI/MSG/N9 -> the line;
                    N1 loop inside PO1 -> other_parties["<code>@line<line number>"]
    CTT             totals.line_count / quantity_total; CTT01 must equal the number of PO1s
    anything else   Order.unmapped, as the segment text ("*" between elements, ":" between
                    components), so nothing is silently dropped

Field provenance: with ``trace={}``, every field the mapping sets gets an entry, dotted path ->
source, e.g. ``trace["po_number"] == "BEG03 (segment 2, line 4)"``,
``trace["lines[0].quantity"] == "PO102 (segment 14, line 15)"``, ``trace["ship_to.city"] ==
"N401 (segment 11, line 12)"``; an N1 or PO1 loop also gets one for the whole, e.g.
``trace["ship_to"] == "N1*ST loop (segment 9, line 10)"``, ``trace["lines[0]"] == "PO1 loop
(segment 14, line 15)"``. A list of texts (address lines, notes, unmapped, ...) is traced
item by item and as a whole (the items' sources joined with "; "), and so is a description
from several PIDs. The envelope's values name their element (``trace["source.sender_id"] ==
"ISA06"``). Segment numbers count from ST = 1 (as SE does); lines are lines of the file.
With ``trace=None`` nothing is recorded.

Reason codes (MappingError.reason)
    MISSING_PO_NUMBER     no BEG, or BEG03 empty
    X12_CTT_COUNT         CTT01 differs from the number of PO1 segments
    X12_BAD_NUMBER        a quantity, price or amount that is not a number (or beyond 1e15)
    X12_MISSING_QUANTITY  a PO1 without PO102
    X12_BAD_DATE          a date that is not CCYYMMDD/YYMMDD
    X12_NOT_850           the document is not an 850
    INVALID_ORDER         the mapped values do not make a valid Order (a mapping bug)
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from gateway.errors import MappingError
from gateway.formats.base import Document
from gateway.mapping.builder import (
    CENTURY_PIVOT,
    SegmentOrder,
    envelope_source,
    in_range,
    load_tables,
    trace_source,
)
from gateway.model import Order, Purpose

__all__ = [
    "DEFAULT_TABLES_PATH",
    "X12Tables",
    "default_tables",
    "load_x12_tables",
    "map_850",
]

DEFAULT_TABLES_PATH = Path(__file__).resolve().parents[2] / "mappings" / "x12" / "850.yaml"

# ------------------------------------------------------------------------------------------
# Code tables

# table name -> (what it is for, allowed values or None for any snake_case name)
_TABLES: dict[str, tuple[str, frozenset[str] | None]] = {
    "purpose": ("BEG01 purpose codes", frozenset(p.value for p in Purpose)),
    "product_ids": (
        "PO1 product id qualifiers",
        frozenset({"sku", "buyer_part_number", "gtin"}),
    ),
    "party_roles": ("N101 entity codes", frozenset({"buyer", "ship_to", "bill_to", "seller"})),
    "date_roles": ("DTM01 date qualifiers", None),
    "reference_roles": ("REF01/N901 reference qualifiers", None),
    "allowance_charge": ("SAC01 indicators", frozenset({"allowance", "charge"})),
    "contact_qualifiers": ("PER communication qualifiers", frozenset({"phone", "email", "fax"})),
    "amount_roles": (
        "AMT01 amount qualifiers",
        frozenset({"total", "subtotal", "tax_total", "shipping_total", "discount_total"}),
    ),
}


@dataclass(frozen=True, slots=True)
class X12Tables:
    """The code tables of an 850 mapping, checked and read-only. See mappings/x12/850.yaml."""

    purpose: Mapping[str, Purpose]
    product_ids: Mapping[str, str]
    party_roles: Mapping[str, str]
    date_roles: Mapping[str, str]
    reference_roles: Mapping[str, str]
    allowance_charge: Mapping[str, str]
    contact_qualifiers: Mapping[str, str]
    amount_roles: Mapping[str, str]
    sources: tuple[str, ...] = ()  # the files these tables were read from, base first


def load_x12_tables(
    path: Path | str = DEFAULT_TABLES_PATH, overrides: Sequence[Path | str] = ()
) -> X12Tables:
    """Read and check the code tables at `path`, then apply each override file in order.

    An override file holds only the tables and entries it changes; an entry with value
    ``null`` removes the standard entry. Raises ConfigError listing every problem, each
    naming its file, table and key.
    """
    return load_tables(X12Tables, _TABLES, path, overrides, example="002")


@functools.cache
def default_tables() -> X12Tables:
    """The standard tables from mappings/x12/850.yaml, loaded once per process."""
    return load_x12_tables()


# ------------------------------------------------------------------------------------------
# Mapping

_LINE_PARTY_SEGMENTS = frozenset({"N2", "N3", "N4", "REF", "PER"})


def map_850(
    doc: Document, tables: X12Tables | None = None, trace: dict[str, str] | None = None
) -> Order:
    """Map one X12 850 `Document` (from `gateway.formats.x12.X12Parser`) to an `Order`.

    With `trace` a dict, it is filled with dotted field path -> where the value came from.
    Raises MappingError (reasons in the module docstring) with the position of the bad
    segment and element when the document cannot become an order.
    """
    if doc.doc_type != "850":
        raise MappingError(
            f"transaction set {doc.doc_type} is not a purchase order (850)",
            reason="X12_NOT_850",
            position=doc.position,
        )
    return _Build(doc, tables or default_tables(), trace).run()


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


class _Build(SegmentOrder):
    """The state of one mapping run: where in the 850 we are and what has been collected."""

    def __init__(self, doc: Document, tables: X12Tables, trace: dict[str, str] | None = None):
        # Mind the number of attributes: on CPython 3.11 an instance with more than 29 loses
        # the fast attribute layout (measured: 31 made map_850 ~3% slower than these 29,
        # SegmentOrder's 16 included).
        super().__init__(
            doc,
            {"po_number": None, "channel": "x12", "source": envelope_source(doc)},
        )
        self.t = tables
        # Field provenance, or None. Every handler looks at it at most once per segment; the
        # x12_860 subclass keeps its own trace and leaves this None.
        self.prov = trace
        self.lines_of: list[int] | None = getattr(doc.body, "lines", None)
        self.line: dict[str, Any] | None = None  # the PO1 loop being read
        self.description: list[str] = []  # PID*F texts of that line
        self.party: dict[str, Any] | None = None  # the N1 loop being read
        self.n9_notes: list[str] | None = None  # where MSG goes inside an N9 loop
        self.summary = False  # after CTT
        self.saw_beg = False
        self.header_contacts: list[tuple[dict[str, Any], list[Any], int]] = []  # (.., seg, k)
        self.shipping_raw: list[str] = []
        self.po1_count = 0
        self.k = 0  # index of the segment being mapped

    # -- errors and values -----------------------------------------------------------------

    def where(self, seg: list[Any], element: int | None = None, k: int | None = None) -> str:
        """Position of `seg` (the segment being mapped, else the one at index `k`)."""
        sid = seg[0]
        if k is None:
            k = self.k
        parts = []
        if self.lines_of is not None and k < len(self.lines_of):
            parts.append(f"line {self.lines_of[k]}")
        parts.append(f"segment {k + 1} of transaction {self.doc.control_number} ({sid})")
        if element is not None:
            parts.append(f"element {sid}{element:02d}")
        return ", ".join(parts)

    def pos(self, k: int | None = None) -> str:
        """``" (segment 14, line 15)"``: where the segment being mapped (else the one at index
        `k`) is, for a trace entry; segments counted from ST = 1."""
        if k is None:
            k = self.k
        lines = self.lines_of
        if lines is not None and k < len(lines):
            return f" (segment {k + 1}, line {lines[k]})"
        return f" (segment {k + 1})"

    def keep(self, seg: list[Any]) -> None:
        """Keep a segment as sent in Order.unmapped."""
        if self.prov is not None:
            self.prov[f"unmapped[{len(self.unmapped)}]"] = seg[0] + self.pos()
        self.unmapped.append(_text(seg))

    def keep_shipping(self, seg: list[Any]) -> None:
        """Keep a shipping segment as sent in extensions["x12_shipping"]."""
        if self.prov is not None:
            self.prov[f"extensions.x12_shipping[{len(self.shipping_raw)}]"] = seg[0] + self.pos()
        self.shipping_raw.append(_text(seg))

    def dec(
        self, seg: list[Any], i: int, implied: int = 0, value: str | None = None
    ) -> Decimal | None:
        v = value if value is not None else _val(seg, i)
        if v is None:
            return None
        try:
            d = Decimal(v)
        except InvalidOperation:
            d = None
        if d is None or not d.is_finite() or "_" in v:
            raise MappingError(
                f"{seg[0]}{i:02d} {v!r} is not a number; expected digits with an optional "
                "sign and decimal point",
                reason="X12_BAD_NUMBER",
                position=self.where(seg, i),
            )
        if not in_range(d):
            raise MappingError(
                f"{seg[0]}{i:02d} {v!r} is out of range for a quantity or amount",
                reason="X12_BAD_NUMBER",
                position=self.where(seg, i),
            )
        if implied and "." not in v:
            # N2 elements carry two implied decimals; a value with a point is taken as sent.
            d = d.scaleb(-implied)
        return d

    def int_(self, seg: list[Any], i: int) -> int | None:
        d = self.dec(seg, i)
        if d is None:
            return None
        if d != d.to_integral_value():
            raise MappingError(
                f"{seg[0]}{i:02d} {_val(seg, i)!r} must be a whole number",
                reason="X12_BAD_NUMBER",
                position=self.where(seg, i),
            )
        return int(d)

    def date(self, seg: list[Any], i: int, value: str | None = None) -> dt.date | None:
        v = value if value is not None else _val(seg, i)
        if v is None:
            return None
        try:
            if len(v) == 8 and v.isdigit():
                return dt.date(int(v[:4]), int(v[4:6]), int(v[6:]))
            if len(v) == 6 and v.isdigit():
                yy = int(v[:2])
                year = (2000 if yy < CENTURY_PIVOT else 1900) + yy
                return dt.date(year, int(v[2:4]), int(v[4:]))
        except ValueError:
            pass
        raise MappingError(
            f"{seg[0]}{i:02d} {v!r} is not a date; expected CCYYMMDD or YYMMDD",
            reason="X12_BAD_DATE",
            position=self.where(seg, i),
        )

    # -- the walk --------------------------------------------------------------------------

    def run(self) -> Order:
        body = self.doc.body
        header, line_handlers, party_handlers = _HEADER_AREA, _LINE_AREA, _PARTY
        for k, seg in enumerate(body):
            self.k = k
            sid = seg[0]
            if self.party is not None:
                handler = party_handlers.get(sid)
                if handler is not None:
                    handler(self, seg)
                    continue
                self.party = None
            if self.n9_notes is not None:
                if sid == "MSG" or sid == "NTE":
                    _note(self, seg, self.n9_notes)
                    continue
                if sid == "DTM":  # the date of the N9 reference, not of the order
                    self.keep(seg)
                    continue
                self.n9_notes = None
            handler = (line_handlers if self.line is not None else header).get(sid)
            if handler is not None:
                handler(self, seg)
            elif sid != "ST" and sid != "SE":
                self.keep(seg)
        return self.finish()

    def finish(self) -> Order:
        _close_line(self)
        o = self.order
        if not self.saw_beg or not o["po_number"]:
            raise MappingError(
                "the purchase order has no PO number: BEG03 is "
                + ("empty" if self.saw_beg else "missing (no BEG segment)"),
                reason="MISSING_PO_NUMBER",
                position=self.doc.position,
            )
        line_count = self.totals.get("line_count")
        if line_count is not None and line_count != self.po1_count:
            # The first CTT set line_count (every CTT goes to _ctt, a second one to unmapped).
            k, ctt = next((k, seg) for k, seg in enumerate(self.doc.body) if seg[0] == "CTT")
            raise MappingError(
                f"CTT01 says {line_count} line items but the order has {self.po1_count} PO1 "
                "segments; a line may have been lost, ask the sender to resend the order",
                reason="X12_CTT_COUNT",
                position=self.where(ctt, 1, k),
            )
        buyer = self.parties.get("buyer")
        tr = self.prov
        for contact, seg, k in self.header_contacts:
            if buyer is not None and "contact" not in buyer:
                buyer["contact"] = contact
                if tr is not None:
                    _trace_contact(self, "buyer.contact", seg, self.pos(k))
            else:
                if tr is not None:
                    tr[f"unmapped[{len(self.unmapped)}]"] = "PER" + self.pos(k)
                self.unmapped.append(_text(seg))
        if tr is not None:
            self.finish_trace(tr)
        if self.shipping_raw:
            self.extensions["x12_shipping"] = self.shipping_raw
        return self.assemble()

    def finish_trace(self, tr: dict[str, str]) -> None:
        """The envelope's values, and each list of texts as a whole (its items joined)."""
        source = self.order["source"]
        trace_source(tr, source, _SOURCE_TRACE)
        body = self.doc.body
        if len(body) > 0 and body[0][0] == "ST":
            st = self.pos(0)
            if source.get("transaction_control_number") is not None:
                tr["source.transaction_control_number"] = "ST02" + st
            tr["lines_are_changes"] = "ST01" + st  # an 850 is a whole order, not changes
        tr["channel"] = "ISA (an X12 interchange)"
        texts: list[tuple[str, list[Any]]] = [
            ("notes", self.notes),
            ("unmapped", self.unmapped),
            ("shipping.instructions", self.shipping.get("instructions", [])),
            ("extensions.x12_shipping", self.shipping_raw),
        ]
        texts += [
            (f"lines[{i}].notes", x["notes"]) for i, x in enumerate(self.lines) if "notes" in x
        ]
        texts += [
            (f"{field}.address_lines", x["address_lines"]) for field, x in self.parties.items()
        ]
        texts += [
            (f"other_parties.{key}.address_lines", x["address_lines"])
            for key, x in self.others.items()
        ]
        for path, items in texts:
            if items:
                found = (tr.get(f"{path}[{i}]") for i in range(len(items)))
                tr[path] = "; ".join(s for s in found if s)


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


_Handler = Callable[[_Build, list[Any]], None]

_COMMON: dict[str, _Handler] = {
    "PO1": _po1,
    "CTT": _ctt,
    "REF": _ref,
    "DTM": _dtm,
    "SAC": _sac,
    "TXI": _txi,
    "MSG": _note,
    "NTE": _note,
    "N9": _n9,
    "N1": _n1,
    "CUR": _cur,
    "AMT": _amt,
    "PID": _pid,
    "PER": _per,
}
_HEADER: dict[str, _Handler] = {
    "BEG": _beg,
    "ITD": _itd,
    "TD5": _td5,
    "TD1": _td_other,
    "TD3": _td_other,
    "TD4": _td_other,
    "FOB": _fob,
}
_LINE: dict[str, _Handler] = {
    "PO4": _po4,
    "SDQ": _sdq,
    "CTP": _ctp,
    "LIN": _lin,
    "CUR": _line_cur,
}
_HEADER_AREA = {**_COMMON, **_HEADER}
_LINE_AREA = {**_COMMON, **_LINE}
_PARTY: dict[str, _Handler] = {
    "N2": _n2n3,
    "N3": _n2n3,
    "N4": _n4,
    "REF": _party_ref,
    "PER": _party_per,
}

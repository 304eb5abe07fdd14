"""The standard EDIFACT ORDERS mapping: one `Document` in, one canonical `Order` out.

For ORDERS D96A, D96B, D01B and their EANCOM subsets. Code tables (BGM 1225 purposes, item
number types, NAD roles, DTM roles, RFF roles, ...) are data in
``mappings/edifact/orders.yaml``, loaded and checked once (`load_edifact_tables`); a partner
file can override entries.

A segment belongs to the segment group opened by the last group trigger before it (NAD,
RFF, TAX, CUX, PAT, TDT, TOD, ALC, PRI, LOC, ...), as in the message directory: a DTM after
an RFF dates that reference, a MOA after a TAX is the tax amount, a QTY after a LOC in a line
is that store's quantity.

What goes where
    BGM             po_number (1004, or C106 1004), purpose (1225, table), order_type
                    (C002 1001), extensions["response_type"] (4343)
    DTM             dates by role (table); the first "order_date" (137, 4) also sets
                    order_date, the first "requested_delivery" (2) requested_delivery_date.
                    Formats 102 CCYYMMDD, 203 CCYYMMDDHHMM, 204, 101 YYMMDD, 201; 718/719
                    ranges give two dates, roles "<role>_start" and "<role>_end" (a
                    requested delivery range sets requested_delivery_date to its start);
                    other formats keep the date empty and the segment in unmapped
    RFF (SG1)       references (role: table); the first RFF+CT also sets contract_number;
                    a DTM in its group -> dates, role "<reference role>_date" for 171, else
                    "<reference role>_<date role>"
    NAD (SG2)       buyer, seller, ship_to, bill_to (table) or other_parties[3035]: code
                    C082 3039, code_qualifier C082 3055 (9 = GS1 GLN), name C080 (3036
                    components joined with a space; without C080 the first C058 line),
                    address_lines C059 streets (after the other C058 lines), city 3164,
                    region C819/3229, postal_code 3251, country 3207; RFF in its group ->
                    party references; CTA -> contact name (C056 3412, else 3413) and COM ->
                    contact phone/email/fax (3155, table)
    TAX (SG6)       taxes: type C241 5153, jurisdiction C533 5289, percent C243 5278, amount
                    from the MOA in its group
    CUX (SG7)       currency: 6345 of the C504 whose usage 6347 is 2 (reference currency),
                    else of the first C504
    PAT (SG8)       payment_terms: type_code 4279, description C110 4276, basis_date_code
                    C112 2475, net_days (discount_days for 4279 = 22) from C112 2152 when
                    2151 is D; DTM 13/140 net_due_date, DTM 12 discount_due_date, PCD 12
                    discount_percent, MOA 52 discount_amount
    TDT (SG9)       shipping: routing_sequence 8051, transport_method C220 8067,
                    carrier_code C040 3127, carrier_qualifier C040 3055, routing C040 3128
    TOD (SG11)      shipping: fob_payment_method 4215, incoterms C100 4053, instructions
                    C100 4052; the LOC in its group -> incoterms_location (3225 or 3224)
    ALC (SG18)      allowances_charges (header, or the line's): indicator 5463 (table), code
                    C214 7161 (else C552 5189), description C214 7160, handling 4471; in its
                    group QTY -> quantity, PCD -> percent, MOA -> amount, RTE -> rate
    FTX             notes (the line's inside a line): C108 4440 components joined
    MOA             header/summary: totals (table: 79 subtotal, 86/128 total, ...) or
                    totals.amounts
    LIN             one OrderLine: line_number 1082, C212 item number -> item_ids and, by its
                    type 7143 (table: EN/SRV/UP gtin, SA sku, IN/BP buyer_part_number), the
                    field; PIA C212 pairs likewise (first one wins, LIN first); IMD
                    description (C273 7008 components, several IMDs joined with a space);
                    QTY+21 (or +1) quantity and 6411 uom; PRI+AAA (net, preferred) or +AAB
                    (gross) unit_price, price_basis "5284 6411" (or 5375), other prices ->
                    prices; line RFF/DTM/FTX/ALC/TAX -> the line; LOC + QTY -> destinations
                    (location C517 3225, location_qualifier C517 3055); NAD ->
                    other_parties["<3035>@line<line number>"]
    CNT             CNT+2 totals.line_count (must equal the number of LIN segments), CNT+1
                    totals.quantity_total
    anything else   Order.unmapped, as segment text (default separators ``+ : '``, release
                    character ``?``), so nothing is silently dropped. A segment of which only
                    some elements are mapped is also kept whole in unmapped when it carries
                    data in the others (a BGM document name, a TAX category, ...).

Numbers are read with Decimal(str) after the decimal mark is normalized: the one the UNA
declares (',' without a UNA), and the other one too when it is the only mark in the value
(EDIFACT has no thousands separators, so "25.00" under a decimal comma is unambiguous).

Field provenance: with ``trace={}``, every field the mapping sets gets an entry, dotted
path -> source, e.g. ``trace["po_number"] == "BGM 1004 (segment 2, line 3)"``,
``trace["lines[0].quantity"] == "QTY 6060 (segment 14, line 15)"``,
``trace["buyer.name"] == "NAD+BY C080 (segment 7, line 8)"``. Segment numbers count from UNH
= 1 (as UNT does); lines are lines of the file. With ``trace=None`` nothing is recorded.

Reason codes (MappingError.reason)
    MISSING_PO_NUMBER          no BGM, or BGM 1004 empty
    EDIFACT_NOT_ORDERS         the message is not an ORDERS
    EDIFACT_CNT_COUNT          CNT+2 differs from the number of LIN segments
    EDIFACT_BAD_NUMBER         a quantity, price, amount or count that is not a number
    EDIFACT_BAD_DATE           a date that does not match its format code (102, 203, ...)
    EDIFACT_MISSING_QUANTITY   a LIN without a QTY+21 or QTY+1
    EDIFACT_COMPONENTS         a free-text or number composite with more components than the
                               directory defines (an unescaped ':' in IMD text, ...)
    INVALID_ORDER              the mapped values do not make a valid Order (a mapping bug)
"""

from __future__ import annotations

import datetime as dt
import functools
import re
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
    "EdifactTables",
    "default_tables",
    "load_edifact_tables",
    "map_orders",
]

DEFAULT_TABLES_PATH = Path(__file__).resolve().parents[2] / "mappings" / "edifact" / "orders.yaml"

# ------------------------------------------------------------------------------------------
# Code tables

# table name -> (what it is for, allowed values or None for any snake_case name)
_TABLES: dict[str, tuple[str, frozenset[str] | None]] = {
    "purpose": ("BGM 1225 message function codes", frozenset(p.value for p in Purpose)),
    "product_ids": (
        "LIN/PIA 7143 item number types",
        frozenset({"sku", "buyer_part_number", "gtin"}),
    ),
    "party_roles": (
        "NAD 3035 party function codes",
        frozenset({"buyer", "ship_to", "bill_to", "seller"}),
    ),
    "date_roles": ("DTM 2005 date/time qualifiers", None),
    "reference_roles": ("RFF 1153 reference qualifiers", None),
    "allowance_charge": ("ALC 5463 indicators", frozenset({"allowance", "charge"})),
    "contact_qualifiers": ("COM 3155 channel qualifiers", frozenset({"phone", "email", "fax"})),
    "amount_roles": (
        "MOA 5025 amount qualifiers",
        frozenset({"total", "subtotal", "tax_total", "shipping_total", "discount_total"}),
    ),
}


@dataclass(frozen=True, slots=True)
class EdifactTables:
    """The code tables of an ORDERS mapping, checked and read-only. See
    mappings/edifact/orders.yaml."""

    purpose: Mapping[str, Purpose]
    product_ids: Mapping[str, str]
    party_roles: Mapping[str, str]
    date_roles: Mapping[str, str]
    reference_roles: Mapping[str, str]
    allowance_charge: Mapping[str, str]
    contact_qualifiers: Mapping[str, str]
    amount_roles: Mapping[str, str]
    sources: tuple[str, ...] = ()  # the files these tables were read from, base first


def load_edifact_tables(
    path: Path | str = DEFAULT_TABLES_PATH, overrides: Sequence[Path | str] = ()
) -> EdifactTables:
    """Read and check the code tables at `path`, then apply each override file in order.

    An override file holds only the tables and entries it changes; an entry with value
    ``null`` removes the standard entry. Raises ConfigError listing every problem, each
    naming its file, table and key.
    """
    return load_tables(EdifactTables, _TABLES, path, overrides, example="9")


@functools.cache
def default_tables() -> EdifactTables:
    """The standard tables from mappings/edifact/orders.yaml, loaded once per process."""
    return load_edifact_tables()


# ------------------------------------------------------------------------------------------
# Values

_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_ESCAPE = re.compile(r"([?+:'])")
_RANGE_FORMATS = {"718": 8, "719": 12}
# (length of the value, has time) by DTM 2379 format code; no code: guessed by length.
_DATE_FORMATS = {"102": 8, "203": 12, "204": 14, "101": 6, "201": 10}
_BY_LENGTH = {8: "102", 12: "203", 14: "204", 6: "101", 10: "201"}


def _esc(v: str) -> str:
    return _ESCAPE.sub(r"?\1", v) if ("?" in v or "+" in v or ":" in v or "'" in v) else v


def _text(seg: list[Any]) -> str:
    """A segment as text with the default separators ('+' ':') and release character '?'."""
    return "+".join(_esc(e) if e.__class__ is str else ":".join(_esc(c) for c in e) for e in seg)


def _val(seg: list[Any], i: int, j: int = 0) -> str | None:
    """Component j of element i (a simple element is component 0), stripped, or None."""
    if i >= len(seg):
        return None
    v = seg[i]
    if v.__class__ is not str:
        if j >= len(v):
            return None
        v = v[j]
    elif j:
        return None
    return v.strip() or None


def _comps(seg: list[Any], i: int) -> list[str]:
    """Element i as a list of components ([] if absent)."""
    if i >= len(seg):
        return []
    v = seg[i]
    if v.__class__ is str:
        return [v] if v else []
    return list(v)


def _join(parts: Sequence[str]) -> str | None:
    text = " ".join(p.strip() for p in parts if p and p.strip())
    return text or None


def _masks(spec: str) -> tuple[int, ...]:
    """Covered components per element: "0|0,2|0-4" -> bitmasks (element 1 first)."""
    out = []
    for part in spec.split("|"):
        mask = 0
        for item in filter(None, part.split(",")):
            lo, _, hi = item.partition("-")
            for j in range(int(lo), int(hi or lo) + 1):
                mask |= 1 << j
        out.append(mask)
    return tuple(out)


def _uncovered(seg: list[Any], masks: tuple[int, ...]) -> bool:
    """True if the segment has data in an element or component the mapping does not use."""
    n = len(masks)
    for i in range(1, len(seg)):
        v = seg[i]
        if not v:
            continue
        m = masks[i - 1] if i <= n else 0
        if v.__class__ is str:
            if not m & 1:
                return True
        else:
            for j, c in enumerate(v):
                if c and not (m >> j) & 1:
                    return True
    return False


# What each mapped segment uses (element 1 first; components by index). Code-list
# qualifiers (1131/3055) next to a mapped code count as used: they only say whose code it is.
_COVER = {
    "BGM": _masks("0-2|0|0|0"),
    "DTM": _masks("0-2"),
    "RFF": _masks("0,1"),
    "NAD": _masks("0|0-2|0-4|0-4|0-3|0|0|0|0"),
    "CTA": _masks("0|0,1"),
    "COM": _masks("0,1"),
    "TAX": _masks("0|0-2|0-2||0-3"),
    "CUX": _masks("0-3"),
    "PAT": _masks("0|0-4|0,2,3"),
    "TDT": _masks("0||0||0-3"),
    "TOD": _masks("0|0|0-4"),
    "LOC": _masks("0|0-3"),
    "ALC": _masks("0|1|0||0-4"),
    "PCD": _masks("0,1"),
    "MOA": _masks("0,1"),
    "RTE": _masks("0,1"),
    "QTY": _masks("0-2"),
    "LIN": _masks("0||0-3"),
    "PIA": _masks("0|0-3|0-3|0-3|0-3|0-3"),
    "IMD": _masks("0|0|1-5"),
    "PRI": _masks("0-5"),
    "CNT": _masks("0,1"),
    "FTX": _masks("0|0||0-4|0"),
    "UNS": _masks("0"),
}
# Most components a composite may have (D96A..D01B); more means an unescaped ':'.
_MAX_COMPONENTS = {
    ("IMD", 3): 6,  # C273 7009:1131:3055:7008:7008:3453
    ("FTX", 4): 5,  # C108 4440 x 5
    ("NAD", 3): 5,  # C058 3124 x 5
    ("NAD", 4): 6,  # C080 3036 x 5, 3045
    ("NAD", 5): 4,  # C059 3042 x 4
    ("CTA", 2): 2,  # C056 3413:3412
    ("COM", 1): 2,  # C076 3148:3155
    ("QTY", 1): 3,  # C186 6063:6060:6411
    ("PRI", 1): 6,  # C509 5125:5118:5375:5387:5284:6411
    ("MOA", 1): 5,  # C516 5025:5004:6345:6343:4405
    ("DTM", 1): 3,  # C507 2005:2380:2379
}
# Triggers of segment groups the mapping does not read: what follows them belongs to them.
_GROUP_OTHERS = frozenset({"PAC", "PCI", "EQD", "SCC", "APR", "RCS", "DGS", "CCI", "STG"})


# ------------------------------------------------------------------------------------------
# Mapping


def map_orders(
    doc: Document, tables: EdifactTables | None = None, trace: dict[str, str] | None = None
) -> Order:
    """Map one EDIFACT ORDERS `Document` (from `gateway.formats.edifact.EdifactParser`).

    With `trace` a dict, it is filled with dotted field path -> where the value came from.
    Raises MappingError (reasons in the module docstring) with the position of the bad
    segment and element when the document cannot become an order.
    """
    if doc.doc_type != "ORDERS":
        raise MappingError(
            f"message {doc.doc_type} is not a purchase order (ORDERS)",
            reason="EDIFACT_NOT_ORDERS",
            position=doc.position,
        )
    return _Build(doc, tables or default_tables(), trace).run()


class _Build(SegmentOrder):
    """The state of one mapping run: where in the message we are and what was collected."""

    def __init__(self, doc: Document, tables: EdifactTables, trace: dict[str, str] | None):
        super().__init__(doc, {"po_number": None, "channel": "edifact"})
        self.body: list[list[Any]] = doc.body
        self.t = tables
        self.tr = trace
        self.where_of: Callable[[int], str] | None = getattr(doc.body, "where", None)
        self.line_of: Callable[[int], int] | None = getattr(doc.body, "line", None)
        self.decimal = getattr(doc.body, "decimal_mark", ",")
        self.source = envelope_source(doc)
        self.line: dict[str, Any] | None = None  # the LIN group being read
        self.lp = ""  # trace path of that line, "lines[3]"
        self.line_k = 0  # index of its LIN
        self.qty_kind: str | None = None  # the QTY qualifier its quantity came from
        self.qty_seg: tuple[list[Any], int] | None = None  # that QTY and its index
        self.price_kind: str | None = None  # the PRI qualifier its unit price came from
        self.description: list[str] = []  # IMD texts of that line
        self.description_src: list[str] = []
        self.area = "header"  # then "line", then "summary" (after UNS+S)
        self.ctx: str | None = None  # the segment group being read (its trigger tag)
        self.obj: dict[str, Any] | None = None  # what that group fills
        self.op = ""  # trace path of `obj`
        self.party: dict[str, Any] | None = None  # the NAD group being read
        self.pp = ""  # trace path of that party
        self.ref_role = ""  # role of the RFF whose group is being read
        self.pending_loc: tuple[list[Any], int] | None = None  # a line LOC awaiting its QTY
        self.saw_bgm = False
        self.lin_count = 0
        self.cnt_at: tuple[list[Any], int] | None = None  # the CNT+2 and its index
        self.k = 0  # index of the segment being mapped (UNH = 0)

    # -- positions, trace, errors ----------------------------------------------------------

    def where(self, k: int | None = None) -> str:
        k = self.k if k is None else k
        if self.where_of is not None:
            return self.where_of(k)
        return f"segment {k + 1}"

    def src(self, label: str, element: str) -> str:
        """``"QTY C186 6060 (segment 14, line 15)"``: segment counted from UNH = 1."""
        if self.line_of is not None:
            return f"{label} {element} (segment {self.k + 1}, line {self.line_of(self.k)})"
        return f"{label} {element} (segment {self.k + 1})"

    def trace(self, path: str, label: str, element: str) -> None:
        """Record where `path` came from (callers check self.tr first)."""
        assert self.tr is not None
        self.tr[path] = self.src(label, element)

    def trace_fields(
        self, prefix: str, obj: Mapping[str, Any], label: str, elements: Mapping[str, str]
    ) -> None:
        """Trace every field of `obj` that is set, each from its element."""
        tr = self.tr
        assert tr is not None
        for name, element in elements.items():
            if obj.get(name) is not None:
                tr[f"{prefix}.{name}"] = self.src(label, element)

    def position(self, seg: list[Any], element: str | None = None) -> str:
        msg = f"message {self.doc.control_number}"
        at = f"{self.where()} of {msg} ({seg[0]})"
        return f"{at}, element {element}" if element else at

    def keep(self, seg: list[Any]) -> None:
        """Keep a segment verbatim in Order.unmapped."""
        if self.tr is not None:
            self.tr[f"unmapped[{len(self.unmapped)}]"] = self.src(seg[0], "segment")
        self.unmapped.append(_text(seg))

    def keep_rest(self, seg: list[Any]) -> None:
        """Keep a partly mapped segment whole in unmapped if it has data the mapping skips."""
        masks = _COVER.get(seg[0])
        if masks is None or _uncovered(seg, masks):
            self.keep(seg)

    def components(self, seg: list[Any], i: int) -> list[str]:
        comps = _comps(seg, i)
        limit = _MAX_COMPONENTS.get((seg[0], i))
        if limit is not None and len(comps) > limit:
            raise MappingError(
                f"{seg[0]} element {i} has {len(comps)} components where the directory "
                f"defines at most {limit}; an unescaped ':' in the text? The sender must write "
                "it as '?:'",
                reason="EDIFACT_COMPONENTS",
                position=self.position(seg, str(i)),
            )
        return comps

    def dec(self, v: str | None, seg: list[Any], element: str) -> Decimal | None:
        """A number as sent (either decimal mark), or None if empty."""
        if v is None:
            return None
        s = v
        if "," in s:
            s = s.replace(",", ".") if "." not in s and s.count(",") == 1 else "x"
        d: Decimal | None = None
        if _NUMBER.fullmatch(s):
            try:
                d = Decimal(s)
            except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
                d = None
        if d is None:
            raise MappingError(
                f"{seg[0]} {element} {v!r} is not a number; expected digits with an optional "
                f"minus sign and decimal mark ({self.decimal!r} declared)",
                reason="EDIFACT_BAD_NUMBER",
                position=self.position(seg, element),
            )
        if not in_range(d):
            raise MappingError(
                f"{seg[0]} {element} {v!r} is out of range for a quantity or amount",
                reason="EDIFACT_BAD_NUMBER",
                position=self.position(seg, element),
            )
        return d

    def int_(self, v: str | None, seg: list[Any], element: str) -> int | None:
        d = self.dec(v, seg, element)
        if d is None:
            return None
        if d != d.to_integral_value():
            raise MappingError(
                f"{seg[0]} {element} {v!r} must be a whole number",
                reason="EDIFACT_BAD_NUMBER",
                position=self.position(seg, element),
            )
        return int(d)

    def date_time(self, value: str, fmt: str, seg: list[Any]) -> tuple[dt.date, str | None] | None:
        """(date, time HHMM[SS] or None) for formats 102/203/204/101/201; None if unknown."""
        length = _DATE_FORMATS.get(fmt)
        if length is None:
            return None
        if len(value) == length and value.isdigit():
            try:
                if fmt in ("101", "201"):
                    yy = int(value[:2])
                    year = (2000 if yy < CENTURY_PIVOT else 1900) + yy
                    date = dt.date(year, int(value[2:4]), int(value[4:6]))
                    return date, (value[6:] or None)
                date = dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
                return date, (value[8:] or None)
            except ValueError:
                pass
        raise MappingError(
            f"DTM 2380 {value!r} is not a date in format {fmt} "
            f"({'CCYYMMDD' if fmt == '102' else 'see the 2379 code list'})",
            reason="EDIFACT_BAD_DATE",
            position=self.position(seg, "2380"),
        )

    # -- groups ----------------------------------------------------------------------------

    def set_ctx(self, ctx: str | None, obj: dict[str, Any] | None = None, path: str = "") -> None:
        if self.pending_loc is not None:
            seg, k = self.pending_loc
            self.pending_loc = None
            here, self.k = self.k, k
            self.keep(seg)  # a LOC without its QTY
            self.k = here
        self.ctx = ctx
        self.obj = obj
        self.op = path
        if ctx is None or not (ctx.startswith("NAD") or ctx == "CTA"):
            self.party = None

    # -- the walk --------------------------------------------------------------------------

    def run(self) -> Order:
        handlers = _HANDLERS
        for k, seg in enumerate(self.body):
            self.k = k
            tag = seg[0]
            handler = handlers.get(tag)
            if handler is not None:
                handler(self, seg)
            elif tag == "UNH" or tag == "UNT":
                continue
            else:
                if tag == "DOC":
                    ctx = self.ctx
                    if ctx is not None and (ctx.startswith("NAD") or ctx == "CTA"):
                        self.ctx = "NAD.DOC"  # SG4 of the party: its CTA may follow
                    elif ctx is not None:
                        self.set_ctx("X")
                elif tag in _GROUP_OTHERS:
                    self.set_ctx("X")
                self.keep(seg)
        return self.finish()

    def close_line(self) -> None:
        line = self.line
        if line is None:
            return
        if self.description:
            line["description"] = " ".join(self.description)
            if self.tr is not None:
                self.tr[f"{self.lp}.description"] = "; ".join(self.description_src)
            self.description = []
            self.description_src = []
        if "quantity" not in line:
            raise MappingError(
                f"line {line.get('line_number') or len(self.lines)} has no ordered quantity "
                "(QTY+21 or QTY+1)",
                reason="EDIFACT_MISSING_QUANTITY",
                position=f"{self.where(self.line_k)} of message {self.doc.control_number} (LIN)",
            )
        self.line = None

    def finish(self) -> Order:
        self.set_ctx(None)
        self.close_line()
        o = self.order
        if not self.saw_bgm or not o["po_number"]:
            raise MappingError(
                "the purchase order has no PO number: BGM 1004 is "
                + ("empty" if self.saw_bgm else "missing (no BGM segment)"),
                reason="MISSING_PO_NUMBER",
                position=self.doc.position,
            )
        line_count = self.totals.get("line_count")
        if line_count is not None and line_count != self.lin_count:
            assert self.cnt_at is not None
            seg, self.k = self.cnt_at
            raise MappingError(
                f"CNT+2 says {line_count} line items but the message has {self.lin_count} LIN "
                "segments; a line may have been lost, ask the sender to resend the order",
                reason="EDIFACT_CNT_COUNT",
                position=self.position(seg, "C270 6066"),
            )
        o["source"] = self.source
        if self.tr is not None:
            trace_source(self.tr, self.source, _SOURCE_TRACE)
        return self.assemble()


_SOURCE_TRACE = {
    "sender_id": "UNB S002 0004",
    "sender_qualifier": "UNB S002 0007",
    "receiver_id": "UNB S003 0010",
    "receiver_qualifier": "UNB S003 0007",
    "interchange_control_number": "UNB 0020",
    "group_control_number": "UNG 0048",
    "transaction_control_number": "UNH 0062",
    "version": "UNH S009 0052:0054:0051:0057",
    "test_indicator": "UNB 0035",
}


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


_Handler = Callable[[_Build, list[Any]], None]

_HANDLERS: dict[str, _Handler] = {
    "BGM": _bgm,
    "DTM": _dtm,
    "RFF": _rff,
    "FTX": _ftx,
    "NAD": _nad,
    "CTA": _cta,
    "COM": _com,
    "TAX": _tax,
    "CUX": _cux,
    "PAT": _pat,
    "TDT": _tdt,
    "TOD": _tod,
    "LOC": _loc,
    "ALC": _alc,
    "PCD": _pcd,
    "MOA": _moa,
    "RTE": _rte,
    "UNS": _uns,
    "CNT": _cnt,
    "LIN": _lin,
    "PIA": _pia,
    "IMD": _imd,
    "QTY": _qty,
    "PRI": _pri,
}

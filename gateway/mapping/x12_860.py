"""The standard X12 860 (purchase order change request, buyer initiated) mapping.

One `Document` in, one canonical `Order` out, with ``lines_are_changes=True``: an 860 lists
only the lines that change, each with its change code, and the gateway merges them onto the
order's current version (`gateway.versions.merge_changes`: lines matched by line number,
"delete" removes, "add" appends, otherwise the non-empty values replace the line's).

The 860 reads like the 850 (`gateway.mapping.x12_850`) and shares its code tables, helpers
and segment handlers; only BCH and the POC loop are its own. Its own code tables (BCH01
purposes, POC02 change codes) are data in ``mappings/x12/860.yaml`` (`load_x12_860_tables`).

What goes where
    BCH             BCH01 purpose (table; an 860 is always a change, cancel or replace: an
                    unlisted code is a change, kept in extensions["purpose_code"]),
                    BCH02 order_type, BCH03 po_number (the PO being changed), BCH04
                    release_number, BCH05 extensions["change_sequence"], BCH06 order_date,
                    BCH07 extensions["request_reference"], BCH08 contract_number, BCH09
                    extensions["seller_order_number"], BCH10 extensions["acknowledgment_date"],
                    BCH11 extensions["change_request_date"] (dates as ISO 8601 text);
                    BCH12..BCH16 with data: the BCH is also kept whole in unmapped
    CUR REF N9 PER DTM ITD TD5 TD1 TD3 TD4 FOB SAC AMT TXI MSG NTE PID, the N1 loop
                    as in the 850
    POC loop        one OrderLine: POC01 line_number, POC02 change_code and change (table:
                    add, delete, change), POC03 quantity (the new total; may be empty only
                    on a delete, which then has quantity 0), POC04 quantity left to receive
                    -> extensions["quantity_left_to_receive"][line number, else the POC's
                    position from 1] (the model's lines have no extensions), POC05 uom, POC06
                    unit_price, POC07 price_basis, product id pairs from POC08 on ->
                    item_ids and sku/buyer_part_number/gtin (the 850's product id table);
                    PID PO4 SDQ CTP LIN CUR REF DTM SAC TXI MSG N9 and the N1 loop inside
                    it as inside the 850's PO1 loop
    CTT             totals.line_count / quantity_total; CTT01 must equal the number of POCs
    anything else   Order.unmapped, as the segment text (a PO1 or BEG among them)

Field provenance: with ``trace={}``, fields get an entry, dotted path -> source, e.g.
``trace["po_number"] == "BCH03 (segment 2, line 4)"``, ``trace["lines[0].quantity"] ==
"POC03 (segment 9, line 11)"``; what the shared 850 handlers fill is traced to the segment,
e.g. ``trace["references[0]"] == "REF (segment 3, line 5)"``, ``trace["buyer"] == "N1
(segment 6, line 8)"``. Segment numbers count from ST = 1 (as SE does); lines are lines of
the file. With ``trace=None`` nothing is recorded.

Reason codes (MappingError.reason)
    MISSING_PO_NUMBER          no BCH, or BCH03 empty
    X12_CTT_COUNT              CTT01 differs from the number of POC segments
    X12_UNKNOWN_CHANGE_CODE    POC02 empty or not in the change code table
    X12_MISSING_QUANTITY       a POC other than a delete without POC03
    X12_MISSING_LINE_NUMBER    a POC other than an add without POC01 (nothing to match)
    X12_BAD_NUMBER             a quantity, price or amount that is not a number
    X12_BAD_DATE               a date that is not CCYYMMDD/YYMMDD
    X12_NOT_860                the document is not an 860
    INVALID_ORDER              the mapped values do not make a valid Order (a mapping bug)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.errors import MappingError
from gateway.formats.base import Document
from gateway.mapping.builder import change_spec, load_change_tables
from gateway.mapping.files import mappings_root

# The 850 mapping's tables, helpers and handlers, most of them private, shared on purpose:
# the 860 reads the same segments the same way, and one copy of each rule is easier to keep
# right than two.
from gateway.mapping.x12_850.build import _Build
from gateway.mapping.x12_850.handlers import _HEADER_AREA as _HEADER_AREA_850
from gateway.mapping.x12_850.handlers import _LINE_AREA as _LINE_AREA_850
from gateway.mapping.x12_850.handlers import _PARTY
from gateway.mapping.x12_850.header import _note
from gateway.mapping.x12_850.loops import _close_line, _item_ids
from gateway.mapping.x12_850.loops import _ctt as _ctt_850
from gateway.mapping.x12_850.segments import _text, _val
from gateway.mapping.x12_850.tables import _TABLES as _TABLES_850
from gateway.mapping.x12_850.tables import DEFAULT_TABLES_PATH as X12_850_TABLES_PATH
from gateway.mapping.x12_850.tables import X12Tables, load_x12_tables
from gateway.model import Order, Purpose

__all__ = [
    "DEFAULT_860_TABLES_PATH",
    "X12ChangeTables",
    "default_860_tables",
    "load_x12_860_tables",
    "map_860",
]

DEFAULT_860_TABLES_PATH = mappings_root() / "x12" / "860.yaml"

# ------------------------------------------------------------------------------------------
# Code tables

# The 860's own tables: name -> (what it is for, allowed values).
_OWN: dict[str, tuple[str, frozenset[str]]] = {
    "purpose": (
        "BCH01 purpose codes",
        frozenset({Purpose.CHANGE.value, Purpose.CANCEL.value, Purpose.REPLACE.value}),
    ),
    "change_codes": ("POC02 change codes", frozenset({"add", "delete", "change"})),
}
# Tables shared with the 850 ("purpose" there is BEG01, here BCH01: the 860's own wins), and
# what an 860 file may hold: its own tables, and changes to the shared ones.
_SHARED, _TABLES = change_spec(_TABLES_850, _OWN)


@dataclass(frozen=True, slots=True)
class X12ChangeTables:
    """The code tables of an 860 mapping, checked and read-only. See mappings/x12/860.yaml."""

    purpose: Mapping[str, Purpose]
    change_codes: Mapping[str, str]
    x12: X12Tables  # shared with the 850: product ids, party/date/reference roles, ...
    sources: tuple[str, ...] = ()  # the files these tables were read from, base first


def load_x12_860_tables(
    path: Path | str = DEFAULT_860_TABLES_PATH,
    overrides: Sequence[Path | str] = (),
    *,
    shared: Path | str = X12_850_TABLES_PATH,
) -> X12ChangeTables:
    """Read and check the 860 tables at `path` and the 850 tables at `shared`, then apply
    each override file in order.

    An override file holds only the entries it changes, of the 860's own tables (purpose,
    change_codes) or of the tables shared with the 850 (product_ids, date_roles, ...); an
    entry with value ``null`` removes the standard one. Raises ConfigError listing every
    problem, each naming its file, table and key.
    """
    return load_change_tables(
        X12ChangeTables,
        _TABLES,
        _SHARED,
        path,
        overrides,
        base=lambda: load_x12_tables(shared),
        base_field="x12",
        example="04",
    )


@functools.cache
def default_860_tables() -> X12ChangeTables:
    """The standard tables from mappings/x12/860.yaml and 850.yaml, loaded once per process."""
    return load_x12_860_tables()


# ------------------------------------------------------------------------------------------
# Mapping


def map_860(
    doc: Document, tables: X12ChangeTables | None = None, trace: dict[str, str] | None = None
) -> Order:
    """Map one X12 860 `Document` (from `gateway.formats.x12.X12Parser`) to an `Order` whose
    lines are the changes (``lines_are_changes=True``).

    With `trace` a dict, it is filled with dotted field path -> where the value came from.
    Raises MappingError (reasons in the module docstring) with the position of the bad
    segment and element when the document cannot become an order change.
    """
    if doc.doc_type != "860":
        raise MappingError(
            f"transaction set {doc.doc_type} is not a purchase order change (860)",
            reason="X12_NOT_860",
            position=doc.position,
        )
    return _Build860(doc, tables or default_860_tables(), trace).run()


# Elements of the fields the shared 850 handlers set, for a finer trace than the segment.
_ELEMENTS: dict[tuple[str, str], str] = {
    ("CUR", "currency"): "02",
    ("DTM", "requested_delivery_date"): "02",
    ("DTM", "order_date"): "02",
    ("CTT", "line_count"): "01",
    ("CTT", "quantity_total"): "02",
    ("AMT", "total"): "02",
    ("N4", "city"): "01",
    ("N4", "region"): "02",
    ("N4", "postal_code"): "03",
    ("N4", "country"): "04",
    ("TD5", "carrier_code"): "03",
    ("TD5", "routing"): "05",
    ("TD5", "service_level"): "12",
    ("FOB", "fob_payment_method"): "01",
    ("FOB", "incoterms"): "05",
}


def _shape(d: Mapping[str, Any]) -> dict[str, int]:
    """One level of a dict: the length of each list, 1 for any other value that is set."""
    return {k: len(v) if isinstance(v, list) else int(v is not None) for k, v in d.items()}


class _Build860(_Build):
    """The 850's mapping state, walked with the 860's handlers (and a trace, if asked)."""

    def __init__(self, doc: Document, tables: X12ChangeTables, trace: dict[str, str] | None):
        super().__init__(doc, tables.x12)
        self.t860 = tables
        self.tr = trace
        self.party_path = ""  # trace path of the N1 loop being read
        self.contact_sources: list[str] = []  # header PERs, resolved in finish()
        self.ctt_where: str | None = None  # position of CTT01, for X12_CTT_COUNT

    # -- trace -----------------------------------------------------------------------------

    def src(self, label: str) -> str:
        """``"POC03 (segment 9, line 11)"``: segment counted from ST = 1."""
        lines = self.lines_of
        if lines is not None and self.k < len(lines):
            return f"{label} (segment {self.k + 1}, line {lines[self.k]})"
        return f"{label} (segment {self.k + 1})"

    def trace(self, path: str, label: str) -> None:
        if self.tr is not None:
            self.tr[path] = self.src(label)

    def line_path(self) -> str:
        return f"lines[{len(self.lines) - 1}]"

    def watched(self) -> list[tuple[str, Mapping[str, Any]]]:
        """(trace path, dict) of everything a shared handler may add to."""
        out: list[tuple[str, Mapping[str, Any]]] = [
            ("", self.order),
            (
                "",
                {
                    "references": self.references,
                    "dates": self.dates,
                    "notes": self.notes,
                    "allowances_charges": self.allowances,
                    "taxes": self.taxes,
                    "payment_terms": self.terms,
                    "unmapped": self.unmapped,
                },
            ),
            ("", self.parties),
            ("other_parties", self.others),
            ("totals", self.totals),
            ("totals", {"amounts": self.amounts}),
            ("shipping", self.shipping),
            ("extensions", {"x12_shipping": self.shipping_raw}),
        ]
        if self.line is not None:
            out.append((self.line_path(), self.line))
        if self.party is not None:
            out.append((self.party_path, self.party))
        return out

    def step_traced(self, seg: list[Any]) -> None:
        """Map one segment, then trace what it added (a path already traced is kept)."""
        tr = self.tr
        assert tr is not None
        line, party = self.line, self.party
        before = [(p, d, _shape(d)) for p, d in self.watched()]
        had_description = bool(self.description)
        contacts = len(self.header_contacts)
        self.step(seg)
        sid = seg[0]
        src = self.src(sid)
        for prefix, d, shape in before:
            if (line is not None and d is line and self.line is not line) or (
                party is not None and d is party and self.party is not party
            ):
                continue  # the loop it belonged to has ended
            for key, value in d.items():
                path = f"{prefix}.{key}" if prefix else key
                old = shape.get(key, 0)
                if isinstance(value, list):
                    for i in range(old, len(value)):
                        tr.setdefault(f"{path}[{i}]", src)
                elif value is not None and not old:
                    element = _ELEMENTS.get((sid, key))
                    tr.setdefault(path, self.src(sid + element) if element else src)
                    if d is self.parties or d is self.others:
                        self.party_path = path  # an N1 loop starts
        if self.line is not None and self.line is line and self.description and not had_description:
            tr.setdefault(f"{self.line_path()}.description", src)
        if len(self.header_contacts) > contacts:
            self.contact_sources.append(src)

    # -- the walk --------------------------------------------------------------------------

    def step(self, seg: list[Any]) -> None:
        """Map one segment: the 850's walk (x12_850._Build.run) with the 860's handlers."""
        sid = seg[0]
        if self.party is not None:
            handler = _PARTY.get(sid)
            if handler is not None:
                handler(self, seg)
                return
            self.party = None
        if self.n9_notes is not None:
            if sid == "MSG" or sid == "NTE":
                _note(self, seg, self.n9_notes)
                return
            if sid == "DTM":  # the date of the N9 reference, not of the order
                self.unmapped.append(_text(seg))
                return
            self.n9_notes = None
        handler_860 = (_LINE_AREA if self.line is not None else _HEADER_AREA).get(sid)
        if handler_860 is not None:
            handler_860(self, seg)
        elif sid != "ST" and sid != "SE":
            self.unmapped.append(_text(seg))

    def run(self) -> Order:
        step = self.step if self.tr is None else self.step_traced
        for k, seg in enumerate(self.doc.body):
            self.k = k
            step(seg)
        return self.finish()

    def finish(self) -> Order:
        _close_line(self)
        o = self.order
        if not self.saw_beg or not o["po_number"]:
            raise MappingError(
                "the purchase order change has no PO number: BCH03 is "
                + ("empty" if self.saw_beg else "missing (no BCH segment)"),
                reason="MISSING_PO_NUMBER",
                position=self.doc.position,
            )
        line_count = self.totals.get("line_count")
        if line_count is not None and line_count != self.po1_count:
            raise MappingError(
                f"CTT01 says {line_count} line items but the change has {self.po1_count} POC "
                "segments; a line may have been lost, ask the sender to resend the change",
                reason="X12_CTT_COUNT",
                position=self.ctt_where,
            )
        if self.tr is not None and self.contact_sources:
            # What the 850's finish() does with header PERs: the first to a buyer without a
            # contact of its own, the others to unmapped (after everything else there).
            buyer = self.parties.get("buyer")
            taken = buyer is None or "contact" in buyer
            kept = len(self.unmapped)
            for src in self.contact_sources:
                if not taken:
                    self.tr["buyer.contact"] = src
                    taken = True
                else:
                    self.tr[f"unmapped[{kept}]"] = src
                    kept += 1
        o["lines_are_changes"] = True
        return super().finish()


# ------------------------------------------------------------------------------------------
# Segment handlers of the 860's own: f(build, segment), like the 850's.


def _bch(b: _Build860, seg: list[Any]) -> None:
    if b.saw_beg:  # the 850's "beginning segment seen": a second BCH is kept as sent
        b.unmapped.append(_text(seg))
        return
    b.saw_beg = True
    o, ext, tr = b.order, b.extensions, b.tr
    code = _val(seg, 1)
    purpose = b.t860.purpose.get(code or "")
    if purpose is None:
        purpose = Purpose.CHANGE  # an 860 changes an order whatever its BCH01 says
        if code:
            ext["purpose_code"] = code
            b.trace("extensions.purpose_code", "BCH01")
    o["purpose"] = purpose
    o["order_type"] = _val(seg, 2)
    o["po_number"] = _val(seg, 3)
    o["release_number"] = _val(seg, 4)
    o["order_date"] = b.date(seg, 6)
    o["contract_number"] = _val(seg, 8)
    texts = {"change_sequence": 5, "request_reference": 7, "seller_order_number": 9}
    for key, i in texts.items():
        value = _val(seg, i)
        if value is not None:
            ext[key] = value
            b.trace(f"extensions.{key}", f"BCH{i:02d}")
    for key, i in (("acknowledgment_date", 10), ("change_request_date", 11)):
        date = b.date(seg, i)
        if date is not None:
            ext[key] = date.isoformat()
            b.trace(f"extensions.{key}", f"BCH{i:02d}")
    if tr is not None:
        if code:
            tr["purpose"] = b.src("BCH01")
        fields = {
            "order_type": 2,
            "po_number": 3,
            "release_number": 4,
            "order_date": 6,
            "contract_number": 8,
        }
        for key, i in fields.items():
            if o[key] is not None:
                tr[key] = b.src(f"BCH{i:02d}")
    if any(_val(seg, i) for i in range(12, len(seg))):
        # contract type, security level, acknowledgment type, transaction type, category
        b.trace(f"unmapped[{len(b.unmapped)}]", "BCH")
        b.unmapped.append(_text(seg))


def _poc(b: _Build860, seg: list[Any]) -> None:
    if b.summary:
        b.unmapped.append(_text(seg))
        return
    if b.line is not None:
        _close_line(b)
    b.po1_count += 1  # the 850's line counter: here it counts POC segments, as CTT01 does
    line_number = _val(seg, 1)
    code = _val(seg, 2)
    label = f"line {line_number or b.po1_count}"
    change = b.t860.change_codes.get(code or "")
    if change is None:
        known = ", ".join(sorted(b.t860.change_codes))
        raise MappingError(
            f"POC {label}: "
            + (f"change code {code!r} is not known" if code else "POC02 (the change code) is empty")
            + f"; known codes: {known} (a partner's mapping file can add one)",
            reason="X12_UNKNOWN_CHANGE_CODE",
            position=b.where(seg, 2),
        )
    quantity = b.dec(seg, 3)
    if quantity is None:
        if change != "delete":
            raise MappingError(
                f"POC {label} ({code}) has no quantity (POC03); only a deleted line may leave "
                "it empty",
                reason="X12_MISSING_QUANTITY",
                position=b.where(seg, 3),
            )
        quantity = Decimal(0)
    if line_number is None and change != "add":
        raise MappingError(
            f"POC {label} ({code}) has no line number (POC01), so it cannot be matched to a "
            "line of the order",
            reason="X12_MISSING_LINE_NUMBER",
            position=b.where(seg, 1),
        )
    left = b.dec(seg, 4)
    line: dict[str, Any] = {
        "line_number": line_number,
        "quantity": quantity,
        "uom": _val(seg, 5),
        "unit_price": b.dec(seg, 6),
        "price_basis": _val(seg, 7),
        "change_code": code,
        "change": change,
    }
    if len(seg) > 9:
        _item_ids(b, seg, line, 8)
    b.line = line
    b.lines.append(line)
    key = line_number or str(b.po1_count)
    if left is not None:
        b.extensions.setdefault("quantity_left_to_receive", {})[key] = format(left, "f")
    if b.tr is not None:
        _trace_poc(b, seg, line, key, left is not None)


def _trace_poc(b: _Build860, seg: list[Any], line: dict[str, Any], key: str, left: bool) -> None:
    lp = b.line_path()
    b.trace(lp, "POC")
    elements = {
        "line_number": 1,
        "change_code": 2,
        "change": 2,
        "quantity": 3 if _val(seg, 3) is not None else 2,  # a delete's 0 comes from POC02
        "uom": 5,
        "unit_price": 6,
        "price_basis": 7,
    }
    for field, i in elements.items():
        if line.get(field) is not None:
            b.trace(f"{lp}.{field}", f"POC{i:02d}")
    if left:
        b.trace(f"extensions.quantity_left_to_receive.{key}", "POC04")
    n = 0
    for i in range(8, len(seg) - 1, 2):  # as _item_ids reads them: non-empty pairs
        qualifier, value = _val(seg, i), _val(seg, i + 1)
        if qualifier and value:
            b.trace(f"{lp}.item_ids[{n}]", f"POC{i + 1:02d}")
            n += 1
            filled = b.t.product_ids.get(qualifier)
            if filled is not None and b.tr is not None:
                b.tr.setdefault(f"{lp}.{filled}", b.src(f"POC{i + 1:02d}"))


def _ctt(b: _Build860, seg: list[Any]) -> None:
    if "line_count" not in b.totals:  # the first CTT counts; the 850's keeps a second as sent
        b.ctt_where = b.where(seg, 1)
    _ctt_850(b, seg)


_Handler = Callable[[_Build860, list[Any]], None]

# The 850's handlers with BCH for BEG and POC for PO1 (a BEG or PO1 in an 860 is unmapped).
_HEADER_AREA: dict[str, _Handler] = {
    **{k: v for k, v in _HEADER_AREA_850.items() if k not in ("BEG", "PO1")},
    "BCH": _bch,
    "POC": _poc,
    "CTT": _ctt,
}
_LINE_AREA: dict[str, _Handler] = {
    **{k: v for k, v in _LINE_AREA_850.items() if k != "PO1"},
    "POC": _poc,
    "CTT": _ctt,
}

"""The state of one 850 mapping run (`_Build`): the walk over the segments, which handler
reads each (`handlers`), values and positions for errors, and the end of the run: the
checks (PO number, CTT count), header contacts resolved, provenance of lists, the Order.
See `gateway.mapping.x12_850`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.errors import MappingError
from gateway.formats.base import Document
from gateway.mapping.builder import (
    CENTURY_PIVOT,
    SegmentOrder,
    envelope_source,
    in_range,
    trace_source,
)
from gateway.mapping.x12_850.handlers import _HEADER_AREA, _LINE_AREA, _PARTY
from gateway.mapping.x12_850.header import _note, _trace_contact
from gateway.mapping.x12_850.loops import _close_line
from gateway.mapping.x12_850.segments import _SOURCE_TRACE, _text, _val
from gateway.mapping.x12_850.tables import X12Tables
from gateway.model import Order


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

"""The state of one ORDERS mapping run (`_Build`): the walk, the segment group being read,
positions and provenance, values checked with the reason codes of the package docstring,
and the end of the run (PO number, CNT count, the Order). See
`gateway.mapping.edifact_orders`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from gateway.errors import MappingError
from gateway.formats.base import Document
from gateway.mapping.builder import (
    CENTURY_PIVOT,
    SegmentOrder,
    envelope_source,
    in_range,
    trace_source,
)
from gateway.mapping.edifact_orders.handlers import _HANDLERS
from gateway.mapping.edifact_orders.segments import (
    _COVER,
    _DATE_FORMATS,
    _GROUP_OTHERS,
    _MAX_COMPONENTS,
    _NUMBER,
    _SOURCE_TRACE,
    _comps,
    _text,
    _uncovered,
)
from gateway.mapping.edifact_orders.tables import EdifactTables
from gateway.model import Order


class _Build(SegmentOrder):
    """The state of one mapping run: where in the message we are and what was collected."""

    # Segment tag -> handler; ORDCHG's subclass walks the same way with its own.
    handlers: ClassVar[Mapping[str, Callable[[Any, list[Any]], None]]] = _HANDLERS

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
        handlers = self.handlers
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

"""The standard EDIFACT ORDCHG (purchase order change request) mapping.

One `Document` in, one canonical `Order` out, with ``lines_are_changes=True``: an ORDCHG
lists only the lines that change, each with its action code (LIN 1229), and the gateway
merges them onto the order's current version (`gateway.versions.merge_changes`: lines
matched by line number, "delete" removes, "add" appends, otherwise the non-empty values
replace the line's).

For ORDCHG D96A, D96B, D01B and their EANCOM subsets. The message has the segment structure
of an ORDERS, and is read by the ORDERS mapping's walk, helpers and segment handlers
(`gateway.mapping.edifact_orders`, whose docstring says what goes where); only BGM, LIN and
the header RFF+ON are read differently. Its own code tables (BGM 1225 purposes, LIN 1229
action codes) and the ORDCHG changes to the shared ones are data in
``mappings/edifact/ordchg.yaml`` (`load_ordchg_tables`); the rest comes from
``mappings/edifact/orders.yaml``.

What goes where (different from ORDERS)
    BGM             1225 purpose (table; an ORDCHG is always a change, cancel or replace: an
                    unlisted or missing code is a change, an unlisted one kept in
                    extensions["purpose_code"]); 4343 extensions["response_type"]; C002
                    1001 (230 = order change request) extensions["document_name_code"], not
                    order_type: it names the message, not the kind of order, and would
                    overwrite the order's type when merged; 1004 see po_number
    po_number       the order being changed: the first header RFF+ON (SG1, before the
                    parties: an RFF after a NAD is the party's) with a value, else BGM 1004. With an RFF+ON, BGM 1004 is the change request's own
                    number (EANCOM) and goes to references as qualifier "BGM", role
                    "order_change" (after the RFFs; not added when it equals the RFF+ON).
                    The RFF+ON itself is in references (role order_number) as in ORDERS
    DTM+137         dates, role "change_request" (the date of the change message; a table
                    entry in ordchg.yaml), so it does not become order_date; DTM+4 (order
                    date) still sets order_date
    LIN             one OrderLine as in ORDERS, plus 1229 -> change_code (as sent) and change
                    (table: 1 add, 2 delete, 3 change; any other code, 4 no action, 5
                    accepted without amendment, ..., and no 1229 at all -> "change", the
                    code kept in change_code). 1082 line_number is required unless the line
                    is an add (nothing to match it to); QTY+21 (or +1) is required unless
                    it is a delete, which then has quantity 0
    lines_are_changes   True, except for a cancel (purpose cancel) with no LIN at all: a
                    header-only cancellation, lines empty, which is stored as it is (the
                    validation lets a cancel have no lines) rather than merged
    everything else as in ORDERS (parties, dates, references, prices, item ids, totals, CNT,
                    unmapped, provenance)

Field provenance: with ``trace={}``, as in ORDERS, e.g. ``trace["po_number"] == "RFF C506
1154 (segment 5, line 7)"`` (or ``"BGM 1004 (...)"``), ``trace["lines[1].change"] == "LIN
1229 (segment 13, line 15)"``; a delete's quantity 0 is traced to its LIN 1229, the
"order_change" reference to BGM 1004 and ``lines_are_changes`` to ``"UNH S009 0065
(segment 1, line 3)"`` (the message type).

Reason codes (MappingError.reason)
    MISSING_PO_NUMBER             no header RFF+ON, and no BGM or BGM 1004 empty
    EDIFACT_MISSING_SEGMENT       an RFF+ON but no BGM: whether the message changes, cancels
                                  or replaces the order is unknown
    EDIFACT_NOT_ORDCHG            the message is not an ORDCHG
    EDIFACT_MISSING_LINE_NUMBER   a LIN other than an add (1229 1) without 1082
    EDIFACT_MISSING_QUANTITY      a LIN other than a delete (1229 2) without QTY+21 or QTY+1
    EDIFACT_CNT_COUNT             CNT+2 differs from the number of LIN segments
    EDIFACT_BAD_NUMBER, EDIFACT_BAD_DATE, EDIFACT_COMPONENTS, INVALID_ORDER
                                  as in ORDERS
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

# The ORDERS mapping's tables, helpers, walk state and segment handlers, most of them
# private, shared on purpose: an ORDCHG has the segments of an ORDERS and reads them the same
# way, and one copy of each rule is easier to keep right than two.
from gateway.mapping.edifact_orders.build import _Build
from gateway.mapping.edifact_orders.handlers import _HANDLERS
from gateway.mapping.edifact_orders.header import _rff as _rff_orders
from gateway.mapping.edifact_orders.lines import _lin as _lin_orders
from gateway.mapping.edifact_orders.segments import _text, _val
from gateway.mapping.edifact_orders.tables import _TABLES as _TABLES_ORDERS
from gateway.mapping.edifact_orders.tables import DEFAULT_TABLES_PATH as ORDERS_TABLES_PATH
from gateway.mapping.edifact_orders.tables import EdifactTables, load_edifact_tables
from gateway.mapping.files import mappings_root
from gateway.model import Order, Purpose

__all__ = [
    "DEFAULT_ORDCHG_TABLES_PATH",
    "EdifactChangeTables",
    "default_ordchg_tables",
    "load_ordchg_tables",
    "map_ordchg",
]

DEFAULT_ORDCHG_TABLES_PATH = (
    mappings_root() / "edifact" / "ordchg.yaml"
)

# ------------------------------------------------------------------------------------------
# Code tables

# ORDCHG's own tables: name -> (what it is for, allowed values).
_OWN: dict[str, tuple[str, frozenset[str]]] = {
    "purpose": (
        "BGM 1225 message function codes",
        frozenset({Purpose.CHANGE.value, Purpose.CANCEL.value, Purpose.REPLACE.value}),
    ),
    "change_codes": (
        "LIN 1229 action request/notification codes",
        frozenset({"add", "delete", "change"}),
    ),
}
# Tables shared with ORDERS ("purpose" there is ORDERS' BGM 1225: ORDCHG's own wins), and
# what an ORDCHG file may hold: its own tables, and changes to the shared ones.
_SHARED, _TABLES = change_spec(_TABLES_ORDERS, _OWN)


@dataclass(frozen=True, slots=True)
class EdifactChangeTables:
    """The code tables of an ORDCHG mapping, checked and read-only. See
    mappings/edifact/ordchg.yaml."""

    purpose: Mapping[str, Purpose]
    change_codes: Mapping[str, str]
    edifact: EdifactTables  # shared with ORDERS: product ids, party/date/reference roles, ...
    sources: tuple[str, ...] = ()  # the files these tables were read from, base first


def load_ordchg_tables(
    path: Path | str = DEFAULT_ORDCHG_TABLES_PATH,
    overrides: Sequence[Path | str] = (),
    *,
    shared: Path | str = ORDERS_TABLES_PATH,
) -> EdifactChangeTables:
    """Read and check the ORDCHG tables at `path` and the ORDERS tables at `shared`, then
    apply each override file in order.

    A file holds ORDCHG's own tables (purpose, change_codes) and changes to the tables
    shared with ORDERS (product_ids, date_roles, ...); an override file holds only the
    entries it changes, and an entry with value ``null`` there removes the standard one.
    Raises ConfigError listing every problem, each naming its file, table and key.
    """
    return load_change_tables(
        EdifactChangeTables,
        _TABLES,
        _SHARED,
        path,
        overrides,
        base=lambda: load_edifact_tables(shared),
        base_field="edifact",
        example="9",
    )


@functools.cache
def default_ordchg_tables() -> EdifactChangeTables:
    """The standard tables from mappings/edifact/ordchg.yaml and orders.yaml, loaded once
    per process."""
    return load_ordchg_tables()


# ------------------------------------------------------------------------------------------
# Mapping


def map_ordchg(
    doc: Document, tables: EdifactChangeTables | None = None, trace: dict[str, str] | None = None
) -> Order:
    """Map one EDIFACT ORDCHG `Document` (from `gateway.formats.edifact.EdifactParser`) to an
    `Order` whose lines are the changes (``lines_are_changes=True``; see the module
    docstring for a header-only cancel).

    With `trace` a dict, it is filled with dotted field path -> where the value came from.
    Raises MappingError (reasons in the module docstring) with the position of the bad
    segment and element when the document cannot become an order change.
    """
    if doc.doc_type != "ORDCHG":
        raise MappingError(
            f"message {doc.doc_type} is not a purchase order change request (ORDCHG)",
            reason="EDIFACT_NOT_ORDCHG",
            position=doc.position,
        )
    return _BuildChange(doc, tables or default_ordchg_tables(), trace).run()


class _BuildChange(_Build):
    """The ORDERS mapping state, walked with ORDCHG's handlers."""

    def __init__(self, doc: Document, tables: EdifactChangeTables, trace: dict[str, str] | None):
        super().__init__(doc, tables.edifact, trace)
        self.tc = tables
        self.order["purpose"] = Purpose.CHANGE  # what BGM 1225 says replaces it
        self.own_number: str | None = None  # BGM 1004
        self.own_src = ""  # its trace source
        self.on: tuple[str, str] | None = None  # the first header RFF+ON: value, trace source
        self.change_src = ""  # trace source of the current line's LIN 1229

    # -- the walk (edifact_orders._Build.run, with ORDCHG's handlers) ------------------------

    def close_line(self) -> None:
        line = self.line
        if line is not None and "quantity" not in line:
            if line.get("change") != "delete":
                code = line.get("change_code")
                raise MappingError(
                    f"line {line.get('line_number') or len(self.lines)}"
                    + (f" (LIN 1229 {code})" if code else "")
                    + " has no quantity (QTY+21 or QTY+1); only a deleted line (1229 2) may "
                    "leave it out",
                    reason="EDIFACT_MISSING_QUANTITY",
                    position=f"{self.where(self.line_k)} of message {self.doc.control_number} (LIN)",
                )
            line["quantity"] = Decimal(0)
            if self.tr is not None:
                self.tr[f"{self.lp}.quantity"] = self.change_src
        super().close_line()

    def finish(self) -> Order:
        self.set_ctx(None)
        self.close_line()
        o, tr, own = self.order, self.tr, self.own_number
        if self.on is not None:
            o["po_number"], src = self.on
            if tr is not None:
                tr["po_number"] = src
            if own and own != o["po_number"]:
                path = f"references[{len(self.references)}]"
                self.references.append({"qualifier": "BGM", "value": own, "role": "order_change"})
                if tr is not None:
                    for name in ("qualifier", "value", "role"):
                        tr[f"{path}.{name}"] = self.own_src
        else:
            o["po_number"] = own
            if tr is not None and own:
                tr["po_number"] = self.own_src
        if not o["po_number"]:
            raise MappingError(
                "the order change does not name the order it changes: there is no RFF+ON and "
                "BGM 1004 is " + ("empty" if self.saw_bgm else "missing (no BGM segment)"),
                reason="MISSING_PO_NUMBER",
                position=self.doc.position,
            )
        if not self.saw_bgm:
            raise MappingError(
                "the order change has no BGM segment, so what it asks for (BGM 1225: change, "
                "cancel or replace) is unknown",
                reason="EDIFACT_MISSING_SEGMENT",
                position=self.doc.position,
            )
        header_only_cancel = self.lin_count == 0 and o["purpose"] is Purpose.CANCEL
        o["lines_are_changes"] = not header_only_cancel
        if tr is not None and not header_only_cancel:
            here, self.k = self.k, 0
            tr["lines_are_changes"] = self.src("UNH", "S009 0065")  # the message type
            self.k = here
        return super().finish()


# ------------------------------------------------------------------------------------------
# Segment handlers of ORDCHG's own: f(build, segment), like the ORDERS ones.


def _bgm(b: _BuildChange, seg: list[Any]) -> None:
    if b.saw_bgm or b.area != "header":
        b.keep(seg)
        return
    b.saw_bgm = True
    ext, tr = b.extensions, b.tr
    name = _val(seg, 1)
    code = _val(seg, 3)
    purpose = b.tc.purpose.get(code or "")
    if purpose is None:
        purpose = Purpose.CHANGE  # an ORDCHG changes an order whatever its 1225 says
        if code:
            ext["purpose_code"] = code
    b.order["purpose"] = purpose
    b.own_number = _val(seg, 2)
    response = _val(seg, 4)
    if name:
        ext["document_name_code"] = name
    if response:
        ext["response_type"] = response
    if tr is not None:
        b.own_src = b.src("BGM", "1004")
        if name:
            b.trace("extensions.document_name_code", "BGM", "C002 1001")
        if code:
            b.trace("purpose", "BGM", "1225")
            if "purpose_code" in ext:
                b.trace("extensions.purpose_code", "BGM", "1225")
        if response:
            b.trace("extensions.response_type", "BGM", "4343")
    b.keep_rest(seg)


def _rff(b: _BuildChange, seg: list[Any]) -> None:
    count = len(b.references)
    _rff_orders(b, seg)
    if b.on is not None or b.area != "header" or b.line is not None or len(b.references) == count:
        return  # not a header reference (SG1), or not the first RFF+ON
    ref = b.references[-1]
    if ref["qualifier"] == "ON" and ref["value"]:
        b.on = (ref["value"], b.src("RFF", "C506 1154") if b.tr is not None else "")


def _lin(b: _BuildChange, seg: list[Any]) -> None:
    code = _val(seg, 2)
    count = b.lin_count
    if len(seg) > 2 and seg[2]:
        # The ORDERS handler does not read 1229 and would keep the LIN whole for it: it reads
        # the LIN without it, and a LIN it keeps anyway is kept as sent.
        plain = [*seg]
        plain[2] = ""
        kept = len(b.unmapped)
        _lin_orders(b, plain)
        if len(b.unmapped) > kept and b.unmapped[-1] == _text(plain):
            b.unmapped[-1] = _text(seg)
        elif seg[2].__class__ is not str and any(c.strip() for c in seg[2][1:]):
            b.keep(seg)  # components after 1229 (not in the directory)
    else:
        _lin_orders(b, seg)
    line = b.line
    if line is None or b.lin_count == count:
        return  # a LIN after UNS+S: kept as sent
    change = b.tc.change_codes.get(code or "", "change")
    line["change_code"] = code
    line["change"] = change
    if b.tr is not None:
        b.change_src = b.src("LIN", "1229")
        b.tr[f"{b.lp}.change"] = b.change_src
        if code is not None:
            b.tr[f"{b.lp}.change_code"] = b.change_src
    if line["line_number"] is None and change != "add":
        raise MappingError(
            f"LIN {b.lin_count}"
            + (f" (1229 {code})" if code else "")
            + " has no line number (1082), so it cannot be matched to a line of the order; "
            "only an added line (1229 1) may leave it out",
            reason="EDIFACT_MISSING_LINE_NUMBER",
            position=b.position(seg, "1082"),
        )


_Handler = Callable[[_BuildChange, list[Any]], None]

# The ORDERS handlers with ORDCHG's BGM, LIN and RFF.
_HANDLERS_ORDCHG: dict[str, _Handler] = {
    **_HANDLERS,
    "BGM": _bgm,
    "LIN": _lin,
    "RFF": _rff,
}
_BuildChange.handlers = _HANDLERS_ORDCHG

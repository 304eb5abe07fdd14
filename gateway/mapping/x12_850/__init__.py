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

from gateway.errors import MappingError
from gateway.formats.base import Document
from gateway.mapping.x12_850.build import _Build
from gateway.mapping.x12_850.tables import (
    DEFAULT_TABLES_PATH,
    X12Tables,
    default_tables,
    load_x12_tables,
)
from gateway.model import Order

__all__ = [
    "DEFAULT_TABLES_PATH",
    "X12Tables",
    "default_tables",
    "load_x12_tables",
    "map_850",
]


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

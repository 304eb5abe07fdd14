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

from gateway.errors import MappingError
from gateway.formats.base import Document
from gateway.mapping.edifact_orders.build import _Build
from gateway.mapping.edifact_orders.tables import (
    DEFAULT_TABLES_PATH,
    EdifactTables,
    default_tables,
    load_edifact_tables,
)
from gateway.model import Order

__all__ = [
    "DEFAULT_TABLES_PATH",
    "EdifactTables",
    "default_tables",
    "load_edifact_tables",
    "map_orders",
]


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

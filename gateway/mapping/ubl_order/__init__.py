"""The UBL 2.x order mapping: Order, OrderChange and OrderCancellation to an `Order`.

One mapping for UBL 2.0 to 2.4 and Peppol BIS Ordering / Advanced Ordering 3 (the versions
share namespaces; elements a version lacks are simply absent). Code tables (document type
-> purpose, party elements -> roles, item id schemes -> fields) are data in
``mappings/xml/ubl.yaml``, loaded and checked once (`load_ubl_tables`).

What goes where (cbc: basic, cac: aggregate components; paths from the root)
    cbc:ID                        po_number (Order); for an OrderChange or OrderCancellation
                                  the cancelled order's cac:OrderReference/cbc:ID, its own
                                  cbc:ID going to references (role cancellation)
    cbc:IssueDate                 order_date;  cbc:OrderTypeCode -> order_type
    document type                 purpose (table: original, change, cancel); an Order with
                                  cbc:CopyIndicator true is a "duplicate"
    cbc:DocumentCurrencyCode      currency (else the currencyID of the payable amount)
    cbc:Note, CancellationNote    notes
    cbc:SequenceNumberID          extensions["ubl_sequence_number"] (OrderChange); also kept:
                                  UBLVersionID, CustomizationID, ProfileID, UUID
    cac:OrderReference            references (role original_order)
    Contract, QuotationDocumentReference, OrderDocumentReference,
    OriginatorDocumentReference, AdditionalDocumentReference, CatalogueReference,
    ProjectReference, cbc:SalesOrderID, cbc:CustomerReference, cbc:AccountingCost
                                  references (Contract also contract_number)
    party elements (table)        BuyerCustomerParty -> buyer, SellerSupplierParty -> seller,
                                  AccountingCustomerParty -> bill_to, others ->
                                  other_parties[role]: name (PartyName, else the legal
                                  name), code (PartyIdentification/cbc:ID, @schemeID as
                                  code_qualifier; else cbc:EndpointID), PostalAddress (street
                                  lines, CityName, PostalZone, CountrySubentity,
                                  Country/IdentificationCode), Contact (Name, Telephone,
                                  Telefax, ElectronicMail); EndpointID, further ids, legal and
                                  tax company ids -> the party's references
    cac:Delivery                  ship_to (DeliveryLocation: ID, Name, Address; UBL 2.0
                                  DeliveryAddress; DeliveryParty: name, contact);
                                  RequestedDeliveryPeriod -> dates requested_delivery (start)
                                  and do_not_deliver_after (end) and requested_delivery_date;
                                  LatestDeliveryDate, Despatch/RequestedDespatchDate -> dates;
                                  a second Delivery -> other_parties["delivery_2"]
    cac:DeliveryTerms             shipping (incoterms, location, special terms)
    cac:AllowanceCharge           allowances_charges (ChargeIndicator true = charge)
    cac:TaxTotal                  taxes (one per TaxSubtotal, else the total) and
                                  totals.tax_total
    AnticipatedMonetaryTotal      totals: LineExtensionAmount -> subtotal, PayableAmount ->
                                  total, AllowanceTotalAmount -> discount_total, the others
                                  (TaxExclusive, TaxInclusive, ...) -> totals.amounts
    cac:PaymentTerms              payment_terms;  ValidityPeriod -> dates valid_from/until
    cac:OrderLine/cac:LineItem    one OrderLine: cbc:ID line_number, cbc:Quantity (required)
                                  and its @unitCode -> quantity, uom; Price/PriceAmount ÷
                                  BaseQuantity -> unit_price; Item Name and Description ->
                                  description; SellersItemIdentification -> sku,
                                  BuyersItemIdentification -> buyer_part_number,
                                  StandardItemIdentification (@schemeID 0160) -> gtin, every
                                  id and CommodityClassification -> item_ids; Delivery ->
                                  line dates; AllowanceCharge (line and price) ->
                                  allowances_charges; Note, AdditionalItemProperty -> notes;
                                  ClassifiedTaxCategory, TotalTaxAmount -> taxes;
                                  LineExtensionAmount -> prices; LineStatusCode,
                                  AccountingCost -> references; OriginatorParty ->
                                  other_parties["originator@line<n>"]
    anything else                 Order.unmapped as "xpath=value" for every leaf element not
                                  read (embedded attachments summarized), so nothing is
                                  silently dropped

Reason codes (MappingError.reason)
    NOT_AN_ORDER          the document is not an Order, OrderChange or OrderCancellation
    MISSING_PO_NUMBER     no cbc:ID (for a cancellation: no cac:OrderReference/cbc:ID)
    XML_BAD_NUMBER        a quantity, price or amount that is not an xs:decimal (or beyond
                          1e15), or a BaseQuantity of zero
    XML_BAD_DATE          a date that is not YYYY-MM-DD
    XML_MISSING_QUANTITY  an order line without cac:LineItem/cbc:Quantity
    INVALID_ORDER         the mapped values do not make a valid Order (a mapping bug)
The position of a MappingError is the XPath of the bad value.
"""

from __future__ import annotations

from lxml import etree

from gateway.formats.base import Document
from gateway.formats.ubl import ORDER_TYPES
from gateway.mapping.builder import not_an_order
from gateway.mapping.ubl_order.build import _Build
from gateway.mapping.ubl_order.tables import (
    DEFAULT_TABLES_PATH,
    UblTables,
    default_ubl_tables,
    load_ubl_tables,
)
from gateway.model import Order

__all__ = [
    "DEFAULT_TABLES_PATH",
    "UblTables",
    "default_ubl_tables",
    "load_ubl_tables",
    "map_ubl_order",
]


def map_ubl_order(
    doc: Document, tables: UblTables | None = None, trace: dict[str, str] | None = None
) -> Order:
    """Map one UBL Order, OrderChange or OrderCancellation `Document` (from `UblParser`).

    When `trace` is a dict it is filled with field path -> XPath of the value, e.g.
    ``trace["lines[0].quantity"] == "/Order/cac:OrderLine[1]/cac:LineItem/cbc:Quantity"``.
    Raises MappingError (reasons in the module docstring) with the XPath of the bad value.
    """
    root = doc.body
    if doc.doc_type not in ORDER_TYPES or not isinstance(root, etree._Element):
        raise not_an_order(
            doc, f"UBL {doc.doc_type} is not an Order, OrderChange or OrderCancellation"
        )
    return _Build(doc, root, tables or default_ubl_tables(), trace).run()

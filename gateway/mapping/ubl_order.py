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

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.errors import MappingError
from gateway.formats.base import Document
from gateway.formats.safexml import XmlPicker, XPaths
from gateway.formats.ubl import CAC, CBC, EXT, ORDER_TYPES
from gateway.mapping.builder import XmlOrder, envelope_source, load_tables, not_an_order
from gateway.mapping.files import mappings_root
from gateway.mapping.tables import Codes
from gateway.model import Order, Purpose

__all__ = [
    "DEFAULT_TABLES_PATH",
    "UblTables",
    "default_ubl_tables",
    "load_ubl_tables",
    "map_ubl_order",
]

DEFAULT_TABLES_PATH = mappings_root() / "xml" / "ubl.yaml"
NS = {"cac": CAC, "cbc": CBC, "ext": EXT}

# ------------------------------------------------------------------------------------------
# Code tables

_KEYS = Codes(
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"), "names of letters, digits, '_', '.', ':', '-'"
)
_PARTY_FIELDS = frozenset({"buyer", "seller", "ship_to", "bill_to"})
# table name -> (what it is for, allowed values or None for any snake_case role name)
_TABLES: dict[str, tuple[str, frozenset[str] | None]] = {
    "purpose": ("UBL document types", frozenset(p.value for p in Purpose)),
    "party_roles": ("UBL party elements", None),
    "item_schemes": (
        "StandardItemIdentification schemeIDs",
        frozenset({"gtin", "sku", "buyer_part_number"}),
    ),
}


@dataclass(frozen=True, slots=True)
class UblTables:
    """The code tables of the UBL mapping, checked and read-only. See mappings/xml/ubl.yaml."""

    purpose: Mapping[str, Purpose]
    party_roles: Mapping[str, str]
    item_schemes: Mapping[str, str]
    sources: tuple[str, ...] = ()


def load_ubl_tables(
    path: Path | str = DEFAULT_TABLES_PATH, overrides: Sequence[Path | str] = ()
) -> UblTables:
    """Read and check the tables at `path`, then apply each override file in order.

    An override holds only the entries it changes; ``null`` removes a standard entry.
    Raises ConfigError listing every problem, each naming its file, table and key.
    """
    return load_tables(UblTables, _TABLES, path, overrides, codes=_KEYS, example="0160")


@functools.cache
def default_ubl_tables() -> UblTables:
    """The standard tables from mappings/xml/ubl.yaml, loaded once per process."""
    return load_ubl_tables()


# ------------------------------------------------------------------------------------------
# Mapping

_GTIN = re.compile(r"\d{8}|\d{12,14}")
_DOCUMENT_REFERENCES = (
    ("cac:QuotationDocumentReference", "quotation"),
    ("cac:OrderDocumentReference", "order_document"),
    ("cac:OriginatorDocumentReference", "originator_document"),
    ("cac:CatalogueReference", "catalogue"),
    ("cac:AdditionalDocumentReference", "additional_document"),
    ("cac:ProjectReference", "project"),
)
_HEADER_VALUES = (
    ("cbc:SalesOrderID", "sales_order"),
    ("cbc:CustomerReference", "customer_reference"),
    ("cbc:AccountingCost", "accounting_cost"),
    ("cbc:AccountingCostCode", "accounting_cost"),
)
_OTHER_AMOUNTS = (
    "TaxExclusiveAmount",
    "TaxInclusiveAmount",
    "ChargeTotalAmount",
    "PrepaidAmount",
    "PayableRoundingAmount",
)


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


class _Build(XmlOrder):
    """The state of one mapping run."""

    t: UblTables

    def __init__(
        self, doc: Document, root: etree._Element, tables: UblTables, trace: dict[str, str] | None
    ):
        root_ns = etree.QName(root).namespace or ""
        paths = XPaths({CAC: "cac", CBC: "cbc", EXT: "ext", root_ns: ""}, frozenset({"cac:OrderLine"}))
        super().__init__(doc, tables, XmlPicker(paths, trace))
        self.root = root
        self.doc_type = doc.doc_type

    def find(self, el: etree._Element | None, path: str) -> etree._Element | None:
        return None if el is None else el.find(_clark(path))

    def findall(self, el: etree._Element | None, path: str) -> list[etree._Element]:
        return [] if el is None else el.findall(_clark(path))

    def text(self, el: etree._Element | None, path: str, field: str | None = None) -> str | None:
        return self.x.text(self.find(el, path), field)

    def amount(
        self, el: etree._Element | None, path: str, field: str | None = None
    ) -> Decimal | None:
        return self.x.decimal(self.find(el, path), field)

    # -- the walk ----------------------------------------------------------------------------

    def run(self) -> Order:
        x, root, o = self.x, self.root, self.order
        o["channel"] = "ubl"
        purpose = self.t.purpose.get(self.doc_type, Purpose.OTHER)
        copy = self.text(root, "cbc:CopyIndicator")
        if self.doc_type == "Order" and (copy or "").lower() == "true":
            purpose = Purpose.DUPLICATE
        o["purpose"] = purpose
        own_id = self.find(root, "cbc:ID")
        order_ref = self.find(root, "cac:OrderReference/cbc:ID")
        if self.doc_type in ("OrderCancellation", "OrderChange"):
            # Changes and cancellations carry the number of the order they change, which is
            # how the gateway links them to it (partner + PO number); their own id is a reference.
            po = x.text(order_ref, "po_number")
            own = x.text(own_id, "references[0].value")
            if own:
                role = "cancellation" if self.doc_type == "OrderCancellation" else "order_change"
                self.references.append({"qualifier": "ID", "value": own, "role": role})
            missing = "the number of the order it changes (cac:OrderReference/cbc:ID)"
        else:
            po = x.text(own_id, "po_number")
            missing = "an order number (cbc:ID)"
        if po is None:
            raise MappingError(
                f"the UBL {self.doc_type} has no {missing}",
                reason="MISSING_PO_NUMBER",
                position=x.paths.of(root)
                + (
                    "/cac:OrderReference/cbc:ID"
                    if self.doc_type in ("OrderCancellation", "OrderChange")
                    else "/cbc:ID"
                ),
            )
        o["po_number"] = po
        if self.doc_type == "Order" and order_ref is not None:
            value = x.text(order_ref, f"references[{len(self.references)}].value")
            if value:
                self.references.append(
                    {"qualifier": "OrderReference", "value": value, "role": "original_order"}
                )
        o["order_date"] = x.date(self.find(root, "cbc:IssueDate"), "order_date")
        o["order_type"] = self.text(root, "cbc:OrderTypeCode", "order_type")
        currency = self.text(root, "cbc:DocumentCurrencyCode", "currency")
        if currency is None:
            payable = self.find(root, "cac:AnticipatedMonetaryTotal/cbc:PayableAmount")
            currency = x.attr(payable, "currencyID", "currency")
        o["currency"] = currency
        notes: list[str] = []
        for tag in ("cbc:Note", "cbc:CancellationNote"):
            for el in self.findall(root, tag):
                value = x.text(el, f"notes[{len(notes)}]")
                if value:
                    notes.append(value)
        o["notes"] = notes
        for tag, key in (
            ("cbc:UBLVersionID", "ubl_version"),
            ("cbc:CustomizationID", "ubl_customization_id"),
            ("cbc:ProfileID", "ubl_profile_id"),
            ("cbc:UUID", "ubl_uuid"),
            ("cbc:SequenceNumberID", "ubl_sequence_number"),
        ):
            value = self.text(root, tag, f"extensions.{key}")
            if value is not None:
                self.extensions[key] = value
        o["source"] = envelope_source(self.doc, omit=("group_control_number", "test_indicator"))
        self._references()
        self._parties()
        self._deliveries()
        self._header_money()
        self._lines()
        if "requested_delivery_date" not in o:
            self._earliest_line_delivery()
        period = self.find(root, "cac:ValidityPeriod")
        self._date(self.find(period, "cbc:StartDate"), "valid_from", "ValidityPeriod/StartDate")
        self._date(self.find(period, "cbc:EndDate"), "valid_until", "ValidityPeriod/EndDate")
        return self.assemble(x.unmapped(root))

    # -- header ------------------------------------------------------------------------------

    def _references(self) -> None:
        x, root, refs = self.x, self.root, self.references
        for tag, role in _HEADER_VALUES:
            for el in self.findall(root, tag):
                value = x.text(el, f"references[{len(refs)}].value")
                if value:
                    refs.append({"qualifier": tag.split(":")[1], "value": value, "role": role})
        for contract in self.findall(root, "cac:Contract"):
            contract_id = self.find(contract, "cbc:ID")
            value = x.text(contract_id, f"references[{len(refs)}].value")
            if value and contract_id is not None:
                refs.append(
                    {
                        "qualifier": "Contract",
                        "value": value,
                        "description": self.text(contract, "cbc:ContractType"),
                        "role": "contract",
                    }
                )
                if "contract_number" not in self.order:
                    self.order["contract_number"] = value
                    x.record("contract_number", contract_id)
        for tag, role in _DOCUMENT_REFERENCES:
            for el in self.findall(root, tag):
                value = self.text(el, "cbc:ID", f"references[{len(refs)}].value")
                if value is None:
                    continue
                refs.append(
                    {
                        "qualifier": self.text(el, "cbc:DocumentTypeCode") or tag.split(":")[1],
                        "value": value,
                        "description": self.text(el, "cbc:DocumentType"),
                        "role": role,
                    }
                )

    def _parties(self) -> None:
        for tag, role in self.t.party_roles.items():
            holder = self.find(self.root, f"cac:{tag}")
            if holder is None:
                continue
            f = role if role in _PARTY_FIELDS else f"other_parties.{role}"
            party = self._party(holder, f)
            if role in _PARTY_FIELDS:
                self.order[role] = party
            else:
                self.others[role] = party

    def _party(self, holder: etree._Element, f: str) -> dict[str, Any]:
        """A party element (or an XxxParty holding cac:Party) as a Party."""
        x = self.x
        el = self.find(holder, "cac:Party")
        if el is None:
            el = holder
        party: dict[str, Any] = {"address_lines": [], "references": []}
        refs = party["references"]
        party["name"] = self.text(el, "cac:PartyName/cbc:Name", f"{f}.name")
        legal = self.find(el, "cac:PartyLegalEntity/cbc:RegistrationName")
        if party["name"] is None:
            party["name"] = x.text(legal, f"{f}.name")
        ids = self.findall(el, "cac:PartyIdentification/cbc:ID")
        endpoint = self.find(el, "cbc:EndpointID")
        first = ids[0] if ids else endpoint
        if first is not None:
            party["code"] = x.text(first, f"{f}.code")
            party["code_qualifier"] = x.attr(first, "schemeID", f"{f}.code_qualifier")
        for other, role in [(i, "party_id") for i in ids[1:]] + (
            [(endpoint, "endpoint")] if endpoint is not None and endpoint is not first else []
        ):
            value = x.text(other, f"{f}.references[{len(refs)}].value")
            if value:
                scheme = x.attr(other, "schemeID")
                refs.append(
                    {
                        "qualifier": scheme or etree.QName(other).localname,
                        "value": value,
                        "role": role,
                    }
                )
        for path, role in (
            ("cac:PartyLegalEntity/cbc:CompanyID", "company_id"),
            ("cac:PartyTaxScheme/cbc:CompanyID", "tax_id"),
        ):
            for company in self.findall(el, path):
                value = x.text(company, f"{f}.references[{len(refs)}].value")
                if value:
                    scheme = x.attr(company, "schemeID")
                    if role == "tax_id":
                        scheme = scheme or self.text(company.getparent(), "cac:TaxScheme/cbc:ID")
                    refs.append({"qualifier": scheme or role, "value": value, "role": role})
        for tag in ("cbc:CustomerAssignedAccountID", "cbc:SupplierAssignedAccountID"):
            value = self.text(holder, tag, f"{f}.references[{len(refs)}].value")
            if value:
                refs.append({"qualifier": tag.split(":")[1], "value": value, "role": "account"})
        address = self.find(el, "cac:PostalAddress")
        if address is not None:
            self._address(address, party, f)
        contact = self._contact(self.find(el, "cac:Contact"), f)
        if contact is None:
            for tag in ("cac:DeliveryContact", "cac:AccountingContact", "cac:BuyerContact"):
                contact = self._contact(self.find(holder, tag), f)
                if contact is not None:
                    break
        person = self.find(el, "cac:Person")
        if person is not None:
            names = [
                self.text(person, t) for t in ("cbc:FirstName", "cbc:MiddleName", "cbc:FamilyName")
            ]
            full = " ".join(n for n in names if n)
            if full:
                contact = contact or {}
                contact.setdefault("name", full)
        if contact is not None:
            party["contact"] = contact
        return party

    def _address(self, addr: etree._Element, party: dict[str, Any], f: str) -> None:
        x, lines = self.x, party["address_lines"]

        def add(value: str | None, el: etree._Element | None) -> None:
            if value and el is not None:
                x.record(f"{f}.address_lines[{len(lines)}]", el)
                lines.append(value)

        street = self.find(addr, "cbc:StreetName")
        number = self.text(addr, "cbc:BuildingNumber")
        value = x.text(street)
        if value and number:
            value = f"{value} {number}"
        add(value, street)
        for tag in ("cbc:AdditionalStreetName", "cbc:BuildingName", "cbc:Department"):
            el = self.find(addr, tag)
            add(x.text(el), el)
        for el in self.findall(addr, "cac:AddressLine/cbc:Line"):
            add(x.text(el), el)
        box = self.find(addr, "cbc:Postbox")
        postbox = x.text(box)
        add(f"PO Box {postbox}" if postbox else None, box)
        party["city"] = self.text(addr, "cbc:CityName", f"{f}.city")
        party["postal_code"] = self.text(addr, "cbc:PostalZone", f"{f}.postal_code")
        party["region"] = self.text(addr, "cbc:CountrySubentity", f"{f}.region") or self.text(
            addr, "cbc:CountrySubentityCode", f"{f}.region"
        )
        party["country"] = self.text(addr, "cac:Country/cbc:IdentificationCode", f"{f}.country")

    def _contact(self, el: etree._Element | None, f: str) -> dict[str, Any] | None:
        if el is None:
            return None
        contact = {
            "name": self.text(el, "cbc:Name", f"{f}.contact.name"),
            "phone": self.text(el, "cbc:Telephone", f"{f}.contact.phone"),
            "fax": self.text(el, "cbc:Telefax", f"{f}.contact.fax"),
            "email": self.text(el, "cbc:ElectronicMail", f"{f}.contact.email"),
        }
        return contact if any(contact.values()) else None

    def _deliveries(self) -> None:
        for k, delivery in enumerate(self.findall(self.root, "cac:Delivery")):
            f = "ship_to" if k == 0 else f"other_parties.delivery_{k + 1}"
            party = self._delivery_party(delivery, f)
            if party is not None:
                if k == 0:
                    self.order["ship_to"] = party
                else:
                    self.others[f"delivery_{k + 1}"] = party
            self._delivery_dates(delivery, self.dates, "dates", header=k == 0)
        terms = self.find(self.root, "cac:DeliveryTerms")
        if terms is not None:
            x = self.x
            shipping: dict[str, Any] = {}
            term_id = self.find(terms, "cbc:ID")
            shipping["incoterms"] = x.text(term_id, "shipping.incoterms")
            x.attr(term_id, "schemeID")
            shipping["incoterms_location"] = self.text(
                terms, "cac:DeliveryLocation/cbc:ID", "shipping.incoterms_location"
            )
            special = [x.text(el) for el in self.findall(terms, "cbc:SpecialTerms")]
            shipping["instructions"] = [s for s in special if s]
            self.order["shipping"] = shipping

    def _delivery_party(self, delivery: etree._Element, f: str) -> dict[str, Any] | None:
        x = self.x
        location = self.find(delivery, "cac:DeliveryLocation")
        delivery_party = self.find(delivery, "cac:DeliveryParty")
        party: dict[str, Any] | None = None
        if delivery_party is not None:
            party = self._party(delivery_party, f)
        if location is not None:
            loc_id = self.find(location, "cbc:ID")
            loc: dict[str, Any] = {"address_lines": [], "references": []}
            if loc_id is not None and x.text(loc_id):
                loc["code"] = x.text(loc_id, f"{f}.code")
                loc["code_qualifier"] = x.attr(loc_id, "schemeID", f"{f}.code_qualifier")
            loc["name"] = self.text(location, "cbc:Name", f"{f}.name")
            address = self.find(location, "cac:Address")
            if address is not None:
                self._address(address, loc, f)
            party = _merge_party(loc, party)
        address = self.find(delivery, "cac:DeliveryAddress")  # UBL 2.0
        if address is not None:
            loc = {"address_lines": [], "references": []}
            self._address(address, loc, f)
            party = _merge_party(loc, party)
        return party

    def _delivery_dates(
        self, delivery: etree._Element, dates: list[dict[str, Any]], f: str, *, header: bool
    ) -> None:
        period = self.find(delivery, "cac:RequestedDeliveryPeriod")
        if period is not None:
            start = self._date(
                self.find(period, "cbc:StartDate"),
                "requested_delivery",
                "RequestedDeliveryPeriod/StartDate",
                self.find(period, "cbc:StartTime"),
                dates,
                f,
            )
            end = self._date(
                self.find(period, "cbc:EndDate"),
                "do_not_deliver_after",
                "RequestedDeliveryPeriod/EndDate",
                self.find(period, "cbc:EndTime"),
                dates,
                f,
            )
            wanted = start or end
            if header and wanted is not None and "requested_delivery_date" not in self.order:
                self.order["requested_delivery_date"] = wanted
                src = self.find(period, "cbc:StartDate" if start else "cbc:EndDate")
                if src is not None:
                    self.x.record("requested_delivery_date", src)
        self._date(
            self.find(delivery, "cbc:LatestDeliveryDate"),
            "do_not_deliver_after",
            "LatestDeliveryDate",
            self.find(delivery, "cbc:LatestDeliveryTime"),
            dates,
            f,
        )
        self._date(
            self.find(delivery, "cac:Despatch/cbc:RequestedDespatchDate"),
            "requested_ship",
            "Despatch/RequestedDespatchDate",
            self.find(delivery, "cac:Despatch/cbc:RequestedDespatchTime"),
            dates,
            f,
        )

    def _date(
        self,
        el: etree._Element | None,
        role: str,
        qualifier: str,
        time_el: etree._Element | None = None,
        dates: list[dict[str, Any]] | None = None,
        f: str = "dates",
    ) -> dt.date | None:
        target = self.dates if dates is None else dates
        value = self.x.date(el, f"{f}[{len(target)}].date")
        if value is None:
            return None
        target.append(
            {"role": role, "qualifier": qualifier, "date": value, "time": self.x.text(time_el)}
        )
        return value

    def _header_money(self) -> None:
        x, root, o = self.x, self.root, self.order
        o["allowances_charges"] = [
            self._allowance(el, f"allowances_charges[{k}]")
            for k, el in enumerate(self.findall(root, "cac:AllowanceCharge"))
        ]
        totals: dict[str, Any] = {}
        taxes: list[dict[str, Any]] = []
        for tax_total in self.findall(root, "cac:TaxTotal"):
            amount = self.amount(tax_total, "cbc:TaxAmount", "totals.tax_total")
            if "tax_total" not in totals:
                totals["tax_total"] = amount
            self._taxes(tax_total, amount, taxes, "taxes")
        o["taxes"] = taxes
        monetary = self.find(root, "cac:AnticipatedMonetaryTotal")
        if monetary is not None:
            totals["subtotal"] = self.amount(monetary, "cbc:LineExtensionAmount", "totals.subtotal")
            totals["discount_total"] = self.amount(
                monetary, "cbc:AllowanceTotalAmount", "totals.discount_total"
            )
            totals["total"] = self.amount(monetary, "cbc:PayableAmount", "totals.total")
            amounts: list[dict[str, str]] = []
            for tag in _OTHER_AMOUNTS:
                el = self.find(monetary, f"cbc:{tag}")
                value = x.text(el, f"totals.amounts[{len(amounts)}].value")
                if el is not None and value is not None:
                    x.check_decimal(el, value, tag)
                    amounts.append({"qualifier": tag, "value": value})
            totals["amounts"] = amounts
        count = self.find(root, "cbc:LineCountNumeric")
        if count is not None:
            number = x.decimal(count, "totals.line_count")
            if number is not None:
                if number != number.to_integral_value():
                    raise MappingError(
                        f"cbc:LineCountNumeric {number} must be a whole number",
                        reason="XML_BAD_NUMBER",
                        position=x.where(count),
                    )
                totals["line_count"] = int(number)
        if totals:
            o["totals"] = totals
        terms: list[dict[str, Any]] = []
        for k, el in enumerate(self.findall(root, "cac:PaymentTerms")):
            g = f"payment_terms[{k}]"
            notes = [x.text(n, f"{g}.description") for n in self.findall(el, "cbc:Note")]
            terms.append(
                {
                    "type_code": self.text(el, "cbc:ID", f"{g}.type_code")
                    or self.text(el, "cbc:PaymentMeansID", f"{g}.type_code"),
                    "description": " ".join(n for n in notes if n) or None,
                    "discount_percent": self.amount(
                        el, "cbc:SettlementDiscountPercent", f"{g}.discount_percent"
                    ),
                    "net_due_date": x.date(
                        self.find(el, "cbc:PaymentDueDate"), f"{g}.net_due_date"
                    ),
                }
            )
        o["payment_terms"] = terms

    def _allowance(self, el: etree._Element, f: str) -> dict[str, Any]:
        flag = self.text(el, "cbc:ChargeIndicator", f"{f}.indicator") or ""
        indicator = {"true": "charge", "1": "charge", "false": "allowance", "0": "allowance"}.get(
            flag.lower(), flag or "unknown"
        )
        reasons = [self.x.text(r) for r in self.findall(el, "cbc:AllowanceChargeReason")]
        return {
            "indicator": indicator,
            "code": self.text(el, "cbc:AllowanceChargeReasonCode", f"{f}.code"),
            "amount": self.amount(el, "cbc:Amount", f"{f}.amount"),
            "percent": self.amount(el, "cbc:MultiplierFactorNumeric", f"{f}.percent"),
            "rate": self.amount(el, "cbc:PerUnitAmount", f"{f}.rate"),
            "description": "; ".join(r for r in reasons if r) or None,
        }

    def _taxes(
        self, tax_total: etree._Element, amount: Decimal | None, taxes: list[dict[str, Any]], f: str
    ) -> None:
        subtotals = self.findall(tax_total, "cac:TaxSubtotal")
        if not subtotals:
            taxes.append({"type": None, "amount": amount})
            return
        for sub in subtotals:
            g = f"{f}[{len(taxes)}]"
            category = self.find(sub, "cac:TaxCategory")
            taxes.append(
                {
                    "type": self._tax_type(category, f"{g}.type"),
                    "amount": self.amount(sub, "cbc:TaxAmount", f"{g}.amount"),
                    "percent": self.amount(sub, "cbc:Percent", f"{g}.percent")
                    or self.amount(category, "cbc:Percent", f"{g}.percent"),
                }
            )

    def _tax_type(self, category: etree._Element | None, field: str) -> str | None:
        """ "VAT:S" from TaxScheme/ID and the category's ID, or what there is of them."""
        scheme = self.text(category, "cac:TaxScheme/cbc:ID", field)
        code = self.text(category, "cbc:ID", field)
        return ":".join(p for p in (scheme, code) if p) or None

    # -- lines -------------------------------------------------------------------------------

    def _lines(self) -> None:
        x = self.x
        lines: list[dict[str, Any]] = []
        for k, order_line in enumerate(self.findall(self.root, "cac:OrderLine")):
            f = f"lines[{k}]"
            item = self.find(order_line, "cac:LineItem")
            quantity_el = self.find(item, "cbc:Quantity")
            number = self.text(item, "cbc:ID", f"{f}.line_number")
            quantity = x.decimal(quantity_el, f"{f}.quantity")
            if item is None or quantity is None:
                raise MappingError(
                    f"order line {number or k + 1} (line {order_line.sourceline}) has no "
                    "cac:LineItem/cbc:Quantity",
                    reason="XML_MISSING_QUANTITY",
                    position=x.where(order_line) + "/cac:LineItem/cbc:Quantity",
                )
            line: dict[str, Any] = {
                "line_number": number,
                "quantity": quantity,
                "uom": x.attr(quantity_el, "unitCode", f"{f}.uom"),
                "item_ids": [],
                "references": [],
                "dates": [],
                "allowances_charges": [],
                "taxes": [],
                "prices": [],
                "notes": [],
            }
            for el in self.findall(order_line, "cbc:Note") + self.findall(item, "cbc:Note"):
                value = x.text(el, f"{f}.notes[{len(line['notes'])}]")
                if value:
                    line["notes"].append(value)
            self._price(item, line, f)
            self._item(self.find(item, "cac:Item"), line, f)
            for el in self.findall(item, "cac:AllowanceCharge"):
                line["allowances_charges"].append(
                    self._allowance(
                        el, f"{f}.allowances_charges[{len(line['allowances_charges'])}]"
                    )
                )
            extension = self.find(item, "cbc:LineExtensionAmount")
            value = x.text(extension, f"{f}.prices[{len(line['prices'])}].value")
            if extension is not None and value is not None:
                x.check_decimal(extension, value, "cbc:LineExtensionAmount")
                line["prices"].append({"qualifier": "line_extension_amount", "value": value})
            tax = self.amount(item, "cbc:TotalTaxAmount", f"{f}.taxes[{len(line['taxes'])}].amount")
            if tax is not None:
                line["taxes"].append({"type": None, "amount": tax})
            for tag, role in (
                ("cbc:LineStatusCode", "line_status"),
                ("cbc:AccountingCost", "accounting_cost"),
                ("cbc:SalesOrderID", "sales_order"),
            ):
                value = self.text(item, tag, f"{f}.references[{len(line['references'])}].value")
                if value:
                    line["references"].append(
                        {"qualifier": tag.split(":")[1], "value": value, "role": role}
                    )
            label = number or str(k + 1)
            for delivery in self.findall(item, "cac:Delivery"):
                self._delivery_dates(delivery, line["dates"], f"{f}.dates", header=False)
                party = self._delivery_party(delivery, f"other_parties.ship_to@line{label}")
                if party is not None:
                    self.others[f"ship_to@line{label}"] = party
            originator = self.find(item, "cac:OriginatorParty")
            if originator is not None:
                key = f"originator@line{label}"
                self.others[key] = self._party(originator, f"other_parties.{key}")
            lines.append(line)
        self.order["lines"] = lines

    def _price(self, item: etree._Element, line: dict[str, Any], f: str) -> None:
        x = self.x
        price = self.find(item, "cac:Price")
        if price is None:
            return
        amount = self.amount(price, "cbc:PriceAmount", f"{f}.unit_price")
        base_el = self.find(price, "cbc:BaseQuantity")
        base = x.decimal(base_el)
        if amount is not None and base is not None and base_el is not None:
            if base == 0:
                raise MappingError(
                    f"cbc:BaseQuantity (line {base_el.sourceline}) is zero; a price cannot be "
                    "per zero units",
                    reason="XML_BAD_NUMBER",
                    position=x.where(base_el),
                )
            if base != 1:
                amount = amount / base
        line["unit_price"] = amount
        for el in self.findall(price, "cac:AllowanceCharge"):
            charge = self._allowance(
                el, f"{f}.allowances_charges[{len(line['allowances_charges'])}]"
            )
            charge["handling"] = "price"  # already taken into the net unit price
            line["allowances_charges"].append(charge)
            gross = self.find(el, "cbc:BaseAmount")
            value = x.text(gross, f"{f}.prices[{len(line['prices'])}].value")
            if gross is not None and value is not None:
                x.check_decimal(gross, value, "cbc:BaseAmount")
                line["prices"].append({"qualifier": "gross_price", "value": value})

    def _item(self, item: etree._Element | None, line: dict[str, Any], f: str) -> None:
        if item is None:
            return
        x, ids = self.x, line["item_ids"]
        name = self.find(item, "cbc:Name")
        texts = [(x.text(name), name)] + [
            (x.text(d), d) for d in self.findall(item, "cbc:Description")
        ]
        parts: list[str] = []
        for value, el in texts:
            if value and value not in parts and el is not None:
                parts.append(value)
                if len(parts) == 1:
                    x.record(f"{f}.description", el)
        if parts:
            line["description"] = " - ".join(parts)

        def add(el: etree._Element, qualifier: str, field: str | None) -> None:
            value = x.text(el, f"{f}.item_ids[{len(ids)}].value")
            if value is None:
                return
            ids.append({"qualifier": qualifier, "value": value})
            if field is not None and field not in line:
                line[field] = value
                x.record(f"{f}.{field}", el)

        for tag, field in (
            ("cac:SellersItemIdentification", "sku"),
            ("cac:BuyersItemIdentification", "buyer_part_number"),
            ("cac:ManufacturersItemIdentification", None),
        ):
            for ident in self.findall(item, tag):
                id_el = self.find(ident, "cbc:ID")
                if id_el is not None:
                    add(id_el, tag.split(":")[1], field)
                extended = self.find(ident, "cbc:ExtendedID")
                if extended is not None:
                    add(extended, f"{tag.split(':')[1]}/ExtendedID", None)
        for id_el in self.findall(item, "cac:StandardItemIdentification/cbc:ID"):
            scheme = x.attr(id_el, "schemeID")
            value = x.text(id_el) or ""
            field = self.t.item_schemes.get(scheme or "")
            if scheme is None and _GTIN.fullmatch(value):
                field = "gtin"
            qualifier = (
                f"StandardItemIdentification:{scheme}" if scheme else "StandardItemIdentification"
            )
            add(id_el, qualifier, field)
        for code in self.findall(item, "cac:CommodityClassification/cbc:ItemClassificationCode"):
            list_id = x.attr(code, "listID")
            add(code, f"classification:{list_id}" if list_id else "classification", None)
        for prop in self.findall(item, "cac:AdditionalItemProperty"):
            prop_name = self.text(prop, "cbc:Name")
            prop_value = self.text(prop, "cbc:Value")
            if prop_name or prop_value:
                x.record(f"{f}.notes[{len(line['notes'])}]", prop)
                line["notes"].append(f"{prop_name or 'property'}: {prop_value or ''}".strip())
        for category in self.findall(item, "cac:ClassifiedTaxCategory"):
            g = f"{f}.taxes[{len(line['taxes'])}]"
            line["taxes"].append(
                {
                    "type": self._tax_type(category, f"{g}.type"),
                    "percent": self.amount(category, "cbc:Percent", f"{g}.percent"),
                }
            )

    def _earliest_line_delivery(self) -> None:
        best: dt.date | None = None
        for line in self.order.get("lines", []):
            for event in line["dates"]:
                if event["role"] == "requested_delivery" and (best is None or event["date"] < best):
                    best = event["date"]
        if best is not None:
            self.order["requested_delivery_date"] = best


@functools.lru_cache(maxsize=512)
def _clark(path: str) -> str:
    """'cac:Party/cbc:ID' in Clark notation: lxml finds those twice as fast as prefixed paths."""
    steps = []
    for step in path.split("/"):
        prefix, sep, local = step.partition(":")
        steps.append(f"{{{NS[prefix]}}}{local}" if sep else step)
    return "/".join(steps)


def _merge_party(primary: dict[str, Any], fallback: dict[str, Any] | None) -> dict[str, Any]:
    """`primary` with the fields it lacks taken from `fallback` (a DeliveryParty)."""
    if fallback is None:
        return primary
    merged = dict(fallback)
    for key, value in primary.items():
        if value not in (None, [], {}):
            merged[key] = value
    merged["references"] = fallback.get("references", []) + [
        r for r in primary.get("references", []) if r not in fallback.get("references", [])
    ]
    return merged

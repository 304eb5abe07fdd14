"""The cXML OrderRequest mapping: one `Document` from `CxmlParser` in, one `Order` out.

Code tables (OrderRequestHeader/@type -> purpose, Contact/@role -> party, product id
domains) are data in ``mappings/xml/cxml.yaml``, loaded and checked once
(`load_cxml_tables`); a partner file can override entries.

What goes where (paths under /cXML/Request/OrderRequest)
    OrderRequestHeader/@orderID       po_number (required)
    @orderDate                        order_date (the date as written, in its own zone)
    @type                             purpose (table: new/update/delete -> original/replace/
                                      cancel; missing = new); @orderType -> order_type;
                                      @orderVersion -> extensions["cxml_order_version"]
    @requestedDeliveryDate            requested_delivery_date and a "requested_delivery"
                                      date; without it, the earliest ItemOut date
    Total/Money                       totals.total, and @currency -> currency
    ShipTo/Address, BillTo/Address    ship_to, bill_to: @addressID (+ @addressIDDomain) ->
                                      code, Name, PostalAddress (DeliverTo and Street lines,
                                      City, State, PostalCode, Country/@isoCountryCode),
                                      Email, Phone, Fax -> contact (first DeliverTo as name)
    ShipTo/CarrierIdentifier,         shipping (carrier, transport method, instructions)
      TransportInformation
    Shipping                          a "charge" allowances_charges entry (code shipping)
                                      and totals.shipping_total
    Tax                               taxes (the total, or one per TaxDetail) and
                                      totals.tax_total
    Contact                           by @role (table): buyer ("buyer", "endUser"), ... or
                                      other_parties[role]
    Header/From, Header/To            credentials: the buyer's and the seller's code when no
                                      address id gave one, else the party's references
    Payment/PCard, PaymentReference   payment.method only ("pcard", or @method): never the
                                      card number or expiry
    PaymentTerm                       payment_terms
    Comments                          notes
    Extrinsic                         extensions["extrinsic"][name] = value
    DocumentReference                 references (role original_order, for update/delete)
    ItemOut                           one OrderLine: @lineNumber, @quantity (required),
                                      @requestedDeliveryDate -> dates; ItemID/SupplierPartID
                                      -> sku, BuyerPartID -> buyer_part_number,
                                      SupplierPartAuxiliaryID and IdReference -> item_ids;
                                      ItemDetail/UnitPrice/Money -> unit_price (÷
                                      PriceBasisQuantity), Description -> description,
                                      UnitOfMeasure -> uom, ManufacturerPartID and
                                      Classification -> item_ids, Extrinsic ->
                                      extensions["line_extrinsic"][line]; SupplierID ->
                                      references; Shipping, Tax, Comments -> the line;
                                      ShipTo -> other_parties["ship_to@line<n>"]
    anything else                     Order.unmapped as "xpath=value", so nothing is
                                      silently dropped (shared secrets and card data never)

Reason codes (MappingError.reason)
    NOT_AN_ORDER          the document is not an OrderRequest
    MISSING_PO_NUMBER     no OrderRequestHeader, or its @orderID is empty
    XML_BAD_NUMBER        a quantity, price or amount that is not an xs:decimal (or beyond 1e15)
    XML_BAD_DATE          a date that is not an ISO 8601 date or date and time
    XML_MISSING_QUANTITY  an ItemOut without @quantity
    INVALID_ORDER         the mapped values do not make a valid Order (a mapping bug)
The position of a MappingError is the XPath of the bad value.
"""

from __future__ import annotations

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
from gateway.formats.cxml import CxmlRequest
from gateway.formats.safexml import XmlPicker, XPaths
from gateway.mapping.builder import XmlOrder, envelope_source, load_tables, not_an_order
from gateway.mapping.files import mappings_root
from gateway.mapping.tables import Codes
from gateway.model import Order, Purpose

__all__ = [
    "DEFAULT_TABLES_PATH",
    "CxmlTables",
    "default_cxml_tables",
    "load_cxml_tables",
    "map_order_request",
]

DEFAULT_TABLES_PATH = mappings_root() / "xml" / "cxml.yaml"

# ------------------------------------------------------------------------------------------
# Code tables

_KEYS = Codes(
    re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}"), "names of letters, digits, '_', '.', ':', '-'"
)
_PARTY_FIELDS = frozenset({"buyer", "seller", "ship_to", "bill_to"})
_TABLES: dict[str, tuple[str, frozenset[str]]] = {
    "purpose": ("OrderRequestHeader/@type values", frozenset(p.value for p in Purpose)),
    "contact_roles": ("Contact/@role values", _PARTY_FIELDS),
    "product_id_domains": ("product id domains", frozenset({"sku", "buyer_part_number", "gtin"})),
}


@dataclass(frozen=True, slots=True)
class CxmlTables:
    """The code tables of the cXML mapping, checked and read-only. See mappings/xml/cxml.yaml."""

    purpose: Mapping[str, Purpose]
    contact_roles: Mapping[str, str]
    product_id_domains: Mapping[str, str]
    sources: tuple[str, ...] = ()


def load_cxml_tables(
    path: Path | str = DEFAULT_TABLES_PATH, overrides: Sequence[Path | str] = ()
) -> CxmlTables:
    """Read and check the tables at `path`, then apply each override file in order.

    An override holds only the entries it changes; ``null`` removes a standard entry.
    Raises ConfigError listing every problem, each naming its file, table and key.
    """
    return load_tables(CxmlTables, _TABLES, path, overrides, codes=_KEYS, example="EAN-13")


@functools.cache
def default_cxml_tables() -> CxmlTables:
    """The standard tables from mappings/xml/cxml.yaml, loaded once per process."""
    return load_cxml_tables()


# ------------------------------------------------------------------------------------------
# Mapping

# Never listed in Order.unmapped, whatever they hold.
_SECRET_TAGS = frozenset({"SharedSecret", "CredentialMac", "PCard"})


def map_order_request(
    doc: Document, tables: CxmlTables | None = None, trace: dict[str, str] | None = None
) -> Order:
    """Map one cXML OrderRequest `Document` (from `CxmlParser`) to an `Order`.

    When `trace` is a dict it is filled with field path -> XPath of the value, e.g.
    ``trace["po_number"] == "/cXML/Request/OrderRequest/OrderRequestHeader/@orderID"``.
    Raises MappingError (reasons in the module docstring) with the XPath of the bad value.
    """
    body = doc.body
    if doc.doc_type != "OrderRequest" or not isinstance(body, CxmlRequest):
        raise not_an_order(doc, f"cXML {doc.doc_type} is not an OrderRequest")
    return _Build(doc, body, tables or default_cxml_tables(), trace).run()


class _Build(XmlOrder):
    """The state of one mapping run."""

    t: CxmlTables

    def __init__(
        self, doc: Document, body: CxmlRequest, tables: CxmlTables, trace: dict[str, str] | None
    ):
        super().__init__(doc, tables, XmlPicker(XPaths(indexed=frozenset({"ItemOut"})), trace))
        self.body = body

    # -- the walk ----------------------------------------------------------------------------

    def run(self) -> Order:
        x, req = self.x, self.body.request
        header = req.find("OrderRequestHeader")
        po = x.attr(header, "orderID", "po_number")
        if header is None or po is None:
            raise MappingError(
                "the OrderRequest has no order number (OrderRequestHeader/@orderID)",
                reason="MISSING_PO_NUMBER",
                position=x.where(header if header is not None else req),
            )
        o = self.order
        o["po_number"] = po
        o["channel"] = "cxml"
        o["order_date"] = x.attr_date(header, "orderDate", "order_date")
        kind = x.attr(header, "type", "purpose") or "new"
        o["purpose"] = self.t.purpose.get(kind, Purpose.OTHER)
        o["order_type"] = x.attr(header, "orderType", "order_type")
        version = x.attr(header, "orderVersion", "extensions.cxml_order_version")
        if version is not None:
            self.extensions["cxml_order_version"] = version
        o["source"] = envelope_source(
            self.doc, omit=("group_control_number", "transaction_control_number")
        )
        if self.body.timestamp:
            self.extensions["cxml_timestamp"] = self.body.timestamp
        self._header(header)
        self._lines(req)
        self._credentials()
        unmapped = list(x.leftover_attributes(header))
        for item in req.iterfind("ItemOut"):
            unmapped.extend(x.leftover_attributes(item))
        unmapped.extend(x.unmapped(req, skip=_SECRET_TAGS))
        return self.assemble(unmapped)

    def _header(self, h: etree._Element) -> None:
        x, o = self.x, self.order
        money = h.find("Total/Money")
        totals: dict[str, Any] = {}
        if money is not None:
            o["currency"] = x.attr(money, "currency", "currency")
            totals["total"] = x.decimal(money, "totals.total")
        ship_to = h.find("ShipTo/Address")
        if ship_to is not None:
            o["ship_to"] = self._address(ship_to, "ship_to")
        bill_to = h.find("BillTo/Address")
        if bill_to is not None:
            o["bill_to"] = self._address(bill_to, "bill_to")
        shipping = self._shipping_info(h.find("ShipTo"))
        charges: list[dict[str, Any]] = []
        shipping_el = h.find("Shipping")
        if shipping_el is not None:
            charge = self._shipping_charge(shipping_el, f"allowances_charges[{len(charges)}]")
            charges.append(charge)
            totals["shipping_total"] = charge["amount"]
            if charge.get("description"):
                shipping.setdefault("instructions", []).append(charge["description"])
        if shipping:
            o["shipping"] = shipping
        if charges:
            o["allowances_charges"] = charges
        tax_el = h.find("Tax")
        if tax_el is not None:
            taxes, total = self._taxes(tax_el, "taxes")
            o["taxes"] = taxes
            totals["tax_total"] = total
        if totals:
            o["totals"] = totals
        self._payment(h)
        self._payment_terms(h)
        self._contacts(h)
        notes = [
            n
            for n in (self._comment(c, f"notes[{i}]") for i, c in enumerate(h.iterfind("Comments")))
            if n
        ]
        if notes:
            o["notes"] = notes
        extrinsic = self._extrinsics(h.iterfind("Extrinsic"), "extensions.extrinsic")
        if extrinsic:
            self.extensions["extrinsic"] = extrinsic
        self._references(h)
        delivery = x.attr_date(h, "requestedDeliveryDate", "requested_delivery_date")
        if delivery is not None:
            o["requested_delivery_date"] = delivery
            self.dates.append(
                {"role": "requested_delivery", "qualifier": "requestedDeliveryDate", "date": delivery}
            )

    def _references(self, h: etree._Element) -> None:
        """DocumentReference (the order an update or delete changes), IdReference and
        SupplierOrderInfo of the header."""
        x, references = self.x, self.references
        for ref in h.iterfind("DocumentReference"):
            value = x.attr(ref, "payloadID", f"references[{len(references)}].value")
            if value:
                references.append(
                    {"qualifier": "payloadID", "value": value, "role": "original_order"}
                )
        for ref in h.iterfind("IdReference"):
            domain = x.attr(ref, "domain")
            value = x.attr(ref, "identifier", f"references[{len(references)}].value")
            if value:
                references.append({"qualifier": domain or "IdReference", "value": value})
        info = h.find("SupplierOrderInfo")
        value = x.attr(info, "orderID", f"references[{len(references)}].value")
        if value:
            references.append(
                {"qualifier": "SupplierOrderInfo", "value": value, "role": "supplier_order"}
            )

    def _lines(self, req: etree._Element) -> None:
        x, o = self.x, self.order
        lines: list[dict[str, Any]] = []
        line_extrinsics: dict[str, Any] = {}
        earliest: tuple[Any, etree._Element] | None = None
        for k, item in enumerate(req.iterfind("ItemOut")):
            line = self._line(item, k, line_extrinsics)
            wanted = line["dates"][0]["date"] if "dates" in line else None
            if wanted is not None and (earliest is None or wanted < earliest[0]):
                earliest = (wanted, item)
            lines.append(line)
        o["lines"] = lines
        if line_extrinsics:
            self.extensions["line_extrinsic"] = line_extrinsics
        if "requested_delivery_date" not in o and earliest is not None:
            o["requested_delivery_date"] = earliest[0]
            x.record("requested_delivery_date", earliest[1], "requestedDeliveryDate")

    def _line(
        self, item: etree._Element, k: int, line_extrinsics: dict[str, Any]
    ) -> dict[str, Any]:
        """The OrderLine of the `k`th ItemOut; its Extrinsics go to `line_extrinsics`, its
        ShipTo to other_parties."""
        x = self.x
        f = f"lines[{k}]"
        number = x.attr(item, "lineNumber", f"{f}.line_number")
        quantity = x.attr_decimal(item, "quantity", f"{f}.quantity")
        if quantity is None:
            raise MappingError(
                f"ItemOut {number or k + 1} (line {item.sourceline}) has no @quantity",
                reason="XML_MISSING_QUANTITY",
                position=x.where(item, "quantity"),
            )
        line: dict[str, Any] = {"line_number": number, "quantity": quantity}
        ids: list[dict[str, str]] = []
        item_id = item.find("ItemID")
        if item_id is not None:
            self._item_ids(item_id, line, ids, f)
        detail = item.find("ItemDetail")
        if detail is not None:
            self._detail(detail, line, ids, f, line_extrinsics, number or str(k + 1))
        supplier = item.find("SupplierID")
        if supplier is not None:
            value = x.text(supplier, f"{f}.references[0].value")
            if value:
                line["references"] = [
                    {
                        "qualifier": x.attr(supplier, "domain") or "SupplierID",
                        "value": value,
                        "role": "supplier_id",
                    }
                ]
        if ids:
            line["item_ids"] = ids
        wanted = x.attr_date(item, "requestedDeliveryDate", f"{f}.dates[0].date")
        if wanted is not None:
            line["dates"] = [
                {"role": "requested_delivery", "qualifier": "requestedDeliveryDate", "date": wanted}
            ]
        charges: list[dict[str, Any]] = []
        for el in item.iterfind("Shipping"):
            charges.append(self._shipping_charge(el, f"{f}.allowances_charges[{len(charges)}]"))
        if charges:
            line["allowances_charges"] = charges
        tax_el = item.find("Tax")
        if tax_el is not None:
            line["taxes"] = self._taxes(tax_el, f"{f}.taxes")[0]
        notes = [
            n
            for n in (
                self._comment(c, f"{f}.notes[{i}]") for i, c in enumerate(item.iterfind("Comments"))
            )
            if n
        ]
        if notes:
            line["notes"] = notes
        ship_to = item.find("ShipTo/Address")
        if ship_to is not None:
            key = f"ship_to@line{number or k + 1}"
            self.others[key] = self._address(ship_to, f"other_parties.{key}")
        extrinsic = self._extrinsics(
            item.iterfind("Extrinsic"), f"extensions.line_extrinsic.{number or k + 1}"
        )
        if extrinsic:
            line_extrinsics.setdefault(number or str(k + 1), {}).update(extrinsic)
        return line

    def _item_ids(
        self, item_id: etree._Element, line: dict[str, Any], ids: list[dict[str, str]], f: str
    ) -> None:
        x = self.x
        for tag, field in (
            ("SupplierPartID", "sku"),
            ("BuyerPartID", "buyer_part_number"),
            ("SupplierPartAuxiliaryID", None),
        ):
            for el in item_id.iterfind(tag):
                value = x.all_text(el, f"{f}.item_ids[{len(ids)}].value")
                if value is None:
                    continue
                ids.append({"qualifier": tag, "value": value})
                if field is not None and field not in line:
                    line[field] = value
                    x.record(f"{f}.{field}", el)
        for el in item_id.iterfind("IdReference"):
            domain = x.attr(el, "domain") or "IdReference"
            value = x.attr(el, "identifier", f"{f}.item_ids[{len(ids)}].value")
            if value is not None:
                self._add_id(el, domain, value, line, ids, f, "identifier")

    def _add_id(
        self,
        el: etree._Element,
        qualifier: str,
        value: str,
        line: dict[str, Any],
        ids: list[dict[str, str]],
        f: str,
        attr: str | None = None,
        domain: str | None = None,
    ) -> None:
        ids.append({"qualifier": qualifier, "value": value})
        field = self.t.product_id_domains.get(domain if domain is not None else qualifier)
        if field is not None and field not in line:
            line[field] = value
            self.x.record(f"{f}.{field}", el, attr)

    def _detail(
        self,
        detail: etree._Element,
        line: dict[str, Any],
        ids: list[dict[str, str]],
        f: str,
        line_extrinsics: dict[str, Any],
        number: str,
    ) -> None:
        x = self.x
        money = detail.find("UnitPrice/Money")
        price = x.decimal(money, f"{f}.unit_price")
        basis = detail.find("PriceBasisQuantity")
        if price is not None and basis is not None:
            per = x.attr_decimal(basis, "quantity")
            factor = x.attr_decimal(basis, "conversionFactor") or Decimal(1)
            if per is None or per == 0:
                raise MappingError(
                    f"PriceBasisQuantity (line {basis.sourceline}) needs a @quantity above zero",
                    reason="XML_BAD_NUMBER",
                    position=x.where(basis, "quantity"),
                )
            if per != 1 or factor != 1:
                price = price * factor / per
            x.text(basis.find("UnitOfMeasure"))
        if price is not None:
            line["unit_price"] = price
            if "currency" not in self.order or self.order["currency"] is None:
                self.order["currency"] = x.attr(money, "currency", "currency")
        description = detail.find("Description")
        if description is not None:
            short = description.find("ShortName")
            text = x.text(description, f"{f}.description")
            short_text = x.all_text(short)
            if text is None and short is not None and short_text is not None:
                text = short_text
                x.record(f"{f}.description", short)
            if text is not None:
                line["description"] = text
        uom = x.text(detail.find("UnitOfMeasure"), f"{f}.uom")
        if uom is not None:
            line["uom"] = uom
        for el in detail.iterfind("ManufacturerPartID"):
            value = x.all_text(el, f"{f}.item_ids[{len(ids)}].value")
            if value is not None:
                self._add_id(el, "ManufacturerPartID", value, line, ids, f)
        for el in detail.iterfind("Classification"):
            domain = x.attr(el, "domain") or ""
            value = x.all_text(el, f"{f}.item_ids[{len(ids)}].value")
            if value is not None:
                qualifier = f"classification:{domain}" if domain else "classification"
                self._add_id(el, qualifier, value, line, ids, f, domain=domain)
        extrinsic = self._extrinsics(
            detail.iterfind("Extrinsic"), f"extensions.line_extrinsic.{number}"
        )
        for name, value in extrinsic.items():
            field = self.t.product_id_domains.get(name)
            if field is not None and value:
                ids.append({"qualifier": name, "value": value})
                line.setdefault(field, value)
        if extrinsic:
            line_extrinsics.setdefault(number, {}).update(extrinsic)

    # -- parts -------------------------------------------------------------------------------

    def _address(self, addr: etree._Element, f: str) -> dict[str, Any]:
        """A cXML Address (or Contact) element as a Party."""
        x = self.x
        party: dict[str, Any] = {
            "name": x.all_text(addr.find("Name"), f"{f}.name"),
            "code": x.attr(addr, "addressID", f"{f}.code"),
            "code_qualifier": x.attr(addr, "addressIDDomain", f"{f}.code_qualifier"),
        }
        postal = addr.find("PostalAddress")
        lines: list[str] = []
        deliver_to: str | None = None
        if postal is not None:
            x.attr(postal, "name")
            for tag in ("DeliverTo", "Street"):
                for el in postal.iterfind(tag):
                    value = x.all_text(el, f"{f}.address_lines[{len(lines)}]")
                    if value:
                        lines.append(value)
                        if tag == "DeliverTo" and deliver_to is None:
                            deliver_to = value
            party["city"] = x.text(postal.find("City"), f"{f}.city")
            party["region"] = x.text(postal.find("State"), f"{f}.region")
            party["postal_code"] = x.text(postal.find("PostalCode"), f"{f}.postal_code")
            country = postal.find("Country")
            code = x.attr(country, "isoCountryCode", f"{f}.country")
            if country is not None:
                x.used.add(country)  # its text is the country's name; the code says it all
                if code is None:
                    code = x.text(country, f"{f}.country")
            party["country"] = code or x.attr(addr, "isoCountryCode", f"{f}.country")
        elif addr.get("isoCountryCode"):
            party["country"] = x.attr(addr, "isoCountryCode", f"{f}.country")
        else:
            x.attr(addr, "isoCountryCode")
        party["address_lines"] = lines
        contact = {
            "name": deliver_to,
            "email": x.text(addr.find("Email"), f"{f}.contact.email"),
            "phone": self._phone(addr.find("Phone/TelephoneNumber"), f"{f}.contact.phone"),
            "fax": self._phone(addr.find("Fax/TelephoneNumber"), f"{f}.contact.fax"),
        }
        for tag in ("Email", "Phone", "Fax"):
            x.attr(addr.find(tag), "name")
        if any(v is not None for k, v in contact.items() if k != "name"):
            party["contact"] = contact
        elif deliver_to is not None:
            party["contact"] = {"name": deliver_to}
        return party

    def _phone(self, number: etree._Element | None, field: str) -> str | None:
        if number is None:
            return None
        x = self.x
        country = x.text(number.find("CountryCode"))
        x.attr(number.find("CountryCode"), "isoCountryCode")
        parts = [
            x.text(number.find("AreaOrCityCode")),
            x.text(number.find("Number")),
        ]
        extension = x.text(number.find("Extension"))
        text = " ".join(p for p in ([f"+{country.lstrip('+')}" if country else None, *parts]) if p)
        if extension:
            text = f"{text} ext {extension}"
        if text:
            x.record(field, number)
        return text or None

    def _contacts(self, h: etree._Element) -> None:
        for k, contact in enumerate(h.iterfind("Contact")):
            role = self.x.attr(contact, "role") or "contact"
            field = self.t.contact_roles.get(role)
            if field is not None and field not in self.order:
                party = self._address(contact, field)
                self._contact_name(party)
                self.order[field] = party
            else:
                key = role if role not in self.others else f"{role}_{k + 1}"
                party = self._address(contact, f"other_parties.{key}")
                self._contact_name(party)
                self.others[key] = party

    @staticmethod
    def _contact_name(party: dict[str, Any]) -> None:
        """A Contact's Name is the person: it is the contact's name too."""
        contact = party.setdefault("contact", {})
        if party.get("name"):
            contact["name"] = party["name"]

    def _credentials(self) -> None:
        """Codes of buyer and seller from Header/From and Header/To when nothing else gave one."""
        header = self.body.header
        if header is None:
            return
        x = self.x
        for part, field in (("From", "buyer"), ("To", "seller")):
            credentials = header.findall(f"{part}/Credential")
            if not credentials:
                continue
            party = self.order.setdefault(field, {})
            refs = party.setdefault("references", [])
            for credential in credentials:
                identity = credential.find("Identity")
                domain = x.attr(credential, "domain")
                if not party.get("code"):
                    party["code"] = x.all_text(identity, f"{field}.code")
                    party["code_qualifier"] = domain
                    x.record(f"{field}.code_qualifier", credential, "domain")
                    continue
                value = x.all_text(identity, f"{field}.references[{len(refs)}].value")
                if value:
                    refs.append({"qualifier": domain or part, "value": value, "role": "credential"})

    def _shipping_info(self, ship_to: etree._Element | None) -> dict[str, Any]:
        if ship_to is None:
            return {}
        x = self.x
        shipping: dict[str, Any] = {}
        carrier = ship_to.find("CarrierIdentifier")
        if carrier is not None:
            shipping["carrier_qualifier"] = x.attr(carrier, "domain", "shipping.carrier_qualifier")
            shipping["carrier_code"] = x.text(carrier, "shipping.carrier_code")
        transport = ship_to.find("TransportInformation")
        if transport is not None:
            route = transport.find("Route")
            shipping["transport_method"] = x.attr(route, "method", "shipping.transport_method")
            instructions = x.all_text(
                transport.find("ShippingInstructions/Description"), "shipping.instructions[0]"
            )
            if instructions:
                shipping["instructions"] = [instructions]
        return {k: v for k, v in shipping.items() if v is not None}

    def _shipping_charge(self, el: etree._Element, f: str) -> dict[str, Any]:
        x = self.x
        x.attr(el.find("Money"), "currency")
        return {
            "indicator": "charge",
            "code": "shipping",
            "amount": x.decimal(el.find("Money"), f"{f}.amount"),
            "description": x.all_text(el.find("Description"), f"{f}.description"),
        }

    def _taxes(self, el: etree._Element, f: str) -> tuple[list[dict[str, Any]], Decimal | None]:
        x = self.x
        money = el.find("Money")
        x.attr(money, "currency")
        total = x.decimal(money, f"{f}[0].amount")
        description = x.all_text(el.find("Description"))
        details = el.findall("TaxDetail")
        if not details:
            return [{"type": description or "tax", "amount": total}], total
        taxes: list[dict[str, Any]] = []
        for d in details:
            g = f"{f}[{len(taxes)}]"
            amount_el = d.find("TaxAmount/Money")
            x.attr(amount_el, "currency")
            taxes.append(
                {
                    "type": x.attr(d, "category", f"{g}.type") or description or "tax",
                    "amount": x.decimal(amount_el, f"{g}.amount"),
                    "percent": x.attr_decimal(d, "percentageRate", f"{g}.percent"),
                    "jurisdiction": x.all_text(d.find("TaxLocation"), f"{g}.jurisdiction"),
                }
            )
            x.attr(d, "purpose")
        return taxes, total

    def _payment_terms(self, h: etree._Element) -> None:
        x, terms = self.x, []
        for k, term in enumerate(h.iterfind("PaymentTerm")):
            g = f"payment_terms[{k}]"
            discount = term.find("Discount")
            days_value = x.attr_decimal(term, "payInNumberOfDays")
            days = None
            if days_value is not None:
                if days_value != days_value.to_integral_value():
                    raise MappingError(
                        f"PaymentTerm/@payInNumberOfDays {days_value} must be a whole number",
                        reason="XML_BAD_NUMBER",
                        position=x.where(term, "payInNumberOfDays"),
                    )
                days = int(days_value)
                x.record(
                    f"{g}.{'discount_days' if discount is not None else 'net_days'}",
                    term,
                    "payInNumberOfDays",
                )
            item: dict[str, Any] = {"discount_days" if discount is not None else "net_days": days}
            if discount is not None:
                item["discount_percent"] = x.attr_decimal(
                    discount.find("DiscountPercent"), "percent", f"{g}.discount_percent"
                )
                money = discount.find("DiscountAmount/Money")
                x.attr(money, "currency")
                item["discount_amount"] = x.decimal(money, f"{g}.discount_amount")
            terms.append(item)
        if terms:
            self.order["payment_terms"] = terms

    def _payment(self, h: etree._Element) -> None:
        x = self.x
        payment = h.find("Payment")
        if payment is None:
            return
        card = payment.find("PCard")
        if card is not None:
            x.used.add(card)  # number, expiration and name are card data: never kept
            self.order["payment"] = {"method": "pcard"}
            x.record("payment.method", card)
            return
        reference = payment.find("PaymentReference")
        if reference is not None:
            method = x.attr(reference, "method", "payment.method")
            provider = x.attr(reference, "provider")
            if method and provider:
                method = f"{method} ({provider})"
            self.order["payment"] = {"method": method or provider}
            x.attr(reference.find("Money"), "currency")
            x.text(reference.find("Money"))  # the total again

    def _comment(self, el: etree._Element, field: str) -> str | None:
        """The text of a Comments element (its Attachments stay in unmapped)."""
        parts = [el.text or ""] + [c.tail or "" for c in el]
        text = " ".join(" ".join(parts).split())
        self.x.attr(el, "type")
        if text:
            self.x.used.add(el)
            self.x.record(field, el)
            return text
        return None

    def _extrinsics(self, elements: Any, field: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for el in elements:
            name = self.x.attr(el, "name") or "extrinsic"
            value = self.x.all_text(el, f"{field}.{name}")
            self.x.used.add(el)
            out[name] = value or ""
        return out

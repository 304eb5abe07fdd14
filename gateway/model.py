"""The canonical order: the one shape every parser produces and every connector reads.

Field names are a published contract (``gateway schema`` prints the JSON Schema), so rename
nothing lightly. Quantities and money are ``Decimal`` and serialize as strings, never floats:
a float turns 0.1 + 0.2 into an invoice dispute.

The core fields (po_number, parties, lines) cover what an ERP needs; the rest (references,
dates by role, terms, shipping, allowances and charges, taxes, totals, pack, store quantities)
exists so that nothing a partner sends is silently dropped. What a mapping does not
understand still travels in ``unmapped`` as raw segments, so a person can see it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

__all__ = [
    "AllowanceCharge",
    "Channel",
    "Contact",
    "DatedEvent",
    "Destination",
    "ItemId",
    "Order",
    "OrderLine",
    "Pack",
    "Party",
    "Payment",
    "PaymentTerms",
    "Purpose",
    "Reference",
    "Shipping",
    "Source",
    "Tax",
    "Totals",
    "content_digest",
    "order_json_schema",
]

# Decimals go out as strings ("12.50"), and the schema says so.
Amount = Annotated[
    Decimal,
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=False)


class Purpose(StrEnum):
    """What the document asks the seller to do with the order."""

    ORIGINAL = "original"
    REPLACE = "replace"
    CANCEL = "cancel"
    CHANGE = "change"
    CONFIRMATION = "confirmation"
    DUPLICATE = "duplicate"
    INFORMATION = "information"
    OTHER = "other"


class Channel(StrEnum):
    """The kind of input an order came from."""

    X12 = "x12"
    EDIFACT = "edifact"
    CXML = "cxml"
    UBL = "ubl"
    EMAIL = "email"
    WEB_FORM = "web_form"
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    CSV = "csv"
    XLSX = "xlsx"
    PDF = "pdf"
    OTHER = "other"


class Contact(_Model):
    name: str | None = Field(None, description="Contact person or department name.")
    email: str | None = Field(None, description="Contact e-mail address.")
    phone: str | None = Field(None, description="Contact telephone number.")
    fax: str | None = Field(None, description="Contact fax number.")


class Party(_Model):
    name: str | None = Field(None, description="Party name (X12 N102, EDIFACT NAD name).")
    code: str | None = Field(None, description="Party identifier as sent (X12 N104, a GLN, a DUNS, ...).")
    code_qualifier: str | None = Field(
        None, description="What kind of identifier `code` is, as sent (X12 N103, e.g. 92 = buyer's own, 1 = DUNS, UL = GLN)."
    )
    address_lines: list[str] = Field(default_factory=list, description="Street address lines, in order (N2 names then N3 streets).")
    city: str | None = Field(None, description="City name.")
    region: str | None = Field(None, description="State, province or region code.")
    postal_code: str | None = Field(None, description="Postal or ZIP code.")
    country: str | None = Field(None, description="Country code, ISO 3166 where the partner sends it.")
    contact: Contact | None = Field(None, description="Contact for this party (X12 PER).")
    references: list[Reference] = Field(default_factory=list, description="References attached to this party (X12 REF inside the N1 loop).")


class Reference(_Model):
    qualifier: str = Field(description="Reference type code as sent (X12 REF01, EDIFACT RFF 1153), e.g. DP = department, IA = vendor number, CT = contract, PD = promotion, CO = customer order.")
    value: str | None = Field(None, description="The reference value.")
    description: str | None = Field(None, description="Free-text description sent with the reference.")
    role: str | None = Field(None, description="Readable name of the qualifier where it is known (department, vendor_number, contract, ...).")


class DatedEvent(_Model):
    role: str = Field(description="What the date means: requested_delivery, requested_ship, ship_not_before, ship_no_later, cancel_after, delivery_not_before, ... or the raw qualifier if unknown.")
    qualifier: str | None = Field(None, description="Date qualifier code as sent (X12 DTM01, EDIFACT DTM 2005).")
    date: dt.date | None = Field(None, description="The date (ISO 8601).")
    time: str | None = Field(None, description="Time of day as sent (HHMM[SS]), if any.")


class PaymentTerms(_Model):
    type_code: str | None = Field(None, description="Terms type code (X12 ITD01).")
    basis_date_code: str | None = Field(None, description="Terms basis date code (X12 ITD02).")
    discount_percent: Amount | None = Field(None, description="Discount percent if paid by the discount due date (ITD03).")
    discount_due_date: dt.date | None = Field(None, description="Date by which the discount applies (ITD04).")
    discount_days: int | None = Field(None, description="Days after the basis date within which the discount applies (ITD05).")
    net_due_date: dt.date | None = Field(None, description="Date the net amount is due (ITD06).")
    net_days: int | None = Field(None, description="Days after the basis date the net amount is due (ITD07).")
    discount_amount: Amount | None = Field(None, description="Discount amount (ITD08).")
    description: str | None = Field(None, description="Terms in words (ITD12), e.g. 'NET 30'.")


class Shipping(_Model):
    routing_sequence: str | None = Field(None, description="Routing sequence code (X12 TD501).")
    carrier_qualifier: str | None = Field(None, description="What kind of code `carrier_code` is (TD502, e.g. 2 = SCAC).")
    carrier_code: str | None = Field(None, description="Carrier identifier such as a SCAC (TD503).")
    transport_method: str | None = Field(None, description="Transportation method code (TD504, e.g. M = motor, A = air).")
    routing: str | None = Field(None, description="Routing text or carrier name (TD505).")
    service_level: str | None = Field(None, description="Service level code (TD512) or the cart's shipping method.")
    fob_payment_method: str | None = Field(None, description="Shipment method of payment (X12 FOB01, e.g. PP = prepaid, CC = collect).")
    fob_location_qualifier: str | None = Field(None, description="Where title passes, qualifier (FOB02).")
    fob_location: str | None = Field(None, description="Where title passes, description (FOB03).")
    incoterms: str | None = Field(None, description="Incoterms code where sent (FOB04/FOB05 with qualifier 01, EDIFACT TOD).")
    incoterms_location: str | None = Field(None, description="Named place for the Incoterms rule.")
    instructions: list[str] = Field(default_factory=list, description="Free-text shipping instructions.")


class AllowanceCharge(_Model):
    indicator: str = Field(description="allowance, charge, or the raw indicator code if neither.")
    code: str | None = Field(None, description="Service, promotion, allowance or charge code (X12 SAC02).")
    amount: Amount | None = Field(None, description="Amount in the order currency (SAC05, implied two decimals already applied).")
    percent: Amount | None = Field(None, description="Percent (SAC07).")
    rate: Amount | None = Field(None, description="Rate per unit (SAC08).")
    quantity: Amount | None = Field(None, description="Quantity the rate applies to (SAC10).")
    handling: str | None = Field(None, description="Method of handling code (SAC12, e.g. 02 = off invoice).")
    description: str | None = Field(None, description="Description (SAC15) or the cart's discount title.")


class Tax(_Model):
    type: str | None = Field(None, description="Tax type code or name (X12 TXI01, cart tax title).")
    amount: Amount | None = Field(None, description="Tax amount.")
    percent: Amount | None = Field(None, description="Tax rate in percent.")
    jurisdiction: str | None = Field(None, description="Tax jurisdiction code or name.")


class Totals(_Model):
    line_count: int | None = Field(None, description="Number of line items the sender declared (X12 CTT01).")
    quantity_total: Amount | None = Field(None, description="Hash total of quantities the sender declared (CTT02).")
    subtotal: Amount | None = Field(None, description="Sum of the lines before allowances, charges and tax.")
    tax_total: Amount | None = Field(None, description="Total tax.")
    shipping_total: Amount | None = Field(None, description="Total shipping charges.")
    discount_total: Amount | None = Field(None, description="Total discounts.")
    total: Amount | None = Field(None, description="Order total as the sender declared it (X12 AMT*TT, cart total_price).")
    amounts: list[Reference] = Field(default_factory=list, description="Other monetary amounts as qualifier and value (X12 AMT).")


class Payment(_Model):
    status: str | None = Field(None, description="Payment status for cart orders (paid, pending, authorized, refunded, ...).")
    method: str | None = Field(None, description="Payment method or gateway name.")
    reference: str | None = Field(None, description="Payment transaction reference.")


class ItemId(_Model):
    qualifier: str = Field(description="Product id qualifier as sent (X12 PO106/108/..., e.g. VP, BP, UP, EN).")
    value: str = Field(description="The product id.")


class Pack(_Model):
    pack: Amount | None = Field(None, description="Inner packs per outer pack (X12 PO401).")
    size: Amount | None = Field(None, description="Size of each inner pack (PO402).")
    uom: str | None = Field(None, description="Unit of the size (PO403).")
    packaging_code: str | None = Field(None, description="Packaging code (PO404).")
    weight: Amount | None = Field(None, description="Gross weight per pack (PO406).")
    weight_uom: str | None = Field(None, description="Unit of the weight (PO407).")
    volume: Amount | None = Field(None, description="Gross volume per pack (PO408).")
    volume_uom: str | None = Field(None, description="Unit of the volume (PO409).")


class Destination(_Model):
    location_qualifier: str | None = Field(None, description="What kind of code the location is (X12 SDQ02, e.g. 92 = buyer's store number).")
    location: str = Field(description="Store or destination code.")
    quantity: Amount = Field(description="Quantity for this destination.")


class OrderLine(_Model):
    line_number: str | None = Field(None, description="Line number as the buyer assigned it (X12 PO101, EDIFACT LIN 1082).")
    quantity: Amount = Field(description="Ordered quantity.")
    uom: str | None = Field(None, description="Unit of measure as sent (X12 PO103, EDIFACT QTY 6411), e.g. EA, CA, PCE.")
    unit_price: Amount | None = Field(None, description="Price per unit (or per price basis) in the order currency.")
    price_basis: str | None = Field(None, description="Basis of the unit price (X12 PO105, e.g. PE = per each, CT = contract).")
    sku: str | None = Field(None, description="The seller's item number (vendor part number).")
    buyer_part_number: str | None = Field(None, description="The buyer's item number.")
    gtin: str | None = Field(None, description="UPC, EAN or GTIN of the item.")
    description: str | None = Field(None, description="Item description (X12 PID*F, EDIFACT IMD).")
    item_ids: list[ItemId] = Field(default_factory=list, description="Every product id the line carried, as qualifier and value.")
    references: list[Reference] = Field(default_factory=list, description="Line-level references.")
    dates: list[DatedEvent] = Field(default_factory=list, description="Line-level dates by role.")
    pack: Pack | None = Field(None, description="Pack information (X12 PO4).")
    destinations: list[Destination] = Field(default_factory=list, description="Per-store or per-destination quantities (X12 SDQ).")
    allowances_charges: list[AllowanceCharge] = Field(default_factory=list, description="Line-level allowances and charges.")
    taxes: list[Tax] = Field(default_factory=list, description="Line-level taxes.")
    prices: list[Reference] = Field(default_factory=list, description="Other prices sent for the line (X12 CTP) as price qualifier and amount.")
    notes: list[str] = Field(default_factory=list, description="Line-level free text.")
    change_code: str | None = Field(
        None,
        description="In a change document, what happens to this line, as sent (X12 POC02: AI add, DI delete, CA change, QI/QD quantity up/down, PC price change; EDIFACT LIN 1229: 1 added, 2 deleted, 3 changed).",
    )
    change: str | None = Field(None, description="The change_code in words: add, delete or change.")


class Source(_Model):
    message_id: str | None = Field(None, description="The gateway's id of the raw message this order came from.")
    file_name: str | None = Field(None, description="Display name of the file or attachment (never used as a path).")
    mail_id: str | None = Field(None, description="Message-ID of the e-mail the order came in.")
    sender_id: str | None = Field(None, description="Interchange sender id (X12 ISA06, EDIFACT UNB sender).")
    sender_qualifier: str | None = Field(None, description="Interchange sender id qualifier (ISA05).")
    receiver_id: str | None = Field(None, description="Interchange receiver id (ISA08).")
    receiver_qualifier: str | None = Field(None, description="Interchange receiver id qualifier (ISA07).")
    interchange_control_number: str | None = Field(None, description="Interchange control number (ISA13, UNB 0020).")
    group_control_number: str | None = Field(None, description="Functional group control number (GS06).")
    transaction_control_number: str | None = Field(None, description="Transaction set control number (ST02, UNH 0062).")
    version: str | None = Field(None, description="Standard version as sent (GS08, e.g. 004010, 005010).")
    test_indicator: str | None = Field(None, description="P for production, T for test (ISA15).")
    updated_at: dt.datetime | None = Field(None, description="When the sender last changed the order, where it says (a cart's updated_at): an older copy arriving late is not a new version.")


class Order(_Model):
    po_number: str = Field(description="The buyer's purchase order number (X12 BEG03, EDIFACT BGM 1004).")
    order_date: dt.date | None = Field(None, description="Date of the purchase order (ISO 8601).")
    purpose: Purpose = Field(Purpose.ORIGINAL, description="original, replace, cancel, change, confirmation, duplicate, information or other.")
    order_type: str | None = Field(None, description="Order type code as sent (X12 BEG02, e.g. SA = stand-alone, DS = drop ship).")
    release_number: str | None = Field(None, description="Release number against a blanket order (BEG04).")
    contract_number: str | None = Field(None, description="Contract number (BEG06).")
    currency: str | None = Field(None, description="ISO 4217 currency code of all prices.")
    requested_delivery_date: dt.date | None = Field(None, description="Date the buyer wants the goods delivered.")
    channel: Channel = Field(description="The kind of input the order came from.")
    partner: str | None = Field(None, description="Configured trading partner or store name, when known.")
    notes: list[str] = Field(default_factory=list, description="Free-text notes and messages for the order.")
    buyer: Party | None = Field(None, description="The buying party (X12 N1*BY, EDIFACT NAD+BY).")
    seller: Party | None = Field(None, description="The selling party (X12 N1*SE or SU/VN, EDIFACT NAD+SU).")
    ship_to: Party | None = Field(None, description="Where the goods go (X12 N1*ST, EDIFACT NAD+DP/ST).")
    bill_to: Party | None = Field(None, description="Who is invoiced (X12 N1*BT, EDIFACT NAD+IV).")
    other_parties: dict[str, Party] = Field(default_factory=dict, description="Any other party by its role code as sent (e.g. X12 N1*PO payer, N1*DU reseller).")
    customer_email: str | None = Field(None, description="The ordering customer's e-mail (cart and web orders).")
    customer_phone: str | None = Field(None, description="The ordering customer's phone (cart and web orders).")
    lines: list[OrderLine] = Field(default_factory=list, description="The ordered items.")
    lines_are_changes: bool = Field(
        False,
        description="True when `lines` lists only the lines that change (X12 860, EDIFACT ORDCHG); the gateway merges them onto the order's current version.",
    )
    references: list[Reference] = Field(default_factory=list, description="Header references as qualifier and value (department, vendor number, contract, promotion, customer order, ...).")
    dates: list[DatedEvent] = Field(default_factory=list, description="Every header date by role (requested ship, ship not before, ship no later, cancel after, ...).")
    payment_terms: list[PaymentTerms] = Field(default_factory=list, description="Payment terms (X12 ITD).")
    shipping: Shipping | None = Field(None, description="Carrier, service level, FOB/Incoterms and shipping instructions.")
    allowances_charges: list[AllowanceCharge] = Field(default_factory=list, description="Header allowances and charges (X12 SAC, cart discounts and shipping lines).")
    taxes: list[Tax] = Field(default_factory=list, description="Header taxes.")
    totals: Totals | None = Field(None, description="Totals the sender declared.")
    payment: Payment | None = Field(None, description="Payment status and method (cart orders).")
    unmapped: list[str] = Field(default_factory=list, description="Segments or fields the mapping did not understand, kept verbatim so nothing is silently dropped.")
    extensions: dict[str, Any] = Field(default_factory=dict, description="Partner-specific values a mapping chose to keep (a JSON object).")
    # Kept last: the pipeline hashes the serialized order up to this field (see pipeline.py).
    source: Source = Field(default_factory=Source, description="Where the order came from.")


Party.model_rebuild()


def content_digest(text: str) -> str:
    """The sha256 of an order's JSON (`Order.model_dump_json()`) without its `source`: the same
    order in another envelope, file or e-mail has the same digest (a re-sent order is
    recognised by it, and an order's sources read again are checked against it).

    `source` is the model's last field and a quote inside a JSON string is always escaped, so
    the last ``,"source":{`` is the start of that field."""
    return hashlib.sha256(text[: text.rfind(',"source":{')].encode()).hexdigest()


def order_json_schema() -> dict[str, Any]:
    """The JSON Schema of the canonical order, as its JSON serialization looks."""
    schema = Order.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://order-gateway.dev/schema/order.json"
    return schema

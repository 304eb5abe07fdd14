"""UblParser and map_ubl_order: Order, OrderChange, OrderCancellation; exact values, provenance."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import ConfigError, MappingError, ParseError
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.formats.cxml import CxmlParser
from gateway.formats.ubl import CAC, CBC, UblParser, ubl_namespace
from gateway.mapping.ubl_order import default_ubl_tables, load_ubl_tables, map_ubl_order
from gateway.model import Order, Purpose

FIXTURES = Path(__file__).parents[1] / "fixtures" / "xml"
FULL = FIXTURES / "ubl_order_full.xml"
D = Decimal
NSDECL = f'xmlns:cac="{CAC}" xmlns:cbc="{CBC}"'


def events(data: bytes, parser: UblParser | None = None) -> list[Event]:
    return list((parser or UblParser()).parse(io.BytesIO(data), name="test.xml"))


def document(data: bytes) -> Document:
    (doc,) = [e for e in events(data) if isinstance(e, Document)]
    return doc


def ubl(doc_type: str, body: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<{doc_type} xmlns="{ubl_namespace(doc_type)}" {NSDECL}>\n'
        f"{body}\n</{doc_type}>"
    ).encode()


LINE = (
    "<cac:OrderLine><cac:LineItem><cbc:ID>1</cbc:ID>"
    '<cbc:Quantity unitCode="EA">3</cbc:Quantity></cac:LineItem></cac:OrderLine>'
)


def order(body: str = "", lines: str = LINE) -> bytes:
    return ubl(
        "Order", f"<cbc:ID>PO-1</cbc:ID><cbc:IssueDate>2024-05-06</cbc:IssueDate>{body}{lines}"
    )


def mapped(data: bytes, trace: dict[str, str] | None = None) -> Order:
    return map_ubl_order(document(data), trace=trace)


def mapping_error(data: bytes) -> MappingError:
    with pytest.raises(MappingError) as info:
        mapped(data)
    return info.value


@pytest.fixture(scope="module")
def full_events() -> list[Event]:
    return events(FULL.read_bytes())


@pytest.fixture(scope="module")
def full_trace() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def full(full_events: list[Event], full_trace: dict[str, str]) -> Order:
    (doc,) = [e for e in full_events if isinstance(e, Document)]
    return map_ubl_order(doc, trace=full_trace)


# -- the parser ----------------------------------------------------------------------------------


def test_parser_surface_and_sniff():
    parser = UblParser()
    assert parser.name == "ubl"
    assert parser.sniff(FULL.read_bytes()[:4096])
    assert parser.sniff(f'<ord:OrderChange xmlns:ord="{ubl_namespace("OrderChange")}">'.encode())
    assert parser.sniff(f'<Invoice xmlns="{ubl_namespace("Invoice")}">'.encode())
    assert not parser.sniff(f'<Order xmlns:x="{ubl_namespace("Order")}">'.encode())  # unbound
    assert not parser.sniff(f'<cbc:ID xmlns:cbc="{CBC}">'.encode())
    assert not parser.sniff(b"<cXML/>")
    assert not parser.sniff(b"<Order/>")
    assert not parser.sniff(b"UNA:+.? '")
    assert not CxmlParser().sniff(FULL.read_bytes()[:4096])


def test_envelope_and_document(full_events: list[Event]):
    assert [type(e).__name__ for e in full_events] == [
        "InterchangeOpened",
        "Document",
        "InterchangeClosed",
    ]
    opened, doc, closed = full_events
    assert isinstance(opened, InterchangeOpened)
    env = opened.envelope
    assert env.standard == "ubl"
    assert (env.sender_id, env.sender_qualifier) == ("7300010000001", "0088")
    assert (env.receiver_id, env.receiver_qualifier) == ("987654325", "0192")
    assert env.interchange_control_number == "PO-UBL-77/0f9d3c5e-1111-2222-3333-444455556666"
    assert env.version == "2.1"
    assert isinstance(doc, Document)
    assert (doc.doc_type, doc.control_number, doc.index) == ("Order", "PO-UBL-77", 0)
    assert doc.position == "line 5"  # libxml2 counts the line where the start tag ends
    assert isinstance(doc.body, etree._Element)
    assert isinstance(closed, InterchangeClosed)
    assert closed.document_count == 1
    root = etree.fromstring(FULL.read_bytes(), etree.XMLParser(remove_comments=True))
    assert closed.digest == hashlib.sha256(etree.tostring(root, method="c14n")).hexdigest()


def test_sender_falls_back_to_party_identification():
    body = (
        "<cac:BuyerCustomerParty><cac:Party><cac:PartyIdentification>"
        '<cbc:ID schemeID="0088">5790000000001</cbc:ID></cac:PartyIdentification>'
        "</cac:Party></cac:BuyerCustomerParty>"
    )
    opened = events(order(body))[0]
    assert isinstance(opened, InterchangeOpened)
    assert (opened.envelope.sender_id, opened.envelope.sender_qualifier) == (
        "5790000000001",
        "0088",
    )
    assert opened.envelope.interchange_control_number == "PO-1"


def test_prefixed_root_and_ubl_20_style():
    data = (
        f'<ord:Order xmlns:ord="{ubl_namespace("Order")}" {NSDECL}>'
        "<cbc:UBLVersionID>2.0</cbc:UBLVersionID><cbc:ID>P-20</cbc:ID>"
        "<cac:Delivery><cbc:LatestDeliveryDate>2010-02-26</cbc:LatestDeliveryDate>"
        "<cac:DeliveryAddress><cbc:StreetName>Avon Way</cbc:StreetName>"
        "<cbc:BuildingNumber>56A</cbc:BuildingNumber><cbc:CityName>Bridgtow</cbc:CityName>"
        "</cac:DeliveryAddress></cac:Delivery>"
        f"{LINE}</ord:Order>"
    ).encode()
    assert UblParser().sniff(data)
    trace: dict[str, str] = {}
    result = mapped(data, trace)
    assert result.po_number == "P-20"
    assert result.extensions["ubl_version"] == "2.0"
    assert result.ship_to is not None
    assert (result.ship_to.address_lines, result.ship_to.city) == (["Avon Way 56A"], "Bridgtow")
    assert [(d.role, d.date.isoformat()) for d in result.dates] == [
        ("do_not_deliver_after", "2010-02-26")
    ]
    assert trace["po_number"] == "/Order/cbc:ID"


def test_other_ubl_documents_are_rejected():
    for doc_type in ("OrderResponse", "DespatchAdvice", "Invoice", "ApplicationResponse"):
        evs = events(ubl(doc_type, "<cbc:ID>X-1</cbc:ID>"))
        (rejected,) = [e for e in evs if isinstance(e, DocumentRejected)]
        assert (rejected.reason, rejected.doc_type, rejected.control_number) == (
            "NOT_AN_ORDER",
            doc_type,
            "X-1",
        )
        assert doc_type in rejected.message
        assert isinstance(evs[-1], InterchangeClosed)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<Order/>", "NOT_UBL"),
        (f'<Order xmlns="{CBC}"/>'.encode(), "NOT_UBL"),
        (f'<Order xmlns="{ubl_namespace("OrderChange")}"/>'.encode(), "UBL_NAMESPACE"),
        (f'<Order xmlns="{ubl_namespace("Order")}">'.encode(), "XML_SYNTAX"),
        (
            f'<!DOCTYPE Order [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            f'<Order xmlns="{ubl_namespace("Order")}">&e;</Order>'.encode(),
            "XML_FORBIDDEN",
        ),
    ],
)
def test_unreadable_documents_raise_parse_error(data: bytes, reason: str):
    with pytest.raises(ParseError) as info:
        events(data)
    assert info.value.reason == reason
    assert info.value.position


def test_limits_apply():
    with pytest.raises(ParseError) as info:
        events(FULL.read_bytes(), UblParser(max_bytes=2000))
    assert info.value.reason == "XML_LIMIT"
    with pytest.raises(ParseError) as info:
        events(FULL.read_bytes(), UblParser(max_depth=4))
    assert info.value.reason == "XML_LIMIT"


# -- the mapping: every field of the full fixture ------------------------------------------------


def test_header(full: Order):
    assert full.channel == "ubl"
    assert full.po_number == "PO-UBL-77"
    assert full.purpose is Purpose.ORIGINAL
    assert full.order_date.isoformat() == "2024-03-04"
    assert full.order_type == "220"
    assert full.currency == "EUR"
    assert full.contract_number == "FW-2024"
    assert full.notes == ["Deliver to the back entrance", "Ring twice"]
    assert full.requested_delivery_date.isoformat() == "2024-03-15"
    assert [d.model_dump(exclude_none=True) for d in full.dates] == [
        {
            "role": "requested_delivery",
            "qualifier": "RequestedDeliveryPeriod/StartDate",
            "date": full.requested_delivery_date,
            "time": "08:00:00",
        },
        {
            "role": "do_not_deliver_after",
            "qualifier": "RequestedDeliveryPeriod/EndDate",
            "date": full.dates[1].date,
        },
        {"role": "valid_until", "qualifier": "ValidityPeriod/EndDate", "date": full.dates[2].date},
    ]
    assert [d.date.isoformat() for d in full.dates] == ["2024-03-15", "2024-03-16", "2024-03-31"]
    assert full.extensions == {
        "ubl_version": "2.1",
        "ubl_customization_id": "urn:fdc:peppol.eu:poacc:trns:order:3",
        "ubl_profile_id": "urn:fdc:peppol.eu:poacc:bis:order_only:3",
        "ubl_uuid": "0f9d3c5e-1111-2222-3333-444455556666",
    }
    assert full.source.transaction_control_number == "PO-UBL-77"
    assert full.source.sender_id == "7300010000001"


def test_references(full: Order):
    assert [(r.qualifier, r.value, r.role) for r in full.references] == [
        ("SalesOrderID", "SO-5", "sales_order"),
        ("CustomerReference", "CR-42", "customer_reference"),
        ("AccountingCost", "PRJ-9", "accounting_cost"),
        ("Contract", "FW-2024", "contract"),
        ("QuotationDocumentReference", "Q-17", "quotation"),
        ("OriginatorDocumentReference", "REQ-3", "originator_document"),
        ("AdditionalDocumentReference", "DRW-1", "additional_document"),
    ]
    assert full.references[3].description == "Framework agreement"
    assert full.references[6].description == "Drawing"


def test_parties(full: Order):
    assert full.buyer is not None
    assert full.buyer.model_dump(exclude_none=True) == {
        "name": "City Hospital",
        "code": "7300010000002",
        "code_qualifier": "0088",
        "address_lines": ["Main street 4", "Back door", "Floor 2"],
        "city": "Eurocity",
        "region": "Region A",
        "postal_code": "11155",
        "country": "SE",
        "contact": {
            "name": "Martin Foggerty",
            "phone": "+46555785488",
            "email": "martin@cityhospital.example",
        },
        "references": [
            {"qualifier": "0088", "value": "7300010000001", "role": "endpoint"},
            {"qualifier": "0007", "value": "5541277711", "role": "company_id"},
            {"qualifier": "VAT", "value": "SE554127771101", "role": "tax_id"},
        ],
    }
    assert full.seller is not None
    assert (full.seller.name, full.seller.code, full.seller.code_qualifier) == (
        "Cod Liver Oil Ltd",
        "987654325",
        "0192",
    )
    assert (full.seller.city, full.seller.country) == ("Bergen", "NO")
    assert full.ship_to is not None
    assert full.ship_to.model_dump(exclude_none=True) == {
        "name": "Hospital Stores",
        "code": "7300010000005",
        "code_qualifier": "0088",
        "address_lines": ["Lower street 5"],
        "city": "Stockholm",
        "postal_code": "11120",
        "country": "SE",
        "contact": {"name": "John", "phone": "+465558877523"},
        "references": [],
    }
    assert full.bill_to is not None
    assert (full.bill_to.name, full.bill_to.code, full.bill_to.postal_code) == (
        "Hospital Accounts",
        "7300010000009",
        "11199",
    )
    assert list(full.other_parties) == ["originator"]
    originator = full.other_parties["originator"]
    assert originator.name == "Surgery Department"
    assert originator.contact is not None and originator.contact.name == "Dr Bengt"


def test_money(full: Order):
    assert [a.model_dump(exclude_none=True) for a in full.allowances_charges] == [
        {"indicator": "charge", "code": "FC", "amount": D("10.00"), "description": "Freight"},
        {
            "indicator": "allowance",
            "code": "95",
            "amount": D("5.00"),
            "percent": D("5"),
            "description": "Discount",
        },
    ]
    assert [t.model_dump(exclude_none=True) for t in full.taxes] == [
        {"type": "VAT:S", "amount": D("26.25"), "percent": D("25")}
    ]
    assert full.totals is not None
    assert full.totals.model_dump(exclude_none=True) == {
        "line_count": 2,
        "subtotal": D("100.00"),
        "tax_total": D("26.25"),
        "discount_total": D("5.00"),
        "total": D("131.25"),
        "amounts": [
            {"qualifier": "TaxExclusiveAmount", "value": "105.00"},
            {"qualifier": "TaxInclusiveAmount", "value": "131.25"},
            {"qualifier": "ChargeTotalAmount", "value": "10.00"},
        ],
    }
    assert [t.model_dump(exclude_none=True) for t in full.payment_terms] == [
        {"description": "30 days net"}
    ]
    assert full.shipping is not None
    assert full.shipping.model_dump(exclude_none=True) == {
        "incoterms": "DAP",
        "incoterms_location": "Stockholm",
        "instructions": ["Unload at dock"],
    }


def test_lines(full: Order):
    first, second = full.lines
    assert (first.line_number, first.quantity, first.uom) == ("1", D("120"), "EA")
    assert first.unit_price == D("0.5")  # 5.00 per BaseQuantity 10
    assert (first.sku, first.buyer_part_number, first.gtin) == (
        "S-121212",
        "B-123",
        "07300010000018",
    )
    assert first.description == "Needle 4mm - Needle, 4 mm, sterile"
    assert [(i.qualifier, i.value) for i in first.item_ids] == [
        ("SellersItemIdentification", "S-121212"),
        ("BuyersItemIdentification", "B-123"),
        ("ManufacturersItemIdentification", "M-659"),
        ("StandardItemIdentification:0160", "07300010000018"),
        ("classification:STI", "42142523"),
    ]
    assert [(d.role, d.date.isoformat()) for d in first.dates] == [
        ("requested_delivery", "2024-03-10"),
        ("do_not_deliver_after", "2024-03-12"),
    ]
    assert [a.model_dump(exclude_none=True) for a in first.allowances_charges] == [
        {"indicator": "charge", "code": "ABK", "amount": D("2.00"), "description": "Handling"}
    ]
    assert [t.model_dump(exclude_none=True) for t in first.taxes] == [
        {"type": "VAT:S", "percent": D("25")}
    ]
    assert [(p.qualifier, p.value) for p in first.prices] == [("line_extension_amount", "60.00")]
    assert [(r.qualifier, r.value, r.role) for r in first.references] == [
        ("AccountingCost", "CC-1", "accounting_cost")
    ]
    assert first.notes == ["Sterile packaging", "Length: 4 mm"]
    # A StandardItemIdentification without schemeID: 13 digits is taken as a GTIN.
    assert (second.gtin, second.sku, second.unit_price, second.uom) == (
        "4006381333931",
        None,
        D("10.00"),
        "BX",
    )
    assert [a.model_dump(exclude_none=True) for a in second.allowances_charges] == [
        {"indicator": "allowance", "amount": D("2.00"), "handling": "price"}
    ]
    assert [(p.qualifier, p.value) for p in second.prices] == [("gross_price", "12.00")]


def test_what_is_not_mapped_is_kept(full: Order):
    assert full.unmapped == [
        "/Order/cbc:IssueTime=10:15:00",
        "/Order/cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject="
        "[embedded application/pdf drawing.pdf, 260 characters omitted]",
        "/Order/cac:BuyerCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName=City Hospital AB",
        "/Order/cac:AllowanceCharge[2]/cbc:BaseAmount=100.00",
        "/Order/cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount=105.00",
    ]


def test_trace(full: Order, full_trace: dict[str, str]):
    assert full_trace["po_number"] == "/Order/cbc:ID"
    assert full_trace["order_date"] == "/Order/cbc:IssueDate"
    assert full_trace["currency"] == "/Order/cbc:DocumentCurrencyCode"
    assert full_trace["buyer.code"] == (
        "/Order/cac:BuyerCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID"
    )
    assert full_trace["buyer.code_qualifier"] == (
        "/Order/cac:BuyerCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID/@schemeID"
    )
    assert (
        full_trace["ship_to.name"] == "/Order/cac:Delivery/cac:DeliveryParty/cac:PartyName/cbc:Name"
    )
    assert full_trace["ship_to.code"] == "/Order/cac:Delivery/cac:DeliveryLocation/cbc:ID"
    assert full_trace["requested_delivery_date"] == (
        "/Order/cac:Delivery/cac:RequestedDeliveryPeriod/cbc:StartDate"
    )
    assert full_trace["totals.total"] == "/Order/cac:AnticipatedMonetaryTotal/cbc:PayableAmount"
    assert full_trace["lines[0].quantity"] == "/Order/cac:OrderLine[1]/cac:LineItem/cbc:Quantity"
    assert (
        full_trace["lines[0].uom"] == "/Order/cac:OrderLine[1]/cac:LineItem/cbc:Quantity/@unitCode"
    )
    assert full_trace["lines[1].gtin"] == (
        "/Order/cac:OrderLine[2]/cac:LineItem/cac:Item/cac:StandardItemIdentification/cbc:ID"
    )
    # Every traced path points at something in the document.
    root = etree.parse(str(FULL)).getroot()
    ns = {"cac": CAC, "cbc": CBC, "o": ubl_namespace("Order")}
    for field, path in full_trace.items():
        element_path, _, attr = path.partition("/@")
        (el,) = root.xpath(element_path.replace("/Order", "/o:Order", 1), namespaces=ns)
        assert not attr or el.get(attr) is not None, field


# -- OrderChange and OrderCancellation -----------------------------------------------------------


def test_order_change():
    data = ubl(
        "OrderChange",
        "<cbc:ID>Change-1</cbc:ID><cbc:IssueDate>2022-02-01</cbc:IssueDate>"
        "<cbc:SequenceNumberID>2</cbc:SequenceNumberID><cbc:Note>Quantities changed</cbc:Note>"
        "<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>"
        "<cac:OrderReference><cbc:ID>Order-1</cbc:ID></cac:OrderReference>"
        "<cac:OrderLine><cac:LineItem><cbc:ID>1</cbc:ID><cbc:LineStatusCode>3</cbc:LineStatusCode>"
        '<cbc:Quantity unitCode="NAR">5</cbc:Quantity><cac:Price>'
        '<cbc:PriceAmount currencyID="EUR">40</cbc:PriceAmount></cac:Price>'
        "<cac:Item><cbc:Name>Item 1</cbc:Name></cac:Item></cac:LineItem></cac:OrderLine>",
    )
    trace: dict[str, str] = {}
    change = mapped(data, trace)
    assert change.purpose is Purpose.CHANGE
    assert change.po_number == "Order-1"  # the order it changes: how it is linked
    assert change.extensions["ubl_sequence_number"] == "2"
    assert [r.model_dump(exclude_none=True) for r in change.references] == [
        {"qualifier": "ID", "value": "Change-1", "role": "order_change"}
    ]
    assert trace["po_number"] == "/OrderChange/cac:OrderReference/cbc:ID"
    (line,) = change.lines
    assert (line.quantity, line.uom, line.unit_price, line.description) == (
        D("5"),
        "NAR",
        D("40"),
        "Item 1",
    )
    assert [(r.qualifier, r.value, r.role) for r in line.references] == [
        ("LineStatusCode", "3", "line_status")
    ]
    assert change.notes == ["Quantities changed"]


def test_order_cancellation_without_lines():
    data = ubl(
        "OrderCancellation",
        "<cbc:ID>Cancellation-1</cbc:ID><cbc:IssueDate>2022-02-01</cbc:IssueDate>"
        "<cbc:CancellationNote>With reference to phone call</cbc:CancellationNote>"
        "<cac:OrderReference><cbc:ID>Order-1</cbc:ID></cac:OrderReference>",
    )
    trace: dict[str, str] = {}
    cancel = mapped(data, trace)
    assert cancel.purpose is Purpose.CANCEL
    assert cancel.po_number == "Order-1"
    assert trace["po_number"] == "/OrderCancellation/cac:OrderReference/cbc:ID"
    assert cancel.notes == ["With reference to phone call"]
    assert cancel.lines == []
    assert [r.model_dump(exclude_none=True) for r in cancel.references] == [
        {"qualifier": "ID", "value": "Cancellation-1", "role": "cancellation"}
    ]
    assert cancel.order_date is not None and cancel.order_date.isoformat() == "2022-02-01"


def test_cancellation_must_name_the_order():
    data = ubl("OrderCancellation", "<cbc:ID>Cancellation-1</cbc:ID>")
    exc = mapping_error(data)
    assert exc.reason == "MISSING_PO_NUMBER"
    assert exc.position == "/OrderCancellation/cac:OrderReference/cbc:ID"


def test_copy_indicator_makes_a_duplicate():
    doc = document(order("<cbc:CopyIndicator>true</cbc:CopyIndicator>"))
    assert doc.warnings and "copy" in doc.warnings[0]
    assert map_ubl_order(doc).purpose is Purpose.DUPLICATE


# -- errors --------------------------------------------------------------------------------------


def test_missing_id():
    exc = mapping_error(ubl("Order", LINE))
    assert exc.reason == "MISSING_PO_NUMBER"
    assert exc.position == "/Order/cbc:ID"


def test_bad_quantity():
    lines = (
        LINE + "<cac:OrderLine><cac:LineItem><cbc:ID>2</cbc:ID>"
        "<cbc:Quantity>1.000,5</cbc:Quantity></cac:LineItem></cac:OrderLine>"
    )
    exc = mapping_error(order(lines=lines))
    assert exc.reason == "XML_BAD_NUMBER"
    assert exc.position == "/Order/cac:OrderLine[2]/cac:LineItem/cbc:Quantity"
    assert "'1.000,5'" in exc.message


def test_missing_quantity():
    exc = mapping_error(
        order(
            lines="<cac:OrderLine><cac:LineItem><cbc:ID>1</cbc:ID></cac:LineItem></cac:OrderLine>"
        )
    )
    assert exc.reason == "XML_MISSING_QUANTITY"
    assert exc.position == "/Order/cac:OrderLine[1]/cac:LineItem/cbc:Quantity"


def test_bad_amount_date_and_base_quantity():
    exc = mapping_error(
        order(
            "<cac:AnticipatedMonetaryTotal><cbc:PayableAmount>1e5</cbc:PayableAmount></cac:AnticipatedMonetaryTotal>"
        )
    )
    assert (exc.reason, exc.position) == (
        "XML_BAD_NUMBER",
        "/Order/cac:AnticipatedMonetaryTotal/cbc:PayableAmount",
    )
    exc = mapping_error(ubl("Order", "<cbc:ID>P</cbc:ID><cbc:IssueDate>06.05.2024</cbc:IssueDate>"))
    assert (exc.reason, exc.position) == ("XML_BAD_DATE", "/Order/cbc:IssueDate")
    lines = (
        "<cac:OrderLine><cac:LineItem><cbc:ID>1</cbc:ID><cbc:Quantity>1</cbc:Quantity><cac:Price>"
        "<cbc:PriceAmount>5</cbc:PriceAmount><cbc:BaseQuantity>0</cbc:BaseQuantity></cac:Price>"
        "</cac:LineItem></cac:OrderLine>"
    )
    exc = mapping_error(order(lines=lines))
    assert (exc.reason, exc.position) == (
        "XML_BAD_NUMBER",
        "/Order/cac:OrderLine[1]/cac:LineItem/cac:Price/cbc:BaseQuantity",
    )


def test_not_an_order():
    doc = Document(
        envelope=events(ubl("Invoice", "<cbc:ID>I</cbc:ID>"))[0].envelope,  # type: ignore[union-attr]
        doc_type="Invoice",
        control_number="I",
        body=None,
        position="line 2",
        index=0,
    )
    with pytest.raises(MappingError) as info:
        map_ubl_order(doc)
    assert info.value.reason == "NOT_AN_ORDER"


def test_currency_falls_back_to_the_payable_amount():
    body = (
        "<cac:AnticipatedMonetaryTotal>"
        '<cbc:PayableAmount currencyID="SEK">10</cbc:PayableAmount></cac:AnticipatedMonetaryTotal>'
    )
    assert mapped(order(body)).currency == "SEK"


def test_requested_delivery_from_the_lines_when_the_header_has_none():
    lines = (
        "<cac:OrderLine><cac:LineItem><cbc:ID>1</cbc:ID><cbc:Quantity>1</cbc:Quantity>"
        "<cac:Delivery><cac:RequestedDeliveryPeriod><cbc:StartDate>2024-07-09</cbc:StartDate>"
        "</cac:RequestedDeliveryPeriod></cac:Delivery></cac:LineItem></cac:OrderLine>"
        "<cac:OrderLine><cac:LineItem><cbc:ID>2</cbc:ID><cbc:Quantity>1</cbc:Quantity>"
        "<cac:Delivery><cac:RequestedDeliveryPeriod><cbc:StartDate>2024-07-02</cbc:StartDate>"
        "</cac:RequestedDeliveryPeriod></cac:Delivery></cac:LineItem></cac:OrderLine>"
    )
    result = mapped(order(lines=lines))
    assert result.requested_delivery_date is not None
    assert result.requested_delivery_date.isoformat() == "2024-07-02"


# -- code tables ---------------------------------------------------------------------------------


def test_default_tables():
    tables = default_ubl_tables()
    assert tables.purpose["OrderChange"] is Purpose.CHANGE
    assert tables.party_roles["AccountingCustomerParty"] == "bill_to"
    assert tables.item_schemes["0160"] == "gtin"


def test_override_file(tmp_path: Path):
    override = tmp_path / "partner.yaml"
    override.write_text(
        'party_roles:\n  OriginatorCustomerParty: ship_to\nitem_schemes:\n  "0160": null\n'
    )
    tables = load_ubl_tables(overrides=[override])
    assert tables.party_roles["OriginatorCustomerParty"] == "ship_to"
    assert "0160" not in tables.item_schemes


def test_table_problems_are_reported_together(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "purpose:\n  Order: sold\nparty_roles:\n  BuyerCustomerParty: Not Snake\n"
        "item_schemes:\n  160: gtin\n  GTIN: colour\n"
    )
    with pytest.raises(ConfigError) as info:
        load_ubl_tables(bad)
    text = str(info.value)
    for expected in (
        "'sold' is not one of",
        "'Not Snake' must be a snake_case name",
        "YAML read 160 as int",
        "'colour' is not one of",
    ):
        assert expected in text

"""CxmlParser and map_order_request: envelope, rejections, exact field values, provenance."""

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
from gateway.formats.cxml import CxmlParser, CxmlRequest
from gateway.formats.ubl import UblParser
from gateway.mapping.cxml_order import (
    DEFAULT_TABLES_PATH,
    default_cxml_tables,
    load_cxml_tables,
    map_order_request,
)
from gateway.model import Order, Purpose

FIXTURES = Path(__file__).parents[1] / "fixtures" / "xml"
FULL = FIXTURES / "cxml_order_full.xml"
SECRET = "CANARY-SHARED-SECRET-7f3a"
CARD = "4111111111111111"
D = Decimal
H = "/cXML/Request/OrderRequest/OrderRequestHeader"


def events(data: bytes, parser: CxmlParser | None = None) -> list[Event]:
    return list((parser or CxmlParser()).parse(io.BytesIO(data), name="test.xml"))


def documents(data: bytes) -> list[Document]:
    return [e for e in events(data) if isinstance(e, Document)]


def cxml(body: str, *, header: bool = True, mode: str = "production") -> bytes:
    head = (
        "<Header><From><Credential domain='DUNS'><Identity>111</Identity></Credential></From>"
        "<To><Credential domain='NetworkID'><Identity>AN2</Identity></Credential></To>"
        "<Sender><Credential domain='NetworkID'><Identity>AN1</Identity>"
        f"<SharedSecret>{SECRET}</SharedSecret></Credential></Sender></Header>"
        if header
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/schemas/cXML/1.2.014/cXML.dtd">\n'
        f'<cXML payloadID="p-1@test" timestamp="2024-01-01T00:00:00Z">{head}'
        f'<Request deploymentMode="{mode}">{body}</Request></cXML>'
    ).encode()


def order_request(
    attrs: str = 'orderID="PO-1" orderDate="2024-01-15T10:00:00+01:00" type="new"',
    header: str = "",
    items: str = '<ItemOut lineNumber="1" quantity="2"><ItemID><SupplierPartID>A</SupplierPartID>'
    "</ItemID></ItemOut>",
) -> bytes:
    return cxml(
        f"<OrderRequest><OrderRequestHeader {attrs}>{header}</OrderRequestHeader>{items}"
        "</OrderRequest>"
    )


def mapped(data: bytes, trace: dict[str, str] | None = None) -> Order:
    (doc,) = documents(data)
    return map_order_request(doc, trace=trace)


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
    return map_order_request(doc, trace=full_trace)


# -- the parser ----------------------------------------------------------------------------------


def test_parser_surface_and_sniff():
    parser = CxmlParser()
    assert parser.name == "cxml"
    assert parser.sniff(FULL.read_bytes()[:4096])
    assert parser.sniff(b"<cXML/>")
    assert parser.sniff(b'<?xml version="1.0"?>\n  <cxml version="1.2.020">')  # to say why not
    assert not parser.sniff(b"ISA*00*")
    assert not parser.sniff(b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2">')
    assert not parser.sniff(b"<x:cXML xmlns:x='urn:x'/>")
    assert not parser.sniff(b"")


def test_sniffs_are_mutually_exclusive():
    heads = [
        FULL.read_bytes(),
        (FIXTURES / "ubl_order_full.xml").read_bytes(),
        b"<cXML/>",
        b"<cxml/>",
        b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>',
        b"<x/>",
    ]
    for head in heads:
        assert not (CxmlParser().sniff(head[:4096]) and UblParser().sniff(head[:4096]))


def test_envelope_and_document(full_events: list[Event]):
    assert [type(e).__name__ for e in full_events] == [
        "InterchangeOpened",
        "Document",
        "InterchangeClosed",
    ]
    opened, doc, closed = full_events
    assert isinstance(opened, InterchangeOpened) and opened.warnings == []
    env = opened.envelope
    assert env.standard == "cxml"
    assert (env.sender_id, env.sender_qualifier) == ("AN0100000001", "NetworkID")
    assert (env.receiver_id, env.receiver_qualifier) == ("AN0100000999", "NetworkID")
    assert env.interchange_control_number == "20240115.1200.42@buyer.example"
    assert env.version == "1.2.014"  # from the DTD address: the root has no @version
    assert env.test_indicator == "T"
    assert env.interchange_key == "cxml|NetworkID:AN0100000001|20240115.1200.42@buyer.example"
    assert isinstance(doc, Document)
    assert doc.doc_type == "OrderRequest"
    assert doc.control_number == "20240115.1200.42@buyer.example"
    line = FULL.read_text().splitlines().index("    <OrderRequest>") + 1
    assert doc.position == f"line {line}"
    assert doc.index == 0
    assert isinstance(doc.body, CxmlRequest)
    assert doc.body.request.tag == "OrderRequest"
    assert doc.body.header is not None
    assert doc.body.deployment_mode == "test"
    assert isinstance(closed, InterchangeClosed)
    assert closed.document_count == 1 and closed.errors == []


def test_digest_is_sha256_of_the_canonical_document(full_events: list[Event]):
    closed = full_events[-1]
    assert isinstance(closed, InterchangeClosed)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
    root = etree.fromstring(FULL.read_bytes(), parser)
    assert closed.digest == hashlib.sha256(etree.tostring(root, method="c14n")).hexdigest()
    # The same document written differently (attribute order, quotes, comments) digests equal.
    a = events(b'<cXML payloadID="1" timestamp="t"><Response/></cXML>')[-1]
    b = events(b"<!-- hi --><cXML timestamp='t'  payloadID='1'><Response/></cXML>")[-1]
    c = events(b'<cXML payloadID="2" timestamp="t"><Response/></cXML>')[-1]
    assert isinstance(a, InterchangeClosed) and isinstance(b, InterchangeClosed)
    assert isinstance(c, InterchangeClosed)
    assert a.digest == b.digest != c.digest


def test_shared_secrets_never_reach_the_body_or_the_order(full_events: list[Event], full: Order):
    doc = full_events[1]
    assert isinstance(doc, Document)
    assert SECRET.encode() not in etree.tostring(doc.body.root)
    assert SECRET not in full.model_dump_json()
    assert CARD not in full.model_dump_json()
    assert "2026-12-31" not in full.model_dump_json()  # the card's expiry


def test_other_cxml_documents_are_rejected_by_name():
    cases = {
        "ConfirmationRequest": cxml(
            "<ConfirmationRequest><ConfirmationHeader/></ConfirmationRequest>"
        ),
        "ShipNoticeRequest": cxml("<ShipNoticeRequest><ShipNoticeHeader/></ShipNoticeRequest>"),
        "StatusUpdateRequest": cxml("<StatusUpdateRequest/>"),
        "QuoteRequest": cxml("<QuoteRequest/>"),
    }
    for doc_type, data in cases.items():
        evs = events(data)
        (rejected,) = [e for e in evs if isinstance(e, DocumentRejected)]
        assert rejected.reason == "NOT_AN_ORDER"
        assert rejected.doc_type == doc_type
        assert doc_type in rejected.message and "OrderRequest" in rejected.message
        assert rejected.position.startswith("line ")
        assert isinstance(evs[-1], InterchangeClosed) and evs[-1].document_count == 1


def test_punchout_message_and_response_are_rejected():
    message = b"<cXML payloadID='m'><Header/><Message><PunchOutOrderMessage/></Message></cXML>"
    (rejected,) = [e for e in events(message) if isinstance(e, DocumentRejected)]
    assert (rejected.reason, rejected.doc_type) == ("NOT_AN_ORDER", "PunchOutOrderMessage")
    response = b'<cXML payloadID="r"><Response><Status code="400" text="bad"/></Response></cXML>'
    evs = events(response)
    assert isinstance(evs[0], InterchangeOpened)
    assert evs[0].warnings == ["the cXML document has no Header: sender and receiver are unknown"]
    (rejected,) = [e for e in evs if isinstance(e, DocumentRejected)]
    assert rejected.doc_type == "Response"
    assert "status 400: bad" in rejected.message


def test_message_deployment_mode_sets_the_test_indicator():
    data = b"<cXML payloadID='m'><Message deploymentMode='test'><PunchOutOrderMessage/></Message></cXML>"
    opened = events(data)[0]
    assert isinstance(opened, InterchangeOpened)
    assert opened.envelope.test_indicator == "T"
    assert events(cxml("<QuoteRequest/>"))[0].envelope.test_indicator == "P"  # type: ignore[union-attr]


def test_empty_request_is_rejected_and_stray_elements_reported():
    evs = events(b"<cXML payloadID='e'><Request/><Extra/></cXML>")
    (rejected,) = [e for e in evs if isinstance(e, DocumentRejected)]
    assert rejected.reason == "CXML_STRUCTURE"
    closed = evs[-1]
    assert isinstance(closed, InterchangeClosed)
    assert closed.errors == ["element <Extra> at line 1 is not part of cXML and was ignored"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'<?xml version="1.0"?>\n  <cxml payloadID="1"><Message/></cxml>', "CXML_ROOT"),
        (b"<CXML/>", "CXML_ROOT"),
        (b"<cXML xmlns='urn:x'><Request/></cXML>", "NOT_CXML"),
        (b"<Order/>", "NOT_CXML"),
        (b"<cXML payloadID='1'><Header/></cXML>", "CXML_STRUCTURE"),
        (b"<cXML><Request>", "XML_SYNTAX"),
        (
            b'<!DOCTYPE cXML [<!ENTITY e SYSTEM "file:///etc/passwd">]><cXML>&e;</cXML>',
            "XML_FORBIDDEN",
        ),
    ],
)
def test_unreadable_documents_raise_parse_error(data: bytes, reason: str):
    with pytest.raises(ParseError) as info:
        events(data)
    assert info.value.reason == reason
    assert info.value.position
    assert "root:" not in str(info.value)


def test_lowercase_root_message_says_why():
    with pytest.raises(ParseError) as info:
        events(b'<?xml version="1.0"?>\n  <cxml payloadID="1"><Message/></cxml>')
    assert "case-sensitive" in info.value.message
    assert info.value.position == "line 2"


def test_size_limit_applies_before_parsing():
    with pytest.raises(ParseError) as info:
        events(FULL.read_bytes(), CxmlParser(max_bytes=1000))
    assert info.value.reason == "XML_LIMIT"


# -- the mapping: every field of the full fixture ------------------------------------------------


def test_header(full: Order):
    assert full.channel == "cxml"
    assert full.po_number == "PO-CX-1001"
    assert full.order_date.isoformat() == "2024-01-15"  # the date as written, not UTC's
    assert full.purpose is Purpose.ORIGINAL
    assert full.order_type == "regular"
    assert full.currency == "USD"
    assert full.requested_delivery_date.isoformat() == "2024-02-01"
    assert [(d.role, d.date.isoformat()) for d in full.dates] == [
        ("requested_delivery", "2024-02-01")
    ]
    assert full.notes == ["Please call before delivery."]
    assert full.extensions == {
        "cxml_order_version": "1",
        "cxml_timestamp": "2024-01-15T12:00:00-05:00",
        "extrinsic": {"CostCenter": "CC-4410", "Requester": "Pat Doe"},
        "line_extrinsic": {"1": {"Color": "blue"}},
    }
    assert full.payment is not None and full.payment.model_dump() == {
        "status": None,
        "method": "pcard",
        "reference": None,
    }
    assert [t.model_dump(exclude_none=True) for t in full.payment_terms] == [
        {"net_days": 30},
        {"discount_days": 10, "discount_percent": D("2")},
    ]


def test_source(full: Order):
    assert full.source.model_dump(exclude_none=True) == {
        "sender_id": "AN0100000001",
        "sender_qualifier": "NetworkID",
        "receiver_id": "AN0100000999",
        "receiver_qualifier": "NetworkID",
        "interchange_control_number": "20240115.1200.42@buyer.example",
        "version": "1.2.014",
        "test_indicator": "T",
    }


def test_parties(full: Order):
    assert full.ship_to is not None
    assert full.ship_to.model_dump(exclude_none=True) == {
        "name": "Acme Distribution Center 7",
        "code": "DC-7",
        "code_qualifier": "buyerLocationID",
        "address_lines": ["Receiving Dock 4", "Attn: Pat Doe", "100 Industrial Way", "Building B"],
        "city": "Columbus",
        "region": "OH",
        "postal_code": "43215",
        "country": "US",
        "contact": {
            "name": "Receiving Dock 4",
            "email": "dock4@acme.example",
            "phone": "+1 614 5550100 ext 12",
            "fax": "+1 614 5550199",
        },
        "references": [],
    }
    assert full.bill_to is not None
    assert full.bill_to.model_dump(exclude_none=True) == {
        "name": "Acme Accounts Payable",
        "code": "AP-1",
        "address_lines": ["1 Finance Plaza"],
        "city": "Dayton",
        "region": "OH",
        "postal_code": "45402",
        "country": "US",
        "references": [],
    }
    assert full.buyer is not None
    assert full.buyer.model_dump(exclude_none=True) == {
        "name": "Pat Doe",
        "code": "U-77",
        "address_lines": [],
        "contact": {"name": "Pat Doe", "email": "pat.doe@acme.example", "phone": "+1 614 5550111"},
        "references": [{"qualifier": "DUNS", "value": "123456789", "role": "credential"}],
    }
    assert full.seller is not None
    assert (full.seller.code, full.seller.code_qualifier) == ("AN0100000999", "NetworkID")
    assert set(full.other_parties) == {"technicalSupport", "ship_to@line2"}
    assert full.other_parties["technicalSupport"].contact is not None
    assert full.other_parties["technicalSupport"].contact.email == "help@acme.example"
    store = full.other_parties["ship_to@line2"]
    assert (store.code, store.name, store.city) == ("STORE-12", "Store 12", "Akron")


def test_shipping_taxes_and_totals(full: Order):
    assert full.shipping is not None
    assert full.shipping.model_dump(exclude_none=True) == {
        "carrier_qualifier": "SCAC",
        "carrier_code": "UPSN",
        "transport_method": "motor",
        "instructions": ["Deliver before noon", "Ground freight"],
    }
    assert [a.model_dump(exclude_none=True) for a in full.allowances_charges] == [
        {
            "indicator": "charge",
            "code": "shipping",
            "amount": D("25.00"),
            "description": "Ground freight",
        }
    ]
    assert [t.model_dump(exclude_none=True) for t in full.taxes] == [
        {"type": "sales", "amount": D("80.10"), "percent": D("7.5"), "jurisdiction": "OH"}
    ]
    assert full.totals is not None
    assert full.totals.model_dump(exclude_none=True) == {
        "total": D("1234.56"),
        "tax_total": D("80.10"),
        "shipping_total": D("25.00"),
        "amounts": [],
    }


def test_lines(full: Order):
    first, second = full.lines
    assert first.line_number == "1"
    assert first.quantity == D("10")
    assert first.uom == "EA"
    assert first.unit_price == D("100.80")
    assert (first.sku, first.buyer_part_number, first.gtin) == (
        "SKU-100",
        "BP-9100",
        "4006381333931",
    )
    assert first.description == "Widget, blue, 10 mm"
    assert [(i.qualifier, i.value) for i in first.item_ids] == [
        ("SupplierPartID", "SKU-100"),
        ("BuyerPartID", "BP-9100"),
        ("SupplierPartAuxiliaryID", "AUX-100-A"),
        ("EAN-13", "4006381333931"),
        ("ManufacturerPartID", "MFG-555"),
        ("classification:UNSPSC", "31160000"),
    ]
    assert [r.model_dump(exclude_none=True) for r in first.references] == [
        {"qualifier": "DUNS", "value": "987654321", "role": "supplier_id"}
    ]
    assert [(d.role, d.date.isoformat()) for d in first.dates] == [
        ("requested_delivery", "2024-01-30")
    ]
    assert [a.amount for a in first.allowances_charges] == [D("5.00")]
    assert [(t.type, t.amount) for t in first.taxes] == [("Line sales tax", D("7.56"))]
    assert first.notes == ["Pack in 2 boxes"]
    # 120.00 for a price basis of 12 units: 10.00 a unit.
    assert (second.quantity, second.uom, second.unit_price) == (D("3"), "DZ", D("10"))
    assert second.description == "Gadget dozen"
    assert second.sku == "SKU-200" and second.buyer_part_number is None


def test_what_is_not_mapped_is_kept(full: Order):
    assert full.unmapped == [
        f"{H}/Tax/TaxDetail/TaxableAmount/Money=1068.00",
        f"{H}/Comments/Attachment/URL=cid:spec.pdf",
        "/cXML/Request/OrderRequest/ItemOut[1]/ItemDetail/ManufacturerName=Widget Works",
        "/cXML/Request/OrderRequest/ItemOut[1]/Distribution/Accounting/Segment/@type=CostCenter",
        "/cXML/Request/OrderRequest/ItemOut[1]/Distribution/Accounting/Segment/@id=4410",
        "/cXML/Request/OrderRequest/ItemOut[1]/Distribution/Accounting/Segment/@description=Ops",
        "/cXML/Request/OrderRequest/ItemOut[1]/Distribution/Charge/Money=1008.00",
    ]


def test_trace(full: Order, full_trace: dict[str, str]):
    assert full_trace["po_number"] == f"{H}/@orderID"
    assert full_trace["order_date"] == f"{H}/@orderDate"
    assert full_trace["currency"] == f"{H}/Total/Money/@currency"
    assert full_trace["totals.total"] == f"{H}/Total/Money"
    assert full_trace["ship_to.address_lines[3]"] == f"{H}/ShipTo/Address/PostalAddress/Street[2]"
    assert full_trace["buyer.name"] == f"{H}/Contact[1]/Name"
    assert full_trace["seller.code"] == "/cXML/Header/To/Credential/Identity"
    assert full_trace["lines[0].quantity"] == "/cXML/Request/OrderRequest/ItemOut[1]/@quantity"
    assert (
        full_trace["lines[0].gtin"]
        == "/cXML/Request/OrderRequest/ItemOut[1]/ItemID/IdReference/@identifier"
    )
    assert full_trace["lines[1].description"] == (
        "/cXML/Request/OrderRequest/ItemOut[2]/ItemDetail/Description/ShortName"
    )
    assert full_trace["payment.method"] == f"{H}/Payment/PCard"
    # Every traced path points at something in the document.
    root = etree.parse(str(FULL)).getroot()
    for field, path in full_trace.items():
        element_path, _, attr = path.partition("/@")
        (el,) = root.xpath(element_path)
        assert not attr or el.get(attr) is not None, field


def test_no_trace_is_fine():
    order = mapped(order_request(), trace=None)
    assert order.po_number == "PO-1"


# -- purposes and variants -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "purpose"),
    [
        ('type="new"', Purpose.ORIGINAL),
        ('type="update"', Purpose.REPLACE),
        ('type="delete"', Purpose.CANCEL),
        ('type="reopen"', Purpose.OTHER),
        ("", Purpose.ORIGINAL),
    ],
)
def test_type_gives_the_purpose(kind: str, purpose: Purpose):
    assert mapped(order_request(f'orderID="PO-1" {kind}')).purpose is purpose


def test_update_references_the_original_document():
    data = order_request(
        'orderID="PO-1" type="update" orderVersion="2"',
        header='<DocumentReference payloadID="orig-77@buyer"/>',
    )
    trace: dict[str, str] = {}
    order = mapped(data, trace)
    assert order.purpose is Purpose.REPLACE
    assert order.extensions["cxml_order_version"] == "2"
    assert [r.model_dump(exclude_none=True) for r in order.references] == [
        {"qualifier": "payloadID", "value": "orig-77@buyer", "role": "original_order"}
    ]
    assert trace["references[0].value"] == f"{H}/DocumentReference/@payloadID"


def test_delete_needs_no_lines():
    order = mapped(order_request('orderID="PO-1" type="delete"', items=""))
    assert (order.purpose, order.lines) == (Purpose.CANCEL, [])


def test_requested_delivery_falls_back_to_the_earliest_line():
    items = (
        '<ItemOut quantity="1" requestedDeliveryDate="2024-03-05"/>'
        '<ItemOut quantity="1" requestedDeliveryDate="2024-03-01T08:00:00Z"/>'
    )
    trace: dict[str, str] = {}
    order = mapped(order_request(items=items), trace)
    assert order.requested_delivery_date.isoformat() == "2024-03-01"
    assert trace["requested_delivery_date"] == (
        "/cXML/Request/OrderRequest/ItemOut[2]/@requestedDeliveryDate"
    )


def test_unread_item_attributes_are_kept():
    order = mapped(order_request(items='<ItemOut quantity="1" requisitionID="R-9"/>'))
    assert order.unmapped == ["/cXML/Request/OrderRequest/ItemOut[1]/@requisitionID=R-9"]


def test_payment_reference_keeps_method_only():
    header = (
        '<Payment><PaymentReference method="cc" provider="stripe"><Money currency="USD">1</Money>'
        "</PaymentReference></Payment>"
    )
    order = mapped(order_request(header=header))
    assert order.payment is not None and order.payment.method == "cc (stripe)"


def test_currency_from_the_unit_price_when_no_total():
    items = (
        '<ItemOut quantity="1"><ItemDetail><UnitPrice><Money currency="EUR">2.5</Money>'
        "</UnitPrice></ItemDetail></ItemOut>"
    )
    order = mapped(order_request(items=items))
    assert (order.currency, order.lines[0].unit_price) == ("EUR", D("2.5"))


def test_buyer_from_the_credential_when_no_contact():
    order = mapped(order_request())
    assert order.buyer is not None
    assert (order.buyer.code, order.buyer.code_qualifier) == ("111", "DUNS")


# -- errors --------------------------------------------------------------------------------------


def test_missing_order_id():
    exc = mapping_error(order_request('orderDate="2024-01-01"'))
    assert exc.reason == "MISSING_PO_NUMBER"
    assert exc.position == H
    exc = mapping_error(cxml("<OrderRequest/>"))
    assert exc.reason == "MISSING_PO_NUMBER"
    assert exc.position == "/cXML/Request/OrderRequest"


def test_bad_quantity():
    exc = mapping_error(order_request(items='<ItemOut lineNumber="1" quantity="2,5"/>'))
    assert exc.reason == "XML_BAD_NUMBER"
    assert exc.position == "/cXML/Request/OrderRequest/ItemOut[1]/@quantity"
    assert "'2,5'" in exc.message and "line 3" in exc.message


def test_missing_quantity():
    exc = mapping_error(order_request(items='<ItemOut lineNumber="7"/>'))
    assert exc.reason == "XML_MISSING_QUANTITY"
    assert exc.position == "/cXML/Request/OrderRequest/ItemOut[1]/@quantity"


def test_bad_price_and_bad_total():
    items = (
        '<ItemOut quantity="1"/><ItemOut quantity="1"><ItemDetail><UnitPrice>'
        '<Money currency="USD">12.00 USD</Money></UnitPrice></ItemDetail></ItemOut>'
    )
    exc = mapping_error(order_request(items=items))
    assert exc.reason == "XML_BAD_NUMBER"
    assert exc.position == "/cXML/Request/OrderRequest/ItemOut[2]/ItemDetail/UnitPrice/Money"
    exc = mapping_error(order_request(header='<Total><Money currency="USD">NaN</Money></Total>'))
    assert exc.position == f"{H}/Total/Money"


def test_price_basis_of_zero():
    items = (
        '<ItemOut quantity="1"><ItemDetail><UnitPrice><Money currency="USD">1</Money></UnitPrice>'
        '<PriceBasisQuantity quantity="0"/></ItemDetail></ItemOut>'
    )
    assert mapping_error(order_request(items=items)).reason == "XML_BAD_NUMBER"


def test_bad_date():
    exc = mapping_error(order_request('orderID="PO-1" orderDate="15.01.2024"'))
    assert exc.reason == "XML_BAD_DATE"
    assert exc.position == f"{H}/@orderDate"


def test_not_an_order_request():
    data = cxml("<ConfirmationRequest/>")
    (rejected,) = [e for e in events(data) if isinstance(e, DocumentRejected)]
    doc = Document(
        envelope=rejected.envelope,
        doc_type="ConfirmationRequest",
        control_number=None,
        body=None,
        position="line 3",
        index=0,
    )
    with pytest.raises(MappingError) as info:
        map_order_request(doc)
    assert info.value.reason == "NOT_AN_ORDER"


# -- code tables ---------------------------------------------------------------------------------


def test_default_tables():
    tables = default_cxml_tables()
    assert tables is default_cxml_tables()
    assert tables.purpose["update"] is Purpose.REPLACE
    assert tables.contact_roles["endUser"] == "buyer"
    assert tables.product_id_domains["EAN-13"] == "gtin"
    assert tables.sources == (str(DEFAULT_TABLES_PATH),)


def test_override_file(tmp_path: Path):
    override = tmp_path / "partner.yaml"
    override.write_text("purpose:\n  update: change\ncontact_roles:\n  endUser: null\n")
    tables = load_cxml_tables(overrides=[override])
    assert tables.purpose["update"] is Purpose.CHANGE
    assert "endUser" not in tables.contact_roles
    order = map_order_request(documents(order_request('orderID="P" type="update"'))[0], tables)
    assert order.purpose is Purpose.CHANGE


def test_table_problems_are_reported_together(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 2\npurpose:\n  new: nonsense\n  update: null\ncolours: {}\ncontact_roles: [1]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_cxml_tables(bad)
    text = str(info.value)
    for expected in (
        "version 2 is not supported",
        "'nonsense' is not one of",
        "null removes an entry, only in an override file",
        "unknown table 'colours'",
        "table 'contact_roles' must map",
        "table 'product_id_domains' is missing",
    ):
        assert expected in text
    numeric = tmp_path / "numeric.yaml"
    numeric.write_text("product_id_domains:\n  8800: gtin\n")
    with pytest.raises(ConfigError, match=r"\[8800\]: the code must be a quoted string"):
        load_cxml_tables(overrides=[numeric])
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="cannot read"):
        load_cxml_tables(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("purpose: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_cxml_tables(broken)

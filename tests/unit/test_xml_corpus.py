"""The shared corpus of real cXML and UBL files, read in place (never copied into the repo).

Every file is claimed by exactly one of the two sniffers, then either yields events (orders
for OrderRequest / Order / OrderChange / OrderCancellation, NOT_AN_ORDER rejections for the
other document types) or raises ParseError: never another exception. Every order maps, and
every XPath its trace names exists in the file. See /work/shared/corpus/PROVENANCE.md.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.errors import ParseError
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.formats.cxml import CxmlParser
from gateway.formats.ubl import CAC, CBC, UBL_NS_PREFIX, UblParser
from gateway.mapping.cxml_order import map_order_request
from gateway.mapping.ubl_order import map_ubl_order
from gateway.model import Order, Purpose
from tests.conftest import CORPUS, corpus_dir

# Names for parametrizing at collection; the tests open files through corpus_dir("xml"),
# which skips on a machine without the corpus and fails in CI.
_XML = CORPUS / "xml"
FILES = sorted(p.name for p in _XML.iterdir()) if _XML.is_dir() else []

# What each known file must give: ("orders", count), ("rejected", doc_type) or
# ("parse_error", reason). Files added to the corpus later need only parse or raise.
EXPECTED: dict[str, tuple[str, Any]] = {
    "cxmlphp__OrderRequest_ariba_eu_hub.xml": ("orders", 1),
    "cxmlphp__OrderRequest_builder.xml": ("orders", 1),
    "cxmlphp__OrderRequest_sample.xml": ("orders", 1),
    "officeluv__OrderRequest_coupa.xml": ("orders", 1),
    "officeluv__OrderRequest_dell_sample.xml": ("orders", 1),
    "cxmlphp__PunchOutOrderMessage.xml": ("rejected", "PunchOutOrderMessage"),
    "cxmlphp__QuoteRequest.xml": ("rejected", "QuoteMessage"),  # a QuoteMessage inside
    "cxmlphp__ShipNoticeRequest.xml": ("rejected", "ShipNoticeRequest"),
    "cxmlphp__StatusUpdateRequest.xml": ("rejected", "StatusUpdateRequest"),
    "officeluv__ConfirmationRequest_officedepot.xml": ("rejected", "ConfirmationRequest"),
    "officeluv__Response_status_400.xml": ("rejected", "Response"),
    # PROVENANCE: NON-STANDARD lowercase <cxml> root.
    "officeluv__PunchOutOrderMessage_lowercase_root.xml": ("parse_error", "CXML_ROOT"),
    "oca__UBL-Order-2.0-Example.xml": ("orders", 1),
    "oca__UBL-Order-2.1-Example.xml": ("orders", 1),
    "oca__UBL-RequestForQuotation-2.1-Example.xml": ("rejected", "RequestForQuotation"),
    "peppol__DespatchAdvice_Example.xml": ("rejected", "DespatchAdvice"),
    "peppol__MessageLevelResponse_Example.xml": ("rejected", "ApplicationResponse"),
    "peppol__OrderCancellation_Example.xml": ("orders", 1),
    "peppol__OrderChange_Example.xml": ("orders", 1),
    "peppol__OrderResponse_Example.xml": ("rejected", "OrderResponse"),
    "peppol__Order_Example.xml": ("orders", 1),
    "peppol__UC1_Order.xml": ("orders", 1),
    "peppol__UC2_Order.xml": ("orders", 1),
    "peppol__UC3_Order.xml": ("orders", 1),
    "peppol__UC3_Order_response_rejected.xml": ("rejected", "OrderResponse"),
    "peppol__UC4_Order.xml": ("orders", 1),
    "peppol__UC5_Order.xml": ("orders", 1),
    "peppol__UC6_Order.xml": ("orders", 1),
}
# The shared secrets the corpus's cXML headers carry: never in a body or an order.
SECRETS = ("Secret!123", "coyote", "alsdkfjalksdjflaksjdfklj", "abracadabra", "welcome")
MAPPERS: dict[str, Callable[..., Order]] = {"cxml": map_order_request, "ubl": map_ubl_order}


def parser_for(data: bytes) -> CxmlParser | UblParser:
    head = data[:4096]
    claims = [p for p in (CxmlParser(), UblParser()) if p.sniff(head)]
    assert len(claims) == 1, [p.name for p in claims]
    return claims[0]


def read(name: str) -> tuple[str, list[Event]]:
    data = (corpus_dir("xml") / name).read_bytes()
    parser = parser_for(data)
    return parser.name, list(parser.parse(io.BytesIO(data), name=name))


def test_corpus_is_there():
    corpus_dir("xml")
    assert len(FILES) >= 28
    assert set(EXPECTED) <= set(FILES)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", FILES)
def test_every_file_yields_events_or_parse_error(name: str):
    expected = EXPECTED.get(name)
    try:
        fmt, events = read(name)
    except ParseError as exc:
        assert exc.reason and exc.position and exc.message
        assert expected is None or expected == ("parse_error", exc.reason), (exc.reason, exc)
        return
    assert expected is None or expected[0] != "parse_error", expected
    assert isinstance(events[0], InterchangeOpened)
    assert isinstance(events[-1], InterchangeClosed)
    assert len(events[-1].digest) == 64
    docs = [e for e in events if isinstance(e, Document)]
    rejected = [e for e in events if isinstance(e, DocumentRejected)]
    assert events[-1].document_count == len(docs) + len(rejected)
    order_types = (
        {"OrderRequest"} if fmt == "cxml" else {"Order", "OrderChange", "OrderCancellation"}
    )
    assert all(d.doc_type in order_types for d in docs)
    assert all(r.reason == "NOT_AN_ORDER" and r.doc_type not in order_types for r in rejected)
    if expected is not None and expected[0] == "orders":
        assert (len(docs), rejected) == (expected[1], [])
    elif expected is not None:
        assert docs == []
        assert [r.doc_type for r in rejected] == [expected[1]]
        assert expected[1] in rejected[0].message


def _resolve(root: etree._Element, path: str) -> list[Any]:
    element_path, _, attr = path.partition("/@")
    ns = {"cac": CAC, "cbc": CBC}
    qname = etree.QName(root)
    if qname.namespace and qname.namespace.startswith(UBL_NS_PREFIX):
        ns["doc"] = qname.namespace
        element_path = element_path.replace(f"/{qname.localname}", "/doc:" + qname.localname, 1)
    found = root.xpath(element_path, namespaces=ns)
    assert isinstance(found, list)
    return [el.get(attr) for el in found] if attr else found


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", [n for n, e in EXPECTED.items() if e[0] == "orders"])
def test_every_order_maps_and_its_trace_resolves(name: str):
    fmt, events = read(name)
    (doc,) = [e for e in events if isinstance(e, Document)]
    trace: dict[str, str] = {}
    order = MAPPERS[fmt](doc, trace=trace)
    assert order.po_number
    assert order.channel == fmt
    text = order.model_dump_json()
    assert Order.model_validate_json(text) == order
    for secret in SECRETS:
        assert secret not in text
    assert trace["po_number"]
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.parse(str(corpus_dir("xml") / name), parser)
    for field, path in trace.items():
        found = _resolve(root.getroot(), path)
        assert len(found) == 1 and found[0] is not None, (field, path)
    for entry in order.unmapped:
        path, sep, _ = entry.partition("=")
        assert sep and path.startswith("/"), entry
        assert _resolve(root.getroot(), path), entry
    if order.purpose is not Purpose.CANCEL:
        assert order.lines, "an order with no lines"


def test_bodies_hold_no_shared_secrets():
    for name in FILES:
        try:
            fmt, events = read(name)
        except ParseError:
            continue
        for doc in (e for e in events if isinstance(e, Document) and fmt == "cxml"):
            body = etree.tostring(doc.body.root).decode()
            assert not any(s in body for s in SECRETS), name


def test_known_values():
    def one(name: str) -> Order:
        fmt, events = read(name)
        (doc,) = [e for e in events if isinstance(e, Document)]
        return MAPPERS[fmt](doc)

    coupa = one("officeluv__OrderRequest_coupa.xml")
    assert (coupa.po_number, coupa.currency, str(coupa.totals.total)) == ("3309", "USD", "91.71")  # type: ignore[union-attr]
    assert [(str(line.quantity), line.sku) for line in coupa.lines] == [
        ("1", "product:1861"),
        ("9", "product:4884"),
    ]
    assert coupa.buyer is not None and coupa.buyer.contact is not None
    assert coupa.buyer.contact.email == "asdlfkjasdflkj@optisconsulting.com"  # Contact role endUser
    ariba = one("cxmlphp__OrderRequest_ariba_eu_hub.xml")
    assert (ariba.po_number, ariba.requested_delivery_date.isoformat()) == (
        "acme-1-1",
        "2025-01-28",
    )  # type: ignore[union-attr]
    assert ariba.source.test_indicator == "T"
    peppol = one("peppol__Order_Example.xml")
    assert (peppol.po_number, peppol.currency, len(peppol.lines)) == ("34", "NOK", 2)
    assert peppol.lines[0].gtin == "7560000012345"
    change = one("peppol__OrderChange_Example.xml")
    assert change.purpose is Purpose.CHANGE
    assert change.po_number == "Order-1"
    cancel = one("peppol__OrderCancellation_Example.xml")
    assert (cancel.purpose, cancel.po_number, cancel.lines) == (Purpose.CANCEL, "Order-1", [])
    assert cancel.notes == ["With reference to phone call"]
    ubl20 = one("oca__UBL-Order-2.0-Example.xml")
    assert (ubl20.po_number, ubl20.currency, ubl20.extensions["ubl_version"]) == (
        "AEG012345",
        "GBP",
        "2.0",
    )


def test_lowercase_root_is_explained():
    with pytest.raises(ParseError) as info:
        read("officeluv__PunchOutOrderMessage_lowercase_root.xml")
    assert info.value.reason == "CXML_ROOT"
    assert "<cxml>" in info.value.message and "<cXML>" in info.value.message


def test_corpus_path_is_the_shared_one():
    assert Path(corpus_dir("xml")).resolve().parts[-2:] == ("corpus", "xml")

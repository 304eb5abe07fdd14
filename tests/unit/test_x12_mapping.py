"""map_850 and the code tables: exact field values, errors with positions, table loading."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError, MappingError
from gateway.formats.base import Document
from gateway.formats.x12 import parse_x12 as _parse_x12
from gateway.mapping import x12_850
from gateway.mapping.x12_850 import (
    DEFAULT_TABLES_PATH,
    X12Tables,
    default_tables,
    load_x12_tables,
    map_850,
)
from gateway.model import Order, Purpose


# These inputs exercise the envelope repairs that guess (unpadded ISA, wrapped segments), which
# run only for a partner whose profile allows them (issue 14 #22); read here as for such a partner.
def parse_x12(source, **kw):  # type: ignore[no-untyped-def]
    return _parse_x12(source, lenient=True, **kw)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "x12"
D = Decimal


def documents(data: bytes | Path) -> list[Document]:
    return [e for e in parse_x12(data) if isinstance(e, Document)]


def order_from(*segments: str) -> Order:
    """Map one 850 whose ST..SE wraps `segments` (SE01 counted)."""
    return map_850(_doc(*segments))


def _doc(*segments: str) -> Document:
    isa = (
        "ISA*00*          *00*          *ZZ*BUYERCO        *ZZ*SELLERCO       "
        "*240115*1200*U*00401*000000001*0*P*>"
    )
    body = ["ST*850*0001", *segments]
    body.append(f"SE*{len(body) + 1}*0001")
    segs = [
        isa,
        "GS*PO*BUYERCO*SELLERCO*20240115*1200*1*X*004010",
        *body,
        "GE*1*1",
        "IEA*1*000000001",
    ]
    (doc,) = documents(("~\n".join(segs) + "~\n").encode())
    return doc


@pytest.fixture(scope="module")
def clean() -> Order:
    (doc,) = documents(FIXTURES / "clean_4010_850.edi")
    return map_850(doc)


def test_header(clean: Order):
    assert clean.channel == "x12"
    assert clean.po_number == "PO-4010-1"
    assert clean.purpose is Purpose.ORIGINAL
    assert clean.order_type == "SA"
    assert clean.release_number == "R2"
    assert clean.order_date == dt.date(2024, 1, 15)
    assert clean.contract_number == "CT-77"
    assert clean.currency == "USD"
    assert clean.requested_delivery_date == dt.date(2024, 2, 1)
    assert clean.notes == ["Deliver to dock 4", "Call before delivery"]


def test_references(clean: Order):
    assert [r.model_dump() for r in clean.references] == [
        {"qualifier": "DP", "value": "042", "description": None, "role": "department"},
        {
            "qualifier": "IA",
            "value": "V-1234",
            "description": "Vendor number at buyer",
            "role": "vendor_number",
        },
        {"qualifier": "L1", "value": "SPECIAL INSTRUCTIONS", "description": None, "role": "note"},
    ]


def test_dates(clean: Order):
    assert [(d.role, d.qualifier, d.date, d.time) for d in clean.dates] == [
        ("requested_delivery", "002", dt.date(2024, 2, 1), None),
        ("requested_ship", "010", dt.date(2024, 1, 25), None),
        ("ship_not_before", "037", dt.date(2024, 1, 20), None),  # sent as YYMMDD
        ("ship_no_later", "038", dt.date(2024, 1, 30), "1500"),
    ]


def test_terms_shipping_allowances_taxes_totals(clean: Order):
    (terms,) = clean.payment_terms
    assert terms.model_dump() == {
        "type_code": "01",
        "basis_date_code": "3",
        "discount_percent": D("2"),
        "discount_due_date": None,
        "discount_days": 10,
        "net_due_date": None,
        "net_days": 30,
        "discount_amount": None,
        "description": "2% 10 NET 30",
    }
    assert clean.shipping is not None
    assert clean.shipping.model_dump() == {
        "routing_sequence": "B",
        "carrier_qualifier": "2",
        "carrier_code": "UPSN",
        "transport_method": "M",
        "routing": "UPS GROUND",
        "service_level": "GND",
        "fob_payment_method": "PP",
        "fob_location_qualifier": "OR",
        "fob_location": "Factory",
        "incoterms": "FCA",
        "incoterms_location": "Chicago",
        "instructions": ["Keep upright"],
    }
    assert clean.extensions == {
        "x12_shipping": ["TD1*CTN25*4****G*120*LB", "TD4*ZZZ***Keep upright"]
    }
    assert [
        (a.indicator, a.code, a.amount, a.handling, a.description) for a in clean.allowances_charges
    ] == [
        ("allowance", "C310", D("10.00"), "02", "Volume discount"),
        ("charge", "D240", D("25.00"), None, None),
    ]
    assert [t.model_dump() for t in clean.taxes] == [
        {"type": "ST", "amount": D("12.50"), "percent": D("6.25"), "jurisdiction": "NY"}
    ]
    assert clean.totals is not None
    assert clean.totals.line_count == 2
    assert clean.totals.quantity_total == D("15")
    assert clean.totals.total == D("623.40")
    assert [(a.qualifier, a.value) for a in clean.totals.amounts] == [("1", "623.40")]


def test_parties(clean: Order):
    assert clean.buyer is not None
    assert clean.buyer.model_dump() == {
        "name": "Buyer Company",
        "code": "0042",
        "code_qualifier": "92",
        "address_lines": ["Purchasing Dept", "100 Main Street", "Suite 5"],
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
        "contact": {
            "name": "Bob Orders",
            "email": "orders@buyer.example",
            "phone": None,
            "fax": "555-0199",
        },
        "references": [
            {"qualifier": "ST", "value": "0042", "description": None, "role": "store_number"}
        ],
    }
    assert clean.ship_to is not None
    assert (clean.ship_to.name, clean.ship_to.code, clean.ship_to.city) == (
        "Store 17",
        "0017",
        "Dayton",
    )
    assert clean.ship_to.address_lines == ["17 Market Square"]
    assert clean.bill_to is not None and clean.bill_to.name == "Buyer Company AP"
    assert clean.seller is not None
    assert (clean.seller.name, clean.seller.code_qualifier, clean.seller.code) == (
        "Seller Inc",
        "1",
        "123456789",
    )
    assert set(clean.other_parties) == {"PO", "ST@line1"}
    assert clean.other_parties["PO"].name == "Payer Corp"
    line_party = clean.other_parties["ST@line1"]
    assert (line_party.name, line_party.code, line_party.address_lines) == (
        "Line Ship To",
        "0099",
        ["99 Line Rd"],
    )


def test_lines(clean: Order):
    first, second = clean.lines
    assert first.line_number == "1"
    assert first.quantity == D("10")
    assert first.uom == "EA"
    assert first.unit_price == D("12.34")
    assert first.price_basis == "PE"
    assert (first.sku, first.gtin, first.buyer_part_number) == ("SKU-1", "012345678905", "B-1")
    assert [(i.qualifier, i.value) for i in first.item_ids] == [
        ("VP", "SKU-1"),
        ("UP", "012345678905"),
        ("BP", "B-1"),
    ]
    assert first.description == "Blue widget large"
    assert first.notes == ["PID*S**VI*FL", "Gift wrap"]
    assert first.pack is not None
    assert first.pack.model_dump() == {
        "pack": D("6"),
        "size": D("2"),
        "uom": "EA",
        "packaging_code": "CTN",
        "weight": D("3.5"),
        "weight_uom": "LB",
        "volume": None,
        "volume_uom": None,
    }
    assert [(d.location_qualifier, d.location, d.quantity) for d in first.destinations] == [
        ("92", "0017", D("4")),
        ("92", "0018", D("6")),
    ]
    assert [(p.qualifier, p.value) for p in first.prices] == [("RES", "19.99")]
    assert [(r.qualifier, r.value, r.role) for r in first.references] == [
        ("PD", "PROMO-9", "promotion")
    ]
    assert [(d.role, d.date) for d in first.dates] == [("requested_delivery", dt.date(2024, 2, 5))]
    assert [(a.indicator, a.code, a.amount) for a in first.allowances_charges] == [
        ("charge", "H010", D("5.00"))
    ]
    assert [(t.type, t.amount) for t in first.taxes] == [("ST", D("0.77"))]

    assert second.quantity == D("5")
    assert second.uom == "CA"
    assert second.unit_price == D("100")
    assert (second.gtin, second.sku) == ("10012345678902", "V-2")
    assert second.description == "Red gadget case"


def test_unmapped_and_source(clean: Order):
    # PKG is not mapped; the header PER is not used because the buyer has its own contact
    assert clean.unmapped == [
        "PKG*F*68***PALLETIZE",
        "CSH*Y",
        "PER*BD*Jane Buyer*TE*555-0100*EM*jane@buyer.example",
    ]
    assert clean.source.model_dump() == {
        "message_id": None,
        "file_name": None,
        "mail_id": None,
        "sender_id": "BUYERCO",
        "sender_qualifier": "ZZ",
        "receiver_id": "SELLERCO",
        "receiver_qualifier": "ZZ",
        "interchange_control_number": "000000101",
        "group_control_number": "101",
        "transaction_control_number": "0001",
        "version": "004010",
        "test_indicator": "T",
        "updated_at": None,
    }


def test_json_round_trip(clean: Order):
    text = clean.model_dump_json()
    assert '"quantity":"10"' in text and '"unit_price":"12.34"' in text
    assert Order.model_validate_json(text) == clean


def test_5010_with_composite_product_id():
    (doc,) = documents(FIXTURES / "clean_5010_850.edi")
    order = map_850(doc)
    assert order.po_number == "PO-5010-1"
    assert order.purpose is Purpose.ORIGINAL
    assert order.order_type == "NE"
    (line,) = order.lines
    assert line.sku == "X1"  # PO107 sent as the composite X1:A; the first component counts
    assert line.gtin == "4006381333931"
    assert order.ship_to is not None and order.ship_to.code_qualifier == "UL"
    assert order.source.version == "005010"
    assert [(r.qualifier, r.role) for r in order.references] == [("CO", "customer_order")]


def test_header_per_goes_to_a_buyer_without_contact():
    order = order_from(
        "BEG*00*SA*P1**20240115",
        "PER*BD*Jane*TE*555",
        "N1*BY*Buyer",
        "PO1*1*1*EA*1",
        "CTT*1",
    )
    assert order.buyer is not None and order.buyer.contact is not None
    assert (order.buyer.contact.name, order.buyer.contact.phone) == ("Jane", "555")
    assert order.unmapped == []


@pytest.mark.parametrize(
    ("code", "purpose"),
    [
        ("00", Purpose.ORIGINAL),
        ("01", Purpose.CANCEL),
        ("04", Purpose.CHANGE),
        ("05", Purpose.REPLACE),
        ("06", Purpose.CONFIRMATION),
        ("07", Purpose.DUPLICATE),
        ("22", Purpose.INFORMATION),
        ("53", Purpose.OTHER),
    ],
)
def test_purpose_table(code: str, purpose: Purpose):
    order = order_from(f"BEG*{code}*SA*P1**20240115")
    assert order.purpose is purpose
    assert order.extensions == ({"purpose_code": code} if purpose is Purpose.OTHER else {})


def test_second_party_with_a_taken_role_is_kept():
    order = order_from("BEG*00*SA*P1**20240115", "N1*ST*First", "N1*ST*Second", "N1*ST*Third")
    assert order.ship_to is not None and order.ship_to.name == "First"
    assert {k: p.name for k, p in order.other_parties.items()} == {"ST": "Second", "ST_2": "Third"}


def test_sac_amount_with_explicit_decimal_point_is_taken_as_sent():
    order = order_from("BEG*00*SA*P1**20240115", "SAC*C*D240***12.5")
    assert order.allowances_charges[0].amount == D("12.5")


def test_dtm_period_format_and_requested_delivery_only_from_002():
    order = order_from(
        "BEG*00*SA*P1**20240115",
        "DTM*017*20240301",
        "DTM*002****RD8*20240310-20240312",
    )
    assert [(d.role, d.date) for d in order.dates] == [
        ("estimated_delivery", dt.date(2024, 3, 1)),
        ("requested_delivery", dt.date(2024, 3, 10)),
    ]
    assert order.requested_delivery_date == dt.date(2024, 3, 10)


def test_unknown_date_qualifier_keeps_the_code_as_role():
    order = order_from("BEG*00*SA*P1**20240115", "DTM*999*20240301")
    assert [(d.role, d.qualifier) for d in order.dates] == [("999", "999")]


# -- field provenance (trace) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def traced() -> tuple[Order, dict[str, str]]:
    (doc,) = documents(FIXTURES / "clean_4010_850.edi")
    trace: dict[str, str] = {}
    return map_850(doc, trace=trace), trace


def traced_from(*segments: str) -> tuple[Order, dict[str, str]]:
    """Like order_from, with a trace. The first of `segments` is segment 2, on line 4."""
    trace: dict[str, str] = {}
    return map_850(_doc(*segments), trace=trace), trace


def _resolve(data: Any, path: str) -> Any:
    """The value at a trace path ("lines[0].item_ids[1]", "other_parties.ST@line1.name")."""
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        data = data[int(part[1:-1])] if part.startswith("[") else data[part]
    return data


def _leaves(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(path, value) of every value that is set; a list of texts is one value (as the
    `gateway mapping test` table shows it)."""
    if isinstance(data, dict):
        return [x for k, v in data.items() for x in _leaves(v, f"{prefix}.{k}" if prefix else k)]
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return [x for i, v in enumerate(data) for x in _leaves(v, f"{prefix}[{i}]")]
    return [] if data in (None, [], {}) else [(prefix, data)]


def test_trace_header(traced: tuple[Order, dict[str, str]]):
    _, tr = traced
    assert tr["po_number"] == "BEG03 (segment 2, line 4)"
    assert tr["purpose"] == "BEG01 (segment 2, line 4)"
    assert tr["order_type"] == "BEG02 (segment 2, line 4)"
    assert tr["release_number"] == "BEG04 (segment 2, line 4)"
    assert tr["order_date"] == "BEG05 (segment 2, line 4)"
    assert tr["contract_number"] == "BEG06 (segment 2, line 4)"
    assert tr["currency"] == "CUR02 (segment 3, line 5)"
    assert tr["requested_delivery_date"] == "DTM02 (segment 11, line 13)"
    assert tr["channel"] == "ISA (an X12 interchange)"
    assert tr["lines_are_changes"] == "ST01 (segment 1, line 3)"
    assert tr["notes[1]"] == "MSG01 (segment 22, line 24)"  # inside the N9 loop
    assert tr["notes"] == "MSG01 (segment 21, line 23); MSG01 (segment 22, line 24)"


def test_trace_references_and_dates(traced: tuple[Order, dict[str, str]]):
    _, tr = traced
    assert tr["references[0].qualifier"] == "REF01 (segment 4, line 6)"
    assert tr["references[0].value"] == "REF02 (segment 4, line 6)"
    assert tr["references[0].role"] == "REF01 (segment 4, line 6)"
    assert tr["references[1].description"] == "REF03 (segment 5, line 7)"
    assert tr["references[2].value"] == "N902 (segment 20, line 22)"
    assert "references[0].description" not in tr  # REF03 empty: nothing to trace
    assert tr["dates[0].date"] == "DTM02 (segment 11, line 13)"
    assert tr["dates[0].role"] == "DTM01 (segment 11, line 13)"
    assert tr["dates[2].date"] == "DTM02 (segment 13, line 15)"
    assert tr["dates[3].time"] == "DTM03 (segment 14, line 16)"


def test_trace_parties(traced: tuple[Order, dict[str, str]]):
    _, tr = traced
    assert tr["buyer"] == "N1*BY loop (segment 23, line 25)"
    assert tr["buyer.name"] == "N102 (segment 23, line 25)"
    assert tr["buyer.code_qualifier"] == "N103 (segment 23, line 25)"
    assert tr["buyer.code"] == "N104 (segment 23, line 25)"
    assert tr["buyer.address_lines[0]"] == "N201 (segment 24, line 26)"
    assert tr["buyer.address_lines[2]"] == "N302 (segment 25, line 27)"
    assert tr["buyer.address_lines"] == (
        "N201 (segment 24, line 26); N301 (segment 25, line 27); N302 (segment 25, line 27)"
    )
    assert tr["buyer.city"] == "N401 (segment 26, line 28)"
    assert tr["buyer.country"] == "N404 (segment 26, line 28)"
    assert tr["buyer.references[0].value"] == "REF02 (segment 27, line 29)"
    assert tr["buyer.contact.name"] == "PER02 (segment 28, line 30)"
    assert tr["buyer.contact.email"] == "PER04 (segment 28, line 30)"
    assert tr["buyer.contact.fax"] == "PER06 (segment 28, line 30)"
    assert tr["ship_to"] == "N1*ST loop (segment 29, line 31)"
    assert tr["ship_to.name"] == "N102 (segment 29, line 31)"
    assert tr["ship_to.address_lines"] == "N301 (segment 30, line 32)"
    assert tr["ship_to.postal_code"] == "N403 (segment 31, line 33)"
    assert tr["bill_to.name"] == "N102 (segment 32, line 34)"
    assert tr["seller.code"] == "N104 (segment 33, line 35)"
    assert tr["other_parties.PO"] == "N1*PO loop (segment 34, line 36)"
    assert tr["other_parties.ST@line1.name"] == "N102 (segment 47, line 49)"
    assert tr["other_parties.ST@line1.address_lines[0]"] == "N301 (segment 48, line 50)"


def test_trace_lines(traced: tuple[Order, dict[str, str]]):
    _, tr = traced
    assert tr["lines[0]"] == "PO1 loop (segment 35, line 37)"
    assert tr["lines[0].line_number"] == "PO101 (segment 35, line 37)"
    assert tr["lines[0].quantity"] == "PO102 (segment 35, line 37)"
    assert tr["lines[0].uom"] == "PO103 (segment 35, line 37)"
    assert tr["lines[0].unit_price"] == "PO104 (segment 35, line 37)"
    assert tr["lines[0].price_basis"] == "PO105 (segment 35, line 37)"
    assert tr["lines[0].item_ids[0]"] == "PO106/PO107 (segment 35, line 37)"
    assert tr["lines[0].item_ids[2]"] == "PO110/PO111 (segment 35, line 37)"
    assert tr["lines[0].sku"] == "PO107 (segment 35, line 37)"
    assert tr["lines[0].gtin"] == "PO109 (segment 35, line 37)"
    assert tr["lines[0].buyer_part_number"] == "PO111 (segment 35, line 37)"
    assert tr["lines[0].prices[0].value"] == "CTP03 (segment 36, line 38)"
    assert tr["lines[0].description"] == (
        "PID05 (segment 37, line 39); PID05 (segment 38, line 40)"
    )
    assert tr["lines[0].notes[0]"] == "PID (segment 39, line 41)"  # PID*S, kept as sent
    assert tr["lines[0].notes[1]"] == "MSG01 (segment 46, line 48)"
    assert tr["lines[0].pack.pack"] == "PO401 (segment 40, line 42)"
    assert tr["lines[0].pack.weight"] == "PO406 (segment 40, line 42)"
    assert tr["lines[0].pack.weight_uom"] == "PO407 (segment 40, line 42)"
    assert tr["lines[0].destinations[0].location_qualifier"] == "SDQ02 (segment 41, line 43)"
    assert tr["lines[0].destinations[1].location"] == "SDQ05 (segment 41, line 43)"
    assert tr["lines[0].destinations[1].quantity"] == "SDQ06 (segment 41, line 43)"
    assert tr["lines[0].references[0].value"] == "REF02 (segment 42, line 44)"
    assert tr["lines[0].dates[0].date"] == "DTM02 (segment 43, line 45)"
    assert tr["lines[0].allowances_charges[0].amount"] == "SAC05 (segment 44, line 46)"
    assert tr["lines[0].taxes[0].amount"] == "TXI02 (segment 45, line 47)"
    assert tr["lines[1].quantity"] == "PO102 (segment 49, line 51)"
    assert tr["lines[1].gtin"] == "PO107 (segment 49, line 51)"  # UK
    assert tr["lines[1].sku"] == "PO109 (segment 49, line 51)"  # VN
    assert tr["lines[1].description"] == "PID05 (segment 50, line 52)"
    assert "lines[1].dates[0].date" not in tr and "requested_delivery_date" in tr


def test_trace_terms_shipping_allowances_totals(traced: tuple[Order, dict[str, str]]):
    _, tr = traced
    assert tr["payment_terms[0].type_code"] == "ITD01 (segment 10, line 12)"
    assert tr["payment_terms[0].discount_percent"] == "ITD03 (segment 10, line 12)"
    assert tr["payment_terms[0].net_days"] == "ITD07 (segment 10, line 12)"
    assert tr["payment_terms[0].description"] == "ITD12 (segment 10, line 12)"
    assert tr["shipping.fob_payment_method"] == "FOB01 (segment 7, line 9)"
    assert tr["shipping.incoterms"] == "FOB05 (segment 7, line 9)"
    assert tr["shipping.incoterms_location"] == "FOB07 (segment 7, line 9)"
    assert tr["shipping.carrier_code"] == "TD503 (segment 17, line 19)"
    assert tr["shipping.service_level"] == "TD512 (segment 17, line 19)"
    assert tr["shipping.instructions[0]"] == "TD404 (segment 18, line 20)"
    assert tr["shipping.instructions"] == "TD404 (segment 18, line 20)"
    assert tr["extensions.x12_shipping"] == "TD1 (segment 16, line 18); TD4 (segment 18, line 20)"
    assert tr["allowances_charges[0].indicator"] == "SAC01 (segment 8, line 10)"
    assert tr["allowances_charges[0].amount"] == "SAC05 (segment 8, line 10)"
    assert tr["allowances_charges[0].handling"] == "SAC12 (segment 8, line 10)"
    assert tr["allowances_charges[0].description"] == "SAC15 (segment 8, line 10)"
    assert tr["allowances_charges[1].code"] == "SAC02 (segment 9, line 11)"
    assert tr["taxes[0].jurisdiction"] == "TXI05 (segment 19, line 21)"
    assert tr["totals.line_count"] == "CTT01 (segment 52, line 54)"
    assert tr["totals.quantity_total"] == "CTT02 (segment 52, line 54)"
    assert tr["totals.total"] == "AMT02 (segment 53, line 55)"
    assert tr["totals.amounts[0].qualifier"] == "AMT01 (segment 54, line 56)"
    assert tr["totals.amounts[0].value"] == "AMT02 (segment 54, line 56)"


def test_trace_unmapped_and_source(traced: tuple[Order, dict[str, str]]):
    _, tr = traced
    assert tr["unmapped[0]"] == "PKG (segment 15, line 17)"
    assert tr["unmapped[1]"] == "CSH (segment 51, line 53)"
    assert tr["unmapped[2]"] == "PER (segment 6, line 8)"  # the header PER, left over
    assert tr["unmapped"] == (
        "PKG (segment 15, line 17); CSH (segment 51, line 53); PER (segment 6, line 8)"
    )
    assert tr["source.sender_id"] == "ISA06"
    assert tr["source.interchange_control_number"] == "ISA13"
    assert tr["source.group_control_number"] == "GS06"
    assert tr["source.transaction_control_number"] == "ST02 (segment 1, line 3)"


def test_every_traced_path_is_in_the_order(traced: tuple[Order, dict[str, str]]):
    order, tr = traced
    data = order.model_dump(mode="json")
    for path in tr:
        assert _resolve(data, path) not in (None, [], {}), path


def test_every_value_is_traced(traced: tuple[Order, dict[str, str]]):
    order, tr = traced
    data = order.model_dump(mode="json")
    untraced = [path for path, _ in _leaves(data) if path not in tr]
    # Only an item id's qualifier and value go by the entry of the id ("PO106/PO107 (...)").
    assert untraced and all(re.fullmatch(r"lines\[\d\]\.item_ids\[\d\]\.\w+", p) for p in untraced)
    assert all(p.rsplit(".", 1)[0] in tr for p in untraced)


def test_trace_none_maps_the_same_and_does_no_trace_work(
    traced: tuple[Order, dict[str, str]], monkeypatch: pytest.MonkeyPatch
):
    def no_trace_work(*args: object) -> str:
        raise AssertionError("trace work with trace=None")

    # Every trace entry is written with a position from _Build.pos, or in finish_trace.
    monkeypatch.setattr(x12_850._Build, "pos", no_trace_work)
    monkeypatch.setattr(x12_850._Build, "finish_trace", no_trace_work)
    (doc,) = documents(FIXTURES / "clean_4010_850.edi")
    assert map_850(doc) == traced[0]
    assert map_850(doc, trace=None) == traced[0]
    for name in ("clean_5010_850.edi", "multi_interchange.edi", "latin1.edi"):
        for d in documents(FIXTURES / name):
            if d.doc_type == "850":
                map_850(d)


def test_trace_5010_composite_product_id():
    (doc,) = documents(FIXTURES / "clean_5010_850.edi")
    trace: dict[str, str] = {}
    order = map_850(doc, trace=trace)
    assert order == map_850(doc)
    assert trace["lines[0].sku"] == "PO107 (segment 6, line 8)"  # sent as X1:A
    assert trace["lines[0].item_ids[1]"] == "PO108/PO109 (segment 6, line 8)"
    assert trace["ship_to.city"] == "N401 (segment 5, line 7)"
    assert trace["source.version"] == "GS08 (ISA12 without one)"


def test_trace_of_less_usual_segments():
    order, tr = traced_from(
        "BEG*00*SA*P1**20240115",
        "PER*BD*Jane*TE*555",
        "DTM*002****RD8*20240310-20240312",
        "TD5*O*2*UPSN*M*UPS GROUND*CC",
        "FOB*PP*OR*Dock*02*DDP",
        "N1*BY*Buyer",
        "N1*ST*First",
        "N1*ST*Second",
        "N3*2 Second St",
        "PO1*1*1*EA*1**VP*A***UP*012345678905",
        "LIN**BP*B1",
        "PID*F****Widget",
        "N1*ST*Line party",
        "N4*Town",
        "PO1*2*1*EA*1",
        "CTT*2",
        "AMT*1*5",
    )
    assert tr["buyer.contact.name"] == "PER02 (segment 3, line 5)"  # given to the buyer
    assert tr["buyer.contact.phone"] == "PER04 (segment 3, line 5)"
    assert tr["dates[0].date"] == "DTM06 (segment 4, line 6)"  # a period: its start
    assert tr["requested_delivery_date"] == "DTM06 (segment 4, line 6)"
    assert tr["shipping.routing"] == "TD505 (segment 5, line 7)"
    assert tr["extensions.x12_shipping[0]"] == "TD5 (segment 5, line 7)"  # TD506 kept whole
    assert tr["shipping.fob_location"] == "FOB03 (segment 6, line 8)"
    assert tr["extensions.x12_shipping[1]"] == "FOB (segment 6, line 8)"  # FOB04 02: not Incoterms
    assert tr["other_parties.ST"] == "N1*ST loop (segment 9, line 11)"
    assert tr["other_parties.ST.address_lines"] == "N301 (segment 10, line 12)"
    assert tr["lines[0].item_ids[1]"] == "PO110/PO111 (segment 11, line 13)"  # PO108/09 empty
    assert tr["lines[0].gtin"] == "PO111 (segment 11, line 13)"
    assert tr["lines[0].item_ids[2]"] == "LIN02/LIN03 (segment 12, line 14)"
    assert tr["lines[0].buyer_part_number"] == "LIN03 (segment 12, line 14)"
    assert tr["lines[0].description"] == "PID05 (segment 13, line 15)"
    assert tr["other_parties.ST@line1.city"] == "N401 (segment 15, line 17)"
    assert tr["lines[1].quantity"] == "PO102 (segment 16, line 18)"
    assert tr["totals.line_count"] == "CTT01 (segment 17, line 19)"
    assert tr["totals.amounts[0].value"] == "AMT02 (segment 18, line 20)"
    data = order.model_dump(mode="json")
    for path in tr:
        assert _resolve(data, path) not in (None, [], {}), path
    assert order == order_from(
        "BEG*00*SA*P1**20240115",
        "PER*BD*Jane*TE*555",
        "DTM*002****RD8*20240310-20240312",
        "TD5*O*2*UPSN*M*UPS GROUND*CC",
        "FOB*PP*OR*Dock*02*DDP",
        "N1*BY*Buyer",
        "N1*ST*First",
        "N1*ST*Second",
        "N3*2 Second St",
        "PO1*1*1*EA*1**VP*A***UP*012345678905",
        "LIN**BP*B1",
        "PID*F****Widget",
        "N1*ST*Line party",
        "N4*Town",
        "PO1*2*1*EA*1",
        "CTT*2",
        "AMT*1*5",
    )


# -- errors --------------------------------------------------------------------------------------


def test_missing_beg():
    with pytest.raises(MappingError) as info:
        order_from("REF*DP*1", "PO1*1*1*EA*1", "CTT*1")
    assert info.value.reason == "MISSING_PO_NUMBER"
    assert "no BEG segment" in info.value.message
    assert info.value.position == "line 3, segment 3"


def test_empty_beg03():
    with pytest.raises(MappingError) as info:
        order_from("BEG*00*SA***20240115")
    assert info.value.reason == "MISSING_PO_NUMBER"
    assert "BEG03 is empty" in info.value.message


def test_ctt_count_mismatch_names_both_numbers():
    with pytest.raises(MappingError) as info:
        order_from("BEG*00*SA*P1**20240115", "PO1*1*1*EA*1", "PO1*2*1*EA*1", "CTT*3")
    assert info.value.reason == "X12_CTT_COUNT"
    assert "CTT01 says 3 line items but the order has 2 PO1 segments" in info.value.message
    assert info.value.position == "line 7, segment 5 of transaction 0001 (CTT), element CTT01"


@pytest.mark.parametrize(
    ("segment", "element"),
    [
        ("PO1*1*ten*EA*1", "PO102"),
        ("PO1*1*1*EA*1,50", "PO104"),
        ("PO1*1*NaN*EA*1", "PO102"),
        ("PO1*1*1E999999999*EA*1", "PO102"),
        ("PO1*1*1*EA*1_000", "PO104"),
    ],
)
def test_bad_number_names_segment_and_element(segment: str, element: str):
    with pytest.raises(MappingError) as info:
        order_from("BEG*00*SA*P1**20240115", "REF*DP*1", segment)
    assert info.value.reason == "X12_BAD_NUMBER"
    assert info.value.position == f"line 6, segment 4 of transaction 0001 (PO1), element {element}"
    assert element in info.value.message


def test_missing_quantity():
    with pytest.raises(MappingError) as info:
        order_from("BEG*00*SA*P1**20240115", "PO1*1**EA*1")
    assert info.value.reason == "X12_MISSING_QUANTITY"


def test_bad_date():
    with pytest.raises(MappingError) as info:
        order_from("BEG*00*SA*P1**20241315")
    assert info.value.reason == "X12_BAD_DATE"
    assert "BEG05 '20241315' is not a date" in info.value.message
    assert info.value.position.endswith("element BEG05")


def test_not_an_850():
    docs = documents(FIXTURES / "multi_interchange.edi")
    invoice = next(d for d in docs if d.doc_type == "810")
    with pytest.raises(MappingError) as info:
        map_850(invoice)
    assert info.value.reason == "X12_NOT_850"


def test_every_fixture_850_maps():
    for name in (
        "multi_interchange.edi",
        "unpadded_isa.edi",
        "newline_terminator.edi",
        "bom_indented_crlf.edi",
        "isa12_00300.edi",
        "latin1.edi",
    ):
        orders = [map_850(d) for d in documents(FIXTURES / name) if d.doc_type == "850"]
        assert orders and all(o.po_number.startswith("PO-") for o in orders), name


# -- code tables ---------------------------------------------------------------------------------


def test_default_tables():
    tables = default_tables()
    assert isinstance(tables, X12Tables)
    assert tables is default_tables()  # loaded once
    assert tables.purpose["05"] is Purpose.REPLACE
    assert tables.product_ids["VP"] == "sku"
    assert tables.product_ids["UK"] == "gtin"
    assert tables.party_roles["SU"] == "seller"
    assert tables.date_roles["002"] == "requested_delivery"
    assert tables.reference_roles["VR"] == "vendor_id"
    assert tables.allowance_charge == {"A": "allowance", "C": "charge"}
    assert tables.sources == (str(DEFAULT_TABLES_PATH),)


def test_partner_override(tmp_path: Path):
    partner = tmp_path / "850.yaml"
    partner.write_text(
        'date_roles:\n  "017": requested_delivery\nproduct_ids:\n  "IN": sku\n  "BP": null\n'
    )
    tables = load_x12_tables(overrides=[partner])
    assert tables.date_roles["017"] == "requested_delivery"
    assert tables.date_roles["002"] == "requested_delivery"
    assert tables.product_ids["IN"] == "sku"
    assert "BP" not in tables.product_ids
    doc = _doc("BEG*00*SA*P1**20240115", "DTM*017*20240301", "PO1*1*1*EA*1**BP*B1*IN*I1")
    order = map_850(doc, tables)
    assert order.requested_delivery_date == dt.date(2024, 3, 1)
    assert (order.lines[0].sku, order.lines[0].buyer_part_number) == ("I1", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "date_roles:\n  002: requested_delivery\n",
            "date_roles[2]: the code must be a quoted string",
        ),
        ('purpose:\n  "00": fresh\n', "purpose['00']: 'fresh' is not one of"),
        ('colours:\n  "R": red\n', "unknown table 'colours'"),
        ('date_roles:\n  "002": Requested Delivery\n', "must be a snake_case name"),
        ('party_roles:\n  "by": buyer\n', "1 to 3 upper-case letters or digits"),
        ("date_roles: [1, 2]\n", "table 'date_roles' must map"),
        ("date_roles:\n  '002': [x\n", "not valid YAML"),
        ("- a list\n", "expected a mapping"),
        ("version: 2\n", "version 2 is not supported"),
    ],
)
def test_bad_override_is_a_config_error_naming_the_key(tmp_path: Path, text: str, expected: str):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_x12_tables(overrides=[bad])
    assert any(expected in p and str(bad) in p for p in info.value.problems), info.value.problems


def test_base_file_must_have_every_table_and_no_nulls(tmp_path: Path):
    base = tmp_path / "base.yaml"
    base.write_text('purpose:\n  "00": original\n  "01": null\n')
    with pytest.raises(ConfigError) as info:
        load_x12_tables(base)
    problems = info.value.problems
    assert any("null removes an entry, only in an override file" in p for p in problems)
    assert any("table 'product_ids' is missing" in p for p in problems)


def test_empty_base_file_misses_every_table(tmp_path: Path):
    base = tmp_path / "base.yaml"
    base.write_text("# nothing yet\n")
    with pytest.raises(ConfigError) as info:
        load_x12_tables(base)
    assert len(info.value.problems) == 8
    assert all(p.startswith(f"{base}: table '") for p in info.value.problems)
    # an empty override changes nothing
    assert load_x12_tables(overrides=[base]).product_ids == default_tables().product_ids


def test_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_x12_tables(tmp_path / "nope.yaml")
    assert "cannot read the mapping tables" in info.value.problems[0]

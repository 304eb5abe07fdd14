"""map_orders and its code tables: exact field values, provenance, errors with positions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.errors import ConfigError, MappingError
from gateway.formats.base import Document
from gateway.formats.edifact import parse_edifact
from gateway.mapping.edifact_orders import (
    DEFAULT_TABLES_PATH,
    EdifactTables,
    default_tables,
    load_edifact_tables,
    map_orders,
)
from gateway.model import Order, Purpose

FIXTURES = Path(__file__).parents[1] / "fixtures" / "edifact"
D = Decimal


def documents(data: bytes | Path) -> list[Document]:
    return [e for e in parse_edifact(data) if isinstance(e, Document)]


def _doc(*segments: str, una: str = "UNA:+.? '", unb: str | None = None) -> Document:
    """One ORDERS message whose UNH..UNT wraps `segments` (UNT counted)."""
    body = ["UNH+1+ORDERS:D:96A:UN:EAN008", *segments]
    body.append(f"UNT+{len(body) + 1}+1")
    segs = [unb or "UNB+UNOC:3+SENDER:14+RECEIVER:14+240115:1200+IC1", *body, "UNZ+1+IC1"]
    (doc,) = documents(((una + "\n" if una else "") + "'\n".join(segs) + "'\n").encode("latin-1"))
    return doc


def order_from(
    *segments: str, una: str = "UNA:+.? '", trace: dict[str, str] | None = None
) -> Order:
    return map_orders(_doc(*segments, una=una), trace=trace)


LINE = ("LIN+1++4000862141404:EN", "QTY+21:1")


@pytest.fixture(scope="module")
def traced() -> tuple[Order, dict[str, str]]:
    (doc,) = documents(FIXTURES / "orders_full_d96a.edi")
    trace: dict[str, str] = {}
    return map_orders(doc, trace=trace), trace


@pytest.fixture(scope="module")
def full(traced: tuple[Order, dict[str, str]]) -> Order:
    return traced[0]


# -- the full fixture: every mapped segment -------------------------------------------------


def test_header(full: Order):
    assert full.po_number == "PO-4711"
    assert full.purpose is Purpose.ORIGINAL
    assert full.order_type == "220"
    assert full.order_date == dt.date(2024, 1, 15)
    assert full.requested_delivery_date == dt.date(2024, 1, 20)
    assert full.currency == "EUR"
    assert full.contract_number == "CON+2024"  # released '+' in RFF+CT:CON?+2024
    assert full.channel == "edifact"
    assert full.notes == ["Please deliver to gate 4: ring the bell Thanks'"]
    assert full.extensions == {"response_type": "AB"}


def test_dates(full: Order):
    assert [(d.role, d.qualifier, d.date, d.time) for d in full.dates] == [
        ("order_date", "137", dt.date(2024, 1, 15), None),
        ("requested_delivery", "2", dt.date(2024, 1, 20), "1030"),  # format 203
        ("delivery_earliest_start", "64", dt.date(2024, 1, 18), None),  # 718 range
        ("delivery_earliest_end", "64", dt.date(2024, 1, 22), None),
        ("contract_date", "171", dt.date(2023, 12, 1), None),  # DTM in the RFF+CT group
    ]


def test_references(full: Order):
    assert [(r.qualifier, r.value, r.role) for r in full.references] == [
        ("CT", "CON+2024", "contract"),
        ("ON", "PO-4711", "order_number"),
    ]


def test_parties(full: Order):
    buyer = full.buyer
    assert buyer is not None
    assert (buyer.code, buyer.code_qualifier, buyer.name) == (
        "5412345000013",
        "9",
        "Buyer Stores Ltd",
    )
    assert buyer.address_lines == ["Main Street 1", "Building B"]
    assert (buyer.city, buyer.region, buyer.postal_code, buyer.country) == (
        "Brussels",
        None,
        "1000",
        "BE",
    )
    assert buyer.contact is not None
    assert (buyer.contact.name, buyer.contact.phone, buyer.contact.email, buyer.contact.fax) == (
        "Jane Buyer",
        "3225551234",
        "jane@example.com",
        None,
    )
    assert [(r.qualifier, r.value, r.role) for r in buyer.references] == [
        ("VA", "BE0123456789", "vat_registration")
    ]
    assert full.seller is not None and (full.seller.code, full.seller.name) == (
        "8712345000004",
        "Supplier BV",
    )
    assert full.ship_to is not None and full.ship_to.code == "5412345000020"
    assert full.bill_to is not None and full.bill_to.code == "5412345000037"
    assert set(full.other_parties) == {"UC", "DP@line2"}
    assert full.other_parties["UC"].code == "5412345000044"
    assert full.other_parties["DP@line2"].code == "5412345000075"


def test_taxes_terms_shipping_allowances_totals(full: Order):
    assert [(t.type, t.percent, t.amount, t.jurisdiction) for t in full.taxes] == [
        ("VAT", D("21"), D("210"), None)
    ]
    (terms,) = full.payment_terms
    assert terms.type_code == "1"
    assert terms.basis_date_code == "5"
    assert terms.net_days == 30
    assert terms.net_due_date == dt.date(2024, 2, 15)
    assert terms.discount_percent == D("2.5")  # decimal comma declared in the UNA
    assert terms.discount_amount == D("25")
    ship = full.shipping
    assert ship is not None
    assert (ship.routing_sequence, ship.transport_method) == ("20", "30")
    assert (ship.carrier_code, ship.carrier_qualifier, ship.routing) == (
        "DHLX",
        "172",
        "DHL Express",
    )
    assert (ship.incoterms, ship.incoterms_location) == ("FCA", "BRU")
    (alc,) = full.allowances_charges
    assert (alc.indicator, alc.code, alc.percent, alc.amount) == (
        "allowance",
        "TD",
        D("5"),
        D("50"),
    )
    totals = full.totals
    assert totals is not None
    assert totals.line_count == 2
    assert totals.subtotal == D("1314.56")
    assert totals.total == D("1524.56")
    assert [(a.qualifier, a.value) for a in totals.amounts] == [("128", "1524.56")]


def test_lines(full: Order):
    first, second = full.lines
    assert first.line_number == "1"
    assert (first.quantity, first.uom) == (D("12"), "PCE")
    assert (first.unit_price, first.price_basis) == (D("102.88"), "1 PCE")
    assert (first.gtin, first.sku, first.buyer_part_number) == ("5412345678908", "ART-1", "BUY-9")
    assert [(i.qualifier, i.value) for i in first.item_ids] == [
        ("EN", "5412345678908"),
        ("SA", "ART-1"),
        ("IN", "BUY-9"),
    ]
    assert first.description == "Blue widget large"
    assert [(p.qualifier, p.value) for p in first.prices] == [("AAB", "110")]
    assert [(r.qualifier, r.value, r.role) for r in first.references] == [("LI", "1", "line_item")]
    assert [(d.role, d.date) for d in first.dates] == [("requested_delivery", dt.date(2024, 1, 21))]
    assert [(d.location, d.location_qualifier, d.quantity) for d in first.destinations] == [
        ("5412345000051", "9", D("5")),
        ("5412345000068", "9", D("7")),
    ]
    assert [(t.type, t.percent, t.amount) for t in first.taxes] == [("VAT", D("6"), D("74.08"))]
    assert [(a.indicator, a.code, a.amount) for a in first.allowances_charges] == [
        ("charge", "FC", D("10"))
    ]
    assert first.notes == ["Fragile"]
    # QTY+21 wins over QTY+1; a gross price alone is the unit price.
    assert (second.quantity, second.uom, second.unit_price) == (D("4"), "KGM", D("20"))


def test_unmapped_and_source(full: Order):
    assert full.unmapped == [
        "TAX+7+VAT+++:::21+S",  # the tax category (5305) has no field
        "MOA+203:1234,56",  # a line amount
        "QTY+1:3",  # the discrete quantity, after QTY+21 won
    ]
    src = full.source
    assert (src.sender_id, src.sender_qualifier) == ("5412345000013", "14")
    assert (src.receiver_id, src.receiver_qualifier) == ("8712345000004", "14")
    assert src.interchange_control_number == "IC0001"
    assert src.transaction_control_number == "ME0001"
    assert src.version == "D:96A:UN:EAN008"
    assert src.test_indicator == "1"
    assert src.group_control_number is None


def test_trace(traced: tuple[Order, dict[str, str]]):
    _, trace = traced
    assert trace["po_number"] == "BGM 1004 (segment 2, line 4)"
    assert trace["order_date"] == "DTM 2380 (segment 3, line 5)"
    assert trace["buyer.name"] == "NAD+BY C080 3036 (segment 10, line 12)"
    assert trace["buyer.contact.email"] == "COM C076 3148 (segment 14, line 16)"
    assert trace["lines[0].quantity"] == "QTY C186 6060 (segment 36, line 38)"
    assert trace["lines[0].unit_price"] == "PRI C509 5118 (segment 40, line 42)"
    assert trace["lines[0].description"] == (
        "IMD C273 7008 (segment 34, line 36); IMD C273 7008 (segment 35, line 37)"
    )
    assert trace["lines[0].destinations[1].quantity"] == "QTY C186 6060 (segment 46, line 48)"
    assert trace["lines[0].destinations[1].location"] == "LOC C517 3225 (segment 45, line 47)"
    assert trace["totals.line_count"] == "CNT C270 6066 (segment 60, line 62)"
    assert trace["unmapped[2]"] == "QTY segment (segment 52, line 54)"
    assert trace["source.interchange_control_number"] == "UNB 0020"


def test_every_set_field_is_traced(traced: tuple[Order, dict[str, str]]):
    order, trace = traced
    data = order.model_dump(exclude_defaults=True, exclude={"channel", "purpose"})

    def leaves(value: object, path: str) -> list[str]:
        if isinstance(value, dict):
            return [p for k, v in value.items() for p in leaves(v, f"{path}.{k}" if path else k)]
        if isinstance(value, list):
            return [p for i, v in enumerate(value) for p in leaves(v, f"{path}[{i}]")]
        return [path]

    missing = []
    for path in leaves(data, ""):
        # A value is traced itself, or as the list entry / object it belongs to.
        prefixes = [path] + [path[:i] for i in range(len(path)) if path[i] in ".["]
        if not any(p in trace for p in prefixes):
            missing.append(path)
    assert missing == []


def test_trace_none_records_nothing():
    doc = documents(FIXTURES / "orders_full_d96a.edi")[0]
    assert map_orders(doc, trace=None) == map_orders(doc)


def test_json_round_trip(full: Order):
    assert Order.model_validate_json(full.model_dump_json()) == full


# -- header segments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "purpose"),
    [
        ("9", Purpose.ORIGINAL),
        ("1", Purpose.CANCEL),
        ("5", Purpose.REPLACE),
        ("4", Purpose.CHANGE),
        ("6", Purpose.CONFIRMATION),
        ("7", Purpose.DUPLICATE),
        ("31", Purpose.DUPLICATE),
        ("16", Purpose.INFORMATION),
    ],
)
def test_purpose_table(code: str, purpose: Purpose):
    assert order_from(f"BGM+220+PO-1+{code}", *LINE).purpose is purpose


def test_unknown_and_missing_purpose():
    odd = order_from("BGM+220+PO-1+99", *LINE)
    assert odd.purpose is Purpose.OTHER and odd.extensions["purpose_code"] == "99"
    assert order_from("BGM+220+PO-1", *LINE).purpose is Purpose.ORIGINAL


def test_d01b_document_identification_composite():
    o = order_from("BGM+220+PO-9:3+9", *LINE)
    assert o.po_number == "PO-9"
    assert "BGM+220+PO-9:3+9" in o.unmapped  # the version (1056) has no field


def test_date_formats():
    o = order_from(
        "BGM+220+PO-1+9",
        "DTM+137:240115:101",
        "DTM+2:20240120103000:204",
        "DTM+10:202401181200-202401191300:719",
        "DTM+999:20240301:102",
        "DTM+63:2024W03:616",
        *LINE,
    )
    assert o.order_date == dt.date(2024, 1, 15)
    assert [(d.role, d.qualifier, d.date, d.time) for d in o.dates] == [
        ("order_date", "137", dt.date(2024, 1, 15), None),
        ("requested_delivery", "2", dt.date(2024, 1, 20), "103000"),
        ("requested_ship_start", "10", dt.date(2024, 1, 18), "1200"),
        ("requested_ship_end", "10", dt.date(2024, 1, 19), "1300"),
        ("999", "999", dt.date(2024, 3, 1), None),  # unknown qualifier keeps its code
    ]
    assert o.unmapped == ["DTM+63:2024W03:616"]  # a format we do not read: kept raw


def test_requested_delivery_range_sets_the_start():
    o = order_from("BGM+220+PO-1+9", "DTM+2:20240118-20240122:718", *LINE)
    assert o.requested_delivery_date == dt.date(2024, 1, 18)


@pytest.mark.parametrize(
    "dtm",
    ["DTM+137:20241301:102", "DTM+137:2024011:102", "DTM+2:2024-01-01:718", "DTM+2:2401151:203"],
)
def test_bad_date(dtm: str):
    with pytest.raises(MappingError) as info:
        order_from("BGM+220+PO-1+9", dtm, *LINE)
    assert info.value.reason == "EDIFACT_BAD_DATE"
    assert info.value.position == "segment 3 (line 5) of message 1 (DTM), element 2380"


def test_name_from_c058_when_there_is_no_c080():
    o = order_from("BGM+220+PO-1+9", "NAD+SU+5013546107732::9+COMPANY ABC:DEPOT 3", *LINE)
    assert o.seller is not None
    assert (o.seller.name, o.seller.address_lines) == ("COMPANY ABC", ["DEPOT 3"])


def test_name_components_and_region():
    o = order_from(
        "BGM+220+PO-1+9", "NAD+ST+++ACME:WEST:DEPOT+1 ROAD:UNIT 2+DAYTON+OH+45402+US", *LINE
    )
    assert o.ship_to is not None
    assert o.ship_to.name == "ACME WEST DEPOT"
    assert o.ship_to.address_lines == ["1 ROAD", "UNIT 2"]
    assert (o.ship_to.city, o.ship_to.region, o.ship_to.postal_code, o.ship_to.country) == (
        "DAYTON", "OH", "45402", "US",
    )  # fmt: skip


def test_second_party_with_a_taken_role_is_kept():
    o = order_from("BGM+220+PO-1+9", "NAD+DP+1::9", "NAD+ST+2::9", "NAD+DP+3::9", *LINE)
    assert o.ship_to is not None and o.ship_to.code == "1"
    assert {k: p.code for k, p in o.other_parties.items()} == {"ST": "2", "DP": "3"}


def test_contact_without_cta_and_fax():
    o = order_from("BGM+220+PO-1+9", "NAD+BY+1::9", "COM+0123:FX", "COM+0456:XX", *LINE)
    assert o.buyer is not None and o.buyer.contact is not None
    assert (o.buyer.contact.name, o.buyer.contact.fax) == (None, "0123")
    assert o.unmapped == ["COM+0456:XX"]


def test_reference_currency_is_the_one_with_usage_2():
    o = order_from("BGM+220+PO-1+9", "CUX+3:USD:4+2:EUR:9+1,1", *LINE, una="UNA:+,? '")
    assert o.currency == "EUR"
    assert o.unmapped == ["CUX+3:USD:4+2:EUR:9+1,1"]  # target currency and rate: kept


def test_payment_terms_in_months_are_kept_raw():
    o = order_from("BGM+220+PO-1+9", "PAT+1++5:3:M:2", *LINE)
    assert o.payment_terms[0].net_days is None
    assert o.unmapped == ["PAT+1++5:3:M:2"]


def test_discount_terms():
    o = order_from("BGM+220+PO-1+9", "PAT+22++5:3:D:10", "PCD+12:3", "DTM+12:20240125:102", *LINE)
    (terms,) = o.payment_terms
    assert (terms.discount_days, terms.discount_percent, terms.discount_due_date) == (
        10, D("3"), dt.date(2024, 1, 25),
    )  # fmt: skip


def test_segments_in_groups_we_do_not_map_go_to_unmapped():
    # The QTY and DTM of a PAC group are not the line's: kept raw, the line keeps QTY+21.
    o = order_from(
        "BGM+220+PO-1+9",
        "LIN+1++4000862141404:EN",
        "QTY+21:10",
        "PAC+2++CT",
        "QTY+52:5",
        "DTM+36:20250101:102",
    )
    assert o.lines[0].quantity == D("10")
    assert o.lines[0].dates == []
    assert o.unmapped == ["PAC+2++CT", "QTY+52:5", "DTM+36:20250101:102"]


def test_unmapped_text_escapes_service_characters():
    o = order_from("BGM+220+PO-1+9", "ALI+DE", "GIR+3+A?+B?:C?'D??E:BN", *LINE)
    assert o.unmapped == ["ALI+DE", "GIR+3+A?+B?:C?'D??E:BN"]


# -- numbers ---------------------------------------------------------------------------------


def test_decimal_point_accepted_without_una():
    # No UNA: the decimal mark is ',' by default; '25.00' is unambiguous (no thousands marks).
    o = order_from(
        "BGM+220+PO-1+9", "LIN+1++4000862141404:EN", "QTY+21:2,5", "PRI+AAA:25.00", una=""
    )
    assert (o.lines[0].quantity, o.lines[0].unit_price) == (D("2.5"), D("25.00"))


def test_decimal_comma_declared_in_una():
    o = order_from(
        "BGM+220+PO-1+9", "LIN+1++4000862141404:EN", "QTY+21:1,5", "PRI+AAA:0,75", una="UNA:+,? '"
    )
    assert (o.lines[0].quantity, o.lines[0].unit_price) == (D("1.5"), D("0.75"))


@pytest.mark.parametrize(
    ("segment", "element"),
    [
        ("QTY+21:1.000,5", "C186 6060"),  # both marks: ambiguous
        ("QTY+21:1,2,3", "C186 6060"),
        ("QTY+21:12A", "C186 6060"),
        ("QTY+21:1E5", "C186 6060"),
        ("QTY+21:1e999999", "C186 6060"),
        ("PRI+AAA:$1.17", "C509 5118"),
        ("CNT+2:1.5", "C270 6066"),
    ],
)
def test_bad_number_names_segment_and_element(segment: str, element: str):
    with pytest.raises(MappingError) as info:
        order_from("BGM+220+PO-1+9", "LIN+1++4000862141404:EN", "QTY+21:1", segment)
    assert info.value.reason == "EDIFACT_BAD_NUMBER"
    assert (
        info.value.position == f"segment 5 (line 7) of message 1 ({segment[:3]}), element {element}"
    )


def test_bad_total_amount():
    with pytest.raises(MappingError) as info:
        order_from("BGM+220+PO-1+9", *LINE, "UNS+S", "MOA+86:NaN")
    assert info.value.reason == "EDIFACT_BAD_NUMBER"
    assert info.value.position == "segment 6 (line 8) of message 1 (MOA), element C516 5004"


def test_line_amounts_are_kept_raw_not_parsed():
    assert order_from("BGM+220+PO-1+9", *LINE, "MOA+203:n/a").unmapped == ["MOA+203:n/a"]


def test_too_many_components_in_free_text():
    # An unescaped ':' (as in the corpus' example_order_error.edi) adds a component.
    with pytest.raises(MappingError) as info:
        order_from("BGM+220+PO-1+9", *LINE, "IMD+F++:::Soup concentrate:for soups 1:10 and 1:6")
    assert info.value.reason == "EDIFACT_COMPONENTS"
    assert "'?:'" in info.value.message


# -- lines -----------------------------------------------------------------------------------


def test_discrete_quantity_when_there_is_no_qty_21():
    o = order_from("BGM+220+PO-1+9", "LIN+1++4000862141404:EN", "QTY+1:1000")
    assert o.lines[0].quantity == D("1000")


def test_missing_quantity():
    with pytest.raises(MappingError) as info:
        order_from(
            "BGM+220+PO-1+9",
            "LIN+1++4000862141404:EN",
            "QTY+59:12",
            "LIN+2++4000862141404:EN",
            "QTY+21:1",
        )
    assert info.value.reason == "EDIFACT_MISSING_QUANTITY"
    assert info.value.position == "segment 3 (line 5) of message 1 (LIN)"


def test_net_price_preferred_over_gross():
    o = order_from("BGM+220+PO-1+9", *LINE, "PRI+AAB:12", "PRI+AAA:10:CT", "PRI+INF:15")
    line = o.lines[0]
    assert (line.unit_price, line.price_basis) == (D("10"), "CT")
    assert [(p.qualifier, p.value) for p in line.prices] == [("AAB", "12"), ("INF", "15")]


def test_item_number_without_type_is_kept():
    o = order_from("BGM+220+PO-1+9", "LIN+1++4000862141404", "PIA+5+111:SA+222", "QTY+21:1")
    assert o.lines[0].item_ids[0].value == "111"
    assert o.unmapped == ["LIN+1++4000862141404", "PIA+5+111:SA+222"]


def test_second_contact_keeps_its_communication_numbers():
    o = order_from(
        "BGM+220+PO-1+9", "NAD+BY+1::9", "CTA+PD+:Ann", "COM+1:TE", "CTA+IC+:Bob", "COM+2:TE", *LINE
    )
    assert o.buyer is not None and o.buyer.contact is not None
    assert (o.buyer.contact.name, o.buyer.contact.phone) == ("Ann", "1")
    assert o.unmapped == ["CTA+IC+:Bob", "COM+2:TE"]


def test_pia_and_unknown_item_number_types():
    o = order_from("BGM+220+PO-1+9", "LIN+1++ABC:MF", "PIA+5+111:SA+222:BP+333:UP", "QTY+21:1")
    line = o.lines[0]
    assert (line.sku, line.buyer_part_number, line.gtin) == ("111", "222", "333")
    assert [i.qualifier for i in line.item_ids] == ["MF", "SA", "BP", "UP"]


def test_line_nad_and_line_destination_without_qty():
    o = order_from("BGM+220+PO-1+9", *LINE, "LOC+7+STORE1::92", "NAD+ST+9::9")
    assert o.lines[0].destinations == []
    assert o.unmapped == ["LOC+7+STORE1::92"]
    assert o.other_parties["ST@line1"].code == "9"


def test_cnt_count_mismatch_names_both_numbers():
    with pytest.raises(MappingError) as info:
        order_from("BGM+220+PO-1+9", *LINE, "UNS+S", "CNT+2:3")
    exc = info.value
    assert exc.reason == "EDIFACT_CNT_COUNT"
    assert "CNT+2 says 3" in exc.message and "has 1 LIN" in exc.message
    assert exc.position == "segment 6 (line 8) of message 1 (CNT), element C270 6066"


def test_summary_section():
    o = order_from(
        "BGM+220+PO-1+9",
        *LINE,
        "UNS+S",
        "MOA+86:99.5",
        "MOA+999:1",
        "CNT+1:1",
        "ALC+C++++SH",
        "MOA+23:4.5",
    )
    assert o.totals is not None
    assert (o.totals.total, o.totals.quantity_total) == (D("99.5"), D("1"))
    assert [(a.qualifier, a.value) for a in o.totals.amounts] == [("999", "1")]
    assert [(a.indicator, a.code, a.amount) for a in o.allowances_charges] == [
        ("charge", "SH", D("4.5"))
    ]


def test_lin_after_the_summary_is_kept_raw():
    o = order_from("BGM+220+PO-1+9", *LINE, "UNS+S", "LIN+2++4000862141404:EN")
    assert len(o.lines) == 1 and o.unmapped == ["LIN+2++4000862141404:EN"]


# -- errors ----------------------------------------------------------------------------------


def test_missing_bgm():
    with pytest.raises(MappingError) as info:
        order_from("DTM+137:20240115:102", *LINE)
    assert info.value.reason == "MISSING_PO_NUMBER"
    assert "no BGM" in info.value.message
    assert info.value.position == "segment 3 (line 3)"


def test_empty_po_number():
    with pytest.raises(MappingError) as info:
        order_from("BGM+220++9", *LINE)
    assert info.value.reason == "MISSING_PO_NUMBER"
    assert "empty" in info.value.message


def test_not_an_orders():
    doc = documents(
        b"UNB+UNOA:3+S+R+240115:1200+1'UNH+1+INVOIC:D:96A:UN'BGM+380+INV-1+9'UNT+3+1'UNZ+1+1'"
    )[0]
    with pytest.raises(MappingError) as info:
        map_orders(doc)
    assert info.value.reason == "EDIFACT_NOT_ORDERS"


def test_source_group_from_ung():
    first = documents(FIXTURES / "groups_ung.edi")[0]
    o = map_orders(first)
    assert o.source.group_control_number == "G1"
    assert o.po_number == "PO-G1-1"


def test_every_fixture_order_maps():
    for path in sorted(FIXTURES.glob("*.edi")):
        if path.name in ("unoa_with_latin1_byte.edi",):
            continue
        for doc in documents(path):
            if doc.doc_type == "ORDERS":  # the ORDCHG fixtures have their own tests
                assert map_orders(doc).po_number


# -- tables ----------------------------------------------------------------------------------


def test_default_tables():
    t = default_tables()
    assert isinstance(t, EdifactTables)
    assert t is default_tables()
    assert t.purpose["9"] is Purpose.ORIGINAL
    assert t.product_ids["EN"] == "gtin" and t.product_ids["SA"] == "sku"
    assert t.party_roles["BY"] == "buyer" and t.party_roles["IV"] == "bill_to"
    assert t.date_roles["137"] == "order_date"
    assert t.sources == (str(DEFAULT_TABLES_PATH),)
    with pytest.raises(TypeError):
        t.purpose["X"] = Purpose.OTHER  # type: ignore[index]


def test_partner_override(tmp_path: Path):
    partner = tmp_path / "orders.yaml"
    partner.write_text(
        'date_roles:\n  "17": requested_delivery\nproduct_ids:\n  "IN": sku\n  "BP": null\n'
    )
    tables = load_edifact_tables(overrides=[partner])
    assert tables.date_roles["17"] == "requested_delivery"
    assert tables.product_ids["IN"] == "sku" and "BP" not in tables.product_ids
    doc = _doc("BGM+220+PO-1+9", "DTM+17:20240201:102", "LIN+1++X1:IN", "PIA+1+X2:BP", "QTY+21:1")
    o = map_orders(doc, tables)
    assert o.requested_delivery_date == dt.date(2024, 2, 1)
    assert (o.lines[0].sku, o.lines[0].buyer_part_number) == ("X1", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("purpose:\n  9: original\n", "must be a quoted string"),
        ('purpose:\n  "9": sometimes\n', "is not one of"),
        ('colours:\n  "X": red\n', "unknown table 'colours'"),
        ('date_roles:\n  "2": Requested Delivery\n', "snake_case"),
        ('date_roles:\n  "toolong": x\n', "1 to 3 upper-case"),
        ("version: 2\n", "version 2 is not supported"),
        ("- a list\n", "expected a mapping"),
        ("purpose: [\n", "not valid YAML"),
    ],
)
def test_bad_override_is_a_config_error_naming_the_key(tmp_path: Path, text: str, expected: str):
    bad = tmp_path / "partner.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_edifact_tables(overrides=[bad])
    assert any(expected in p and str(bad) in p for p in info.value.problems), info.value.problems


def test_base_file_must_have_every_table_and_no_nulls(tmp_path: Path):
    base = tmp_path / "base.yaml"
    base.write_text('version: 1\npurpose:\n  "9": null\n')
    with pytest.raises(ConfigError) as info:
        load_edifact_tables(base)
    problems = "\n".join(info.value.problems)
    assert "only in an override file" in problems
    assert "table 'party_roles' is missing" in problems


def test_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_edifact_tables(tmp_path / "nope.yaml")
    assert "cannot read the mapping tables" in info.value.problems[0]

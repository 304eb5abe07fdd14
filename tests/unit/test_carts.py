"""Cart orders: ShopifyParser / WooCommerceParser, the JMESPath mapping engine and its files.

Exact field values for our own fixtures (written in the platforms' documented shapes),
every public Shopify sample either mapped or refused by name, amounts exact (never via
float), hostile JSON refused with a ParseError, mapping-file mistakes stopped at load.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import jmespath
import pytest

import gateway.formats
import gateway.translate
from gateway.errors import ConfigError, MappingError, ParseError
from gateway.formats.base import (
    Document,
    DocumentRejected,
    Event,
    InterchangeClosed,
    InterchangeOpened,
)
from gateway.formats.carts import MAX_DEPTH, ShopifyParser, WooCommerceParser
from gateway.mapping.jsonmap import (
    SHOPIFY_MAPPING,
    WOOCOMMERCE_MAPPING,
    CartFunctions,
    JsonMapping,
    default_mapping,
    load_mapping,
    load_shopify_mapping,
    map_shopify,
    map_woocommerce,
)
from gateway.model import Order, Purpose
from gateway.translate import MapperSpec, Rejected, Translated, translate
from tests.conftest import corpus_dir

FIXTURES = Path(__file__).parents[1] / "fixtures" / "carts"
SHOPIFY_CREATE = FIXTURES / "shopify_orders_create.json"
SHOPIFY_CANCELLED = FIXTURES / "shopify_orders_cancelled.json"
WOO_CREATED = FIXTURES / "woocommerce_order_created.json"
D = Decimal


def events(data: bytes, parser: ShopifyParser | WooCommerceParser | None = None) -> list[Event]:
    return list((parser or ShopifyParser()).parse(io.BytesIO(data), name="test.json"))


def documents(
    data: bytes, parser: ShopifyParser | WooCommerceParser | None = None
) -> list[Document]:
    return [e for e in events(data, parser) if isinstance(e, Document)]


def closed(data: bytes) -> InterchangeClosed:
    last = events(data)[-1]
    assert isinstance(last, InterchangeClosed)
    return last


def shopify_order(path: Path = SHOPIFY_CREATE, trace: dict[str, str] | None = None) -> Order:
    [doc] = documents(path.read_bytes())
    return map_shopify(doc, trace=trace)


def woo_order(data: bytes | None = None, trace: dict[str, str] | None = None) -> Order:
    [doc] = documents(data or WOO_CREATED.read_bytes(), WooCommerceParser())
    return map_woocommerce(doc, trace=trace)


def doc_of(body: Any, parser: ShopifyParser | WooCommerceParser | None = None) -> Document:
    [doc] = documents(json.dumps(body).encode(), parser)
    return doc


def minimal(**extra: Any) -> dict[str, Any]:
    return {"id": 1, "name": "#1", "line_items": [{"quantity": 1, "price": "1.00"}], **extra}


# ------------------------------------------------------------------------------------------
# Parsers


def test_sniff_is_always_false():
    for parser in (ShopifyParser(), WooCommerceParser()):
        assert parser.sniff(SHOPIFY_CREATE.read_bytes()[:4096]) is False
        assert parser.sniff(b'{"order": {"line_items": []}}') is False
    for cls in (ShopifyParser, WooCommerceParser):
        assert "never recognised by `sniff`" in (cls.__doc__ or "").lower()


def test_shopify_webhook_body_events():
    evs = events(SHOPIFY_CREATE.read_bytes())
    opened, doc, closed = evs
    assert isinstance(opened, InterchangeOpened) and isinstance(doc, Document)
    assert isinstance(closed, InterchangeClosed)
    env = opened.envelope
    assert env.standard == "shopify"
    assert env.sender_id == "acme-store.myshopify.com"
    assert env.interchange_control_number is None
    assert env.test_indicator == "P"
    assert (doc.doc_type, doc.position, doc.control_number, doc.index) == (
        "order",
        "order 1",
        "5551234567890",
        0,
    )
    assert isinstance(doc.body, dict) and doc.body["name"] == "#1042"
    assert closed.document_count == 1 and re.fullmatch(r"[0-9a-f]{64}", closed.digest)


def test_amounts_are_parsed_as_decimal_never_float():
    [doc] = documents(SHOPIFY_CREATE.read_bytes())
    assert doc.body["tax_lines"][0]["rate"] == D("0.0725")
    assert type(doc.body["tax_lines"][0]["rate"]) is Decimal
    assert type(doc.body["total_weight"]) is int


def test_digest_is_canonical():
    layouts = [
        b'{"name": "#1", "line_items": [{"price": "1.00", "quantity": 2}], "rate": 0.0725}',
        b'{"line_items":[{"quantity":2,"price":"1.00"}],"rate":0.0725,"name":"#1"}',
        b'{\n  "rate" : 0.0725,\n  "name" : "\\u00231",\n  "line_items" : [ { "quantity" : 2, "price" : "1.00" } ]\n}\n',
    ]
    digests = {closed(d).digest for d in layouts}
    assert len(digests) == 1
    changed = layouts[0].replace(b"1.00", b"1.01")
    assert closed(changed).digest not in digests
    # numbers keep their text: 1.10 and 1.1 are different inputs
    assert (
        closed(b'{"line_items": [], "x": 1.10}').digest
        != closed(b'{"line_items": [], "x": 1.1}').digest
    )


def test_rest_resource_and_list_positions():
    order = json.loads(SHOPIFY_CREATE.read_text())
    [doc] = documents(json.dumps({"order": order}).encode())
    assert doc.position == "order"
    docs = documents(
        json.dumps(
            {"orders": [order, {**order, "id": 2}, {**order, "id": 3}, {**order, "id": 4}]}
        ).encode()
    )
    assert [d.position for d in docs] == ["orders[0]", "orders[1]", "orders[2]", "orders[3]"]
    assert [d.index for d in docs] == [0, 1, 2, 3]
    assert [d.control_number for d in docs] == ["5551234567890", "2", "3", "4"]
    docs = documents(json.dumps([order, order]).encode())
    assert [d.position for d in docs] == ["[0]", "[1]"]
    assert closed(b'{"orders": []}').document_count == 0


def test_woocommerce_bare_order_and_list():
    evs = events(WOO_CREATED.read_bytes(), WooCommerceParser())
    opened, doc = evs[0], evs[1]
    assert isinstance(opened, InterchangeOpened) and isinstance(doc, Document)
    assert opened.envelope.standard == "woocommerce"
    assert opened.envelope.sender_id == "shop.example.com"
    assert opened.envelope.version == "8.6.1"
    assert (doc.doc_type, doc.position, doc.control_number) == ("order", "order 1", "727")
    body = json.loads(WOO_CREATED.read_text())
    docs = documents(
        json.dumps([body, {**body, "id": 728, "number": "728"}]).encode(), WooCommerceParser()
    )
    assert [(d.position, d.control_number) for d in docs] == [("[0]", "727"), ("[1]", "728")]


def rejected(
    data: bytes, parser: ShopifyParser | WooCommerceParser | None = None
) -> list[DocumentRejected]:
    return [e for e in events(data, parser) if isinstance(e, DocumentRejected)]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"draft_order": {"id": 5, "name": "#D1", "line_items": []}},
            ["draft order (#D1)", "not an order until it is completed"],
        ),
        (
            {
                "id": 5,
                "name": "#D2",
                "status": "open",
                "invoice_url": "https://x",
                "line_items": [],
            },
            ["draft order (#D2)"],
        ),
        (
            {"draft_order": {"id": 5, "name": "#D3", "order_id": 99, "status": "completed"}},
            ["completed as order 99"],
        ),
        (
            {"checkouts": [{"id": 7, "token": "t", "line_items": []}]},
            ["abandoned checkout", "not an order"],
        ),
        (
            {"id": 7, "abandoned_checkout_url": "https://x", "line_items": []},
            ["abandoned checkout"],
        ),
        (
            {"refund": {"id": 8, "order_id": 450, "refund_line_items": []}},
            ["refund (id 8) of order 450", "not an order"],
        ),
        ({"transactions": [{"id": 9, "kind": "capture"}]}, ["Shopify transaction is not an order"]),
        ({"customer": {"id": 9, "email": "a@b.c"}}, ["Shopify customer is not an order"]),
        ({"id": 9, "title": "A product", "variants": []}, ["not a Shopify order", "'title'"]),
        ({"orders": ["#1001"]}, ["JSON string is not a Shopify order"]),
    ],
)
def test_shopify_non_orders_are_rejected_by_name(body: dict[str, Any], words: list[str]):
    [rej] = rejected(json.dumps(body).encode())
    assert rej.reason == "NOT_AN_ORDER"
    for word in words:
        assert word in rej.message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"id": 3, "amount": "5.00", "reason": "", "refunded_by": 1, "line_items": []},
            ["WooCommerce refund (id 3)"],
        ),
        (
            {"id": 4, "status": "checkout-draft", "line_items": [], "order_key": "k"},
            ["checkout draft (id 4)", "still in checkout"],
        ),
        ({"id": 5, "username": "jdoe", "email": "j@x"}, ["WooCommerce customer (id 5)"]),
        (
            {"id": 6, "name": "Hoodie", "permalink": "https://x/p/6"},
            ["WooCommerce product (Hoodie)"],
        ),
    ],
)
def test_woocommerce_non_orders_are_rejected_by_name(body: dict[str, Any], words: list[str]):
    [rej] = rejected(json.dumps(body).encode(), WooCommerceParser())
    assert rej.reason == "NOT_AN_ORDER"
    for word in words:
        assert word in rej.message


def test_a_rejected_object_does_not_stop_the_others():
    order = json.loads(SHOPIFY_CREATE.read_text())
    evs = events(json.dumps([order, {"id": 8, "refund_line_items": []}, order]).encode())
    kinds = [type(e).__name__ for e in evs]
    assert kinds == [
        "InterchangeOpened",
        "Document",
        "DocumentRejected",
        "Document",
        "InterchangeClosed",
    ]
    rej = evs[2]
    assert isinstance(rej, DocumentRejected) and (rej.position, rej.index) == ("[1]", 1)


# -- hostile and broken input ------------------------------------------------------------


def parse_error(data: bytes, parser: ShopifyParser | WooCommerceParser | None = None) -> ParseError:
    with pytest.raises(ParseError) as info:
        events(data, parser)
    return info.value


@pytest.mark.timeout(10)
@pytest.mark.parametrize("depth", [65, 1000, 200_000])
def test_deep_nesting_is_refused_without_recursion(depth: int):
    for opener, closer in (("[", "]"), ('{"a":', "}")):
        data = ('{"line_items": [], "x": ' + opener * depth + "1" + closer * depth + "}").encode()
        err = parse_error(data)
        assert err.reason == "JSON_LIMIT" and "nested" in err.message
    # unterminated, too: refused before the JSON parser sees it
    assert parse_error(b"[" * depth).reason == "JSON_LIMIT"


@pytest.mark.timeout(10)
def test_depth_scan_stays_linear_on_quotes_outside_strings():
    # '\\"' outside a string: a string pattern that can fail rescans from every quote
    data = b"[" + b'\\"' * 2_000_000
    assert parse_error(data).reason == "JSON_SYNTAX"
    data = b'{"line_items": [], "x": "' + b"\\\\" * 1_000_000 + b'"}'
    assert len(documents(data)) == 1


def test_depth_at_the_limit_is_read_and_brackets_in_strings_do_not_count():
    inner = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    [doc] = documents(('{"line_items": [], "x": ' + inner + "}").encode())
    assert doc.body["line_items"] == []
    text = "[{" * 500 + '\\"'
    [doc] = documents(json.dumps({"line_items": [], "note": text}).encode())
    assert doc.body["note"] == text


def test_oversized_input_is_refused():
    data = json.dumps({"line_items": [], "note": "x" * 2000}).encode()
    err = parse_error(data, ShopifyParser(max_bytes=1000))
    assert err.reason == "JSON_LIMIT" and "1,000 bytes" in err.message
    assert len(documents(data, ShopifyParser(max_bytes=len(data)))) == 1


@pytest.mark.parametrize(
    ("data", "reason", "position"),
    [
        (b'{"line_items": [],\n  "name": "#1",\n  "x": }', "JSON_SYNTAX", "line 3, column 8"),
        (b'{"line_items": [1, 2,]}', "JSON_SYNTAX", "line 1, column 22"),
        (b'{"line_items": [], "total": NaN}', "JSON_SYNTAX", None),
        (b'{"line_items": [], "total": Infinity}', "JSON_SYNTAX", None),
        (b"", "EMPTY", "byte 0"),
        (b" \n ", "EMPTY", "byte 0"),
        (b'{"name": "caf\xe9"}', "JSON_ENCODING", "byte 13"),
        (b'"an order"', "JSON_STRUCTURE", "line 1, column 1"),
        (b"42", "JSON_STRUCTURE", "line 1, column 1"),
        (b'{"orders": {"id": 1}}', "JSON_STRUCTURE", "orders"),
        (b"webhook_id=12", "JSON_SYNTAX", "line 1, column 1"),
    ],
)
def test_invalid_json_gives_a_parse_error(data: bytes, reason: str, position: str | None):
    err = parse_error(data)
    assert err.reason == reason, err.message
    if position is not None:
        assert err.position == position


def test_bom_and_duplicate_keys_are_warned_about():
    evs = events(b'\xef\xbb\xbf{"line_items": [], "name": "#1", "name": "#2"}')
    opened = evs[0]
    assert isinstance(opened, InterchangeOpened)
    assert any("byte order mark" in w for w in opened.warnings)
    assert any("'name'" in w for w in opened.warnings)
    doc = evs[1]
    assert isinstance(doc, Document) and doc.body["name"] == "#2"


def test_a_huge_integer_is_a_parse_error_not_a_crash():
    err = parse_error(b'{"line_items": [], "id": ' + b"9" * 5000 + b"}")
    assert err.reason == "JSON_SYNTAX"


# ------------------------------------------------------------------------------------------
# Shopify mapping: exact values


def test_shopify_orders_create_exact_values():
    o = shopify_order()
    assert o.channel == "shopify"
    assert o.po_number == "#1042"
    assert o.order_date == dt.date(2024, 3, 5)
    assert o.purpose == Purpose.ORIGINAL
    assert o.currency == "USD"
    assert o.customer_email == "jane.doe@example.com"
    assert o.customer_phone == "+1 415-555-0100"
    assert o.notes == ["Please leave the parcel at the back door."]
    assert [(r.qualifier, r.value, r.role) for r in o.references] == [
        ("shopify_order_id", "5551234567890", None),
        ("order_number", "1042", None),
        ("buyer_po_number", "PO-7788", "buyer_purchase_order"),
    ]
    assert o.buyer is not None and o.buyer.model_dump(exclude_defaults=True) == {
        "name": "Doe Design LLC",
        "code": "6200001",
        "code_qualifier": "shopify_customer_id",
        "contact": {"name": "Jane Doe", "email": "jane.doe@example.com"},
    }
    assert o.ship_to is not None and o.ship_to.model_dump(exclude_defaults=True) == {
        "name": "Jane Doe",
        "address_lines": ["742 Evergreen Terrace"],
        "city": "Sacramento",
        "region": "CA",
        "postal_code": "95814",
        "country": "US",
        "contact": {"name": "Jane Doe", "phone": "+1 916-555-0199"},
    }
    assert o.bill_to is not None
    assert (o.bill_to.name, o.bill_to.address_lines, o.bill_to.city, o.bill_to.postal_code) == (
        "Doe Design LLC",
        ["500 Market St", "Suite 12"],
        "San Francisco",
        "94105",
    )

    first, second = o.lines
    assert (first.quantity, first.unit_price, first.sku, first.description) == (
        D("2"),
        D("19.99"),
        "TSHIRT-BLK-M",
        "Organic T-Shirt - Black / M",
    )
    assert [(i.qualifier, i.value) for i in first.item_ids] == [
        ("variant_id", "44001"),
        ("product_id", "77001"),
    ]
    assert [(r.qualifier, r.value) for r in first.references] == [
        ("line_item_id", "13001"),
        ("vendor", "Acme Apparel"),
    ]
    assert [(t.type, t.amount, t.percent) for t in first.taxes] == [
        ("CA State Tax", D("2.61"), D("7.25"))
    ]
    assert first.notes == ["Gift message: Happy birthday!"]
    assert (second.quantity, second.unit_price, second.sku, second.notes) == (
        D("1"),
        D("199.99"),
        "ESPRESSO-01",
        [],
    )

    assert [(a.indicator, a.code, a.amount, a.description) for a in o.allowances_charges] == [
        ("allowance", "SPRING10", D("24.00"), "discount code"),
        ("charge", "shipping", D("9.95"), "UPS Ground"),
    ]
    assert o.shipping is not None
    assert (o.shipping.service_level, o.shipping.carrier_code) == ("UPS Ground", "ups")
    assert [(t.type, t.amount, t.percent) for t in o.taxes] == [
        ("CA State Tax", D("15.66"), D("7.25"))
    ]
    assert o.totals is not None and o.totals.model_dump(exclude_defaults=True) == {
        "subtotal": D("239.97"),
        "tax_total": D("15.66"),
        "shipping_total": D("9.95"),
        "discount_total": D("24.00"),
        "total": D("241.58"),
        "amounts": [{"qualifier": "subtotal_price", "value": "215.97"}],
    }
    assert o.payment is not None and (o.payment.status, o.payment.method) == (
        "paid",
        "shopify_payments",
    )
    assert o.extensions == {
        "note_attributes": {"gift_wrap": "yes", "delivery_window": "afternoon"},
        "source_name": "web",
        "taxes_included": False,
    }
    assert o.source.sender_id == "acme-store.myshopify.com"
    assert o.source.transaction_control_number == "5551234567890"
    assert o.source.test_indicator == "P"


def test_shopify_unmapped_lists_key_names_never_values():
    o = shopify_order()
    assert o.unmapped == [
        "app_id",
        "browser_ip",
        "client_details",
        "confirmation_number",
        "current_subtotal_price",
        "current_total_discounts",
        "current_total_price",
        "current_total_tax",
        "customer_locale",
        "landing_site",
        "presentment_currency",
        "referring_site",
        "tags",
        "total_outstanding",
        "total_tip_received",
        "total_weight",
    ]
    text = o.model_dump_json()
    for personal in ("203.0.113.7", "Mozilla", "XXXX", "0a1b2c3d4e5f", "9f2c4e7a1b3d5f6e"):
        assert personal not in text


def test_shopify_orders_cancelled():
    o = shopify_order(SHOPIFY_CANCELLED)
    assert o.purpose == Purpose.CANCEL
    assert o.po_number == "#1043"
    assert o.currency == "CAD"
    assert o.notes == ["cancel reason: customer"]
    assert o.payment is not None and (o.payment.status, o.payment.method) == ("voided", "manual")
    assert o.bill_to is None  # billing_address null
    assert o.ship_to is not None and o.ship_to.address_lines == ["24 Sussex Dr"]
    assert o.shipping is None and o.allowances_charges == []
    assert [(t.type, t.percent) for t in o.taxes] == [("HST", D("13"))]
    assert o.lines[0].quantity == D("2") and o.lines[0].unit_price == D("22.75")


def test_shopify_trace_names_file_field_and_expression():
    trace: dict[str, str] = {}
    shopify_order(trace=trace)
    assert trace["lines[0].sku"] == "shopify.yaml: lines[0].sku <- line_items[0].sku"
    assert (
        trace["lines[1].unit_price"] == "shopify.yaml: lines[1].unit_price <- line_items[1].price"
    )
    assert trace["po_number"] == "shopify.yaml: po_number <- name"
    assert trace["ship_to.city"] == "shopify.yaml: ship_to.city <- shipping_address.city"
    assert (
        trace["ship_to.region"]
        == "shopify.yaml: ship_to.region <- shipping_address | province_code || province"
    )
    assert (
        trace["lines[0].taxes[0].amount"]
        == "shopify.yaml: lines[0].taxes[0].amount <- line_items[0].tax_lines[0].price"
    )
    assert trace["purpose"] == "shopify.yaml: purpose <- default"
    assert "buyer.contact.phone" not in trace  # nothing found, nothing recorded
    # every recorded source is a JMESPath that gives the value on the input order
    body = json.loads(SHOPIFY_CREATE.read_text(), parse_float=Decimal)
    src = trace["lines[1].item_ids[0].value"].rpartition(" <- ")[2]
    assert jmespath.search(src, body) == 44002
    cancelled: dict[str, str] = {}
    shopify_order(SHOPIFY_CANCELLED, trace=cancelled)
    assert cancelled["purpose"] == "shopify.yaml: purpose <- cancelled_at"


@pytest.mark.parametrize(
    "path", ["shopify_python_api__order.json", "shopify_python_api__orders.json"]
)
def test_corpus_shopify_orders_map(path: str):
    data = (corpus_dir("carts") / path).read_bytes()
    [doc] = documents(data)
    o = map_shopify(doc)
    assert o.po_number == "#1001" and o.order_date == dt.date(2008, 1, 10) and o.currency == "USD"
    assert o.references[0].value == "450789469"
    assert o.buyer is not None and o.buyer.code == "207119551"
    assert o.ship_to is not None and o.ship_to.city == "Louisville" and o.ship_to.region == "KY"
    assert (
        "payment_details" not in o.unmapped
        and "XXXX" not in o.model_dump_json()
        and "4242" not in o.model_dump_json()
    )
    if path.endswith("__order.json"):
        assert [(ln.sku, ln.quantity, ln.unit_price) for ln in o.lines] == [
            ("IPOD2008GREEN", D("1"), D("199.00")),
            ("IPOD2008RED", D("1"), D("199.00")),
            ("IPOD2008BLACK", D("1"), D("199.00")),
        ]
        assert o.lines[0].notes == ["Custom Engraving: Happy Birthday"]
        assert [(t.type, t.amount, t.percent) for t in o.taxes] == [
            ("State Tax", D("11.94"), D("6"))
        ]
        assert o.totals is not None and (o.totals.total, o.totals.tax_total) == (
            D("409.94"),
            D("11.94"),
        )
        assert o.payment is not None and (o.payment.status, o.payment.method) == (
            "authorized",
            "authorize_net",
        )
        assert o.extensions["note_attributes"] == {
            "custom engraving": "Happy Birthday",
            "colour": "green",
        }
    else:
        assert doc.warnings and "no line_items" in doc.warnings[0]
        assert o.lines == [] and o.source.sender_id == "apple.myshopify.com"
        assert o.payment is not None and (o.payment.status, o.payment.method) == (
            "partially_refunded",
            "bogus",
        )
        assert o.totals is not None and o.totals.total == D("598.94")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("shopify_python_api__checkouts.json", "abandoned checkout"),
        (
            "shopify_python_api__draft_order.json",
            "draft order (#D1) is not an order until it is completed",
        ),
        ("shopify_python_api__refund.json", "refund (id 509562969) of order 450789469"),
    ],
)
def test_corpus_shopify_non_orders_are_rejected_clearly(path: str, words: str):
    evs = events((corpus_dir("carts") / path).read_bytes())
    assert not any(isinstance(e, Document) for e in evs)
    [rej] = [e for e in evs if isinstance(e, DocumentRejected)]
    assert rej.reason == "NOT_AN_ORDER" and words in rej.message


def test_every_corpus_cart_file_maps_or_is_rejected():
    files = sorted(corpus_dir("carts").glob("*.json"))
    assert len(files) == 5
    for path in files:
        outcomes = []
        for ev in events(path.read_bytes()):
            if isinstance(ev, Document):
                outcomes.append(map_shopify(ev).po_number)
            elif isinstance(ev, DocumentRejected):
                outcomes.append(ev.reason)
        assert outcomes, path.name


AMOUNT = re.compile(r"^-?\d+\.\d{2}$")


def amounts(value: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [a for k, v in value.items() for a in amounts(v, k)]
    if isinstance(value, list):
        return [a for v in value for a in amounts(v, key)]
    wanted = {
        "amount",
        "unit_price",
        "subtotal",
        "tax_total",
        "shipping_total",
        "discount_total",
        "total",
    }
    return [(key, value)] if key in wanted and value is not None else []


@pytest.mark.parametrize("which", ["shopify", "cancelled", "woocommerce", "corpus"])
def test_amounts_serialize_as_exact_decimal_strings(which: str):
    if which == "corpus":
        order = shopify_order(corpus_dir("carts") / "shopify_python_api__order.json")
    else:
        order = {
            "shopify": shopify_order,
            "woocommerce": woo_order,
            "cancelled": lambda: shopify_order(SHOPIFY_CANCELLED),
        }[which]()
    data = json.loads(order.model_dump_json())
    found = amounts(data)
    assert found
    for key, value in found:
        assert isinstance(value, str) and AMOUNT.match(value), (key, value)


def test_json_numbers_never_pass_through_float():
    body = minimal(
        total_price=199.99,
        line_items=[{"quantity": 3, "price": 199.99, "tax_lines": [{"price": 0.1, "rate": 0.07}]}],
    )
    data = json.dumps(body).encode()
    assert b"199.99" in data
    o = map_shopify(doc_of(json.loads(data)))
    assert o.lines[0].unit_price == D("199.99")
    assert json.loads(o.model_dump_json())["lines"][0]["unit_price"] == "199.99"
    assert o.totals is not None and format(o.totals.total, "f") == "199.99"
    assert o.lines[0].taxes[0].amount == D("0.1") and o.lines[0].taxes[0].percent == D("7")
    # the float that 0.1 + 0.2 would make never appears
    assert "0.30000000000000004" not in o.model_dump_json()


# ------------------------------------------------------------------------------------------
# WooCommerce mapping: exact values


def test_woocommerce_order_created_exact_values():
    o = woo_order()
    assert (o.channel, o.po_number, o.order_date, o.purpose, o.currency) == (
        "woocommerce",
        "727",
        dt.date(2024, 3, 5),
        Purpose.ORIGINAL,
        "USD",
    )
    assert (o.customer_email, o.customer_phone) == ("john.doe@example.com", "(555) 555-5555")
    assert o.notes == ["Ring the bell twice, please."]
    assert [(r.qualifier, r.value) for r in o.references] == [("woocommerce_order_id", "727")]
    assert o.buyer is not None and o.buyer.model_dump(exclude_defaults=True) == {
        "name": "John Doe",
        "code": "25",
        "code_qualifier": "woocommerce_customer_id",
        "contact": {"name": "John Doe", "email": "john.doe@example.com", "phone": "(555) 555-5555"},
    }
    assert o.ship_to is not None and o.ship_to.model_dump(exclude_defaults=True) == {
        "name": "Doe Workshop",
        "address_lines": ["969 Market", "Unit 4"],
        "city": "San Francisco",
        "region": "CA",
        "postal_code": "94103",
        "country": "US",
        "contact": {"name": "John Doe"},
    }
    assert o.bill_to is not None and (o.bill_to.name, o.bill_to.address_lines) == (
        "John Doe",
        ["969 Market"],
    )
    assert o.bill_to.contact is not None and o.bill_to.contact.email == "john.doe@example.com"

    first, second = o.lines
    assert (first.quantity, first.unit_price, first.sku, first.description) == (
        D("2"),
        D("20.00"),
        "WOO-SINGLE-1",
        "Woo Single #1",
    )
    assert [(i.qualifier, i.value) for i in first.item_ids] == [
        ("product_id", "93")
    ]  # variation 0: none
    # 33.00 / 3, not WooCommerce's float `price` 10.666666666666666 (after the coupon)
    assert (second.quantity, second.unit_price, second.sku) == (D("3"), D("11.00"), "SHIP-IDEA-BLK")
    assert [(i.qualifier, i.value) for i in second.item_ids] == [
        ("product_id", "22"),
        ("variation_id", "23"),
    ]
    assert second.notes == ["Color: Black"]  # _reduced_stock is private
    assert [(r.qualifier, r.value) for r in second.references] == [("line_item_id", "316")]

    assert [(a.indicator, a.code, a.amount, a.description) for a in o.allowances_charges] == [
        ("allowance", "spring5", D("5.00"), "coupon"),
        ("charge", "fee", D("2.50"), "Gift wrapping"),
        ("allowance", "fee", D("3.00"), "Loyalty discount"),
        ("charge", "shipping", D("10.00"), "Flat Rate"),
    ]
    assert o.shipping is not None and o.shipping.service_level == "Flat Rate"
    assert [(t.type, t.amount, t.percent, t.jurisdiction) for t in o.taxes] == [
        ("State Tax", D("3.90"), D("5.0"), "US-CA-STATE TAX")
    ]
    assert o.totals is not None and o.totals.model_dump(exclude_defaults=True) == {
        "subtotal": D("73.00"),
        "tax_total": D("3.90"),
        "shipping_total": D("10.00"),
        "discount_total": D("5.00"),
        "total": D("81.40"),
    }
    assert o.payment is not None and o.payment.model_dump() == {
        "status": "paid",
        "method": "Credit Card (Stripe)",
        "reference": "ch_3Oq1ZZ2eZvKYlo2C0aBcDeFg",
    }
    assert o.extensions == {
        "order_status": "processing",
        "prices_include_tax": False,
        "created_via": "checkout",
        "meta_data": {"delivery_date": "2024-03-09"},
    }
    assert o.unmapped == [
        "customer_ip_address",
        "customer_user_agent",
        "date_paid",
        "needs_processing",
        "currency_symbol",
    ]
    assert "203.0.113.9" not in o.model_dump_json() and "wc_order_" not in o.model_dump_json()
    assert (o.source.sender_id, o.source.version, o.source.transaction_control_number) == (
        "shop.example.com",
        "8.6.1",
        "727",
    )


@pytest.mark.parametrize(
    ("status", "purpose", "payment"),
    [
        ("cancelled", Purpose.CANCEL, "voided"),
        ("on-hold", Purpose.ORIGINAL, "pending"),
        ("refunded", Purpose.ORIGINAL, "refunded"),
        ("wc-custom-status", Purpose.ORIGINAL, "wc-custom-status"),
    ],
)
def test_woocommerce_status(status: str, purpose: Purpose, payment: str):
    body = json.loads(WOO_CREATED.read_text())
    o = woo_order(json.dumps({**body, "status": status}).encode())
    assert o.purpose == purpose
    assert o.payment is not None and o.payment.status == payment


def test_woocommerce_guest_without_shipping_address():
    body = json.loads(WOO_CREATED.read_text())
    empty = {k: "" for k in body["shipping"]}
    o = woo_order(
        json.dumps({**body, "customer_id": 0, "shipping": empty, "number": None}).encode()
    )
    assert o.ship_to is None
    assert o.buyer is not None and o.buyer.code is None and o.buyer.code_qualifier is None
    assert o.po_number == "727"  # the id when number is missing


def test_woocommerce_unit_price_that_does_not_terminate_is_rounded_not_floated():
    body = json.loads(WOO_CREATED.read_text())
    body["line_items"] = [{**body["line_items"][0], "quantity": 3, "subtotal": "10.00"}]
    o = woo_order(json.dumps(body).encode())
    assert o.lines[0].unit_price == D("3.333333")


# ------------------------------------------------------------------------------------------
# Mapping errors


def test_missing_po_number_names_the_expression():
    with pytest.raises(MappingError) as info:
        map_shopify(doc_of({"id": 1, "line_items": []}))
    assert info.value.reason == "MISSING_PO_NUMBER"
    assert info.value.position == "name"
    assert "order 1" in info.value.message


def test_line_without_quantity():
    body = minimal(line_items=[{"quantity": 1, "sku": "A"}, {"sku": "B", "price": "2.00"}])
    with pytest.raises(MappingError) as info:
        map_shopify(doc_of(body))
    assert info.value.reason == "JSON_MISSING_QUANTITY"
    assert info.value.position == "line_items[1].quantity"


@pytest.mark.parametrize(
    ("body", "reason", "position"),
    [
        (minimal(line_items=[{"quantity": "two"}]), "JSON_BAD_NUMBER", "line_items[0].quantity"),
        (
            minimal(line_items=[{"quantity": 1, "price": "1,50"}]),
            "JSON_BAD_NUMBER",
            "line_items[0].price",
        ),
        (
            minimal(line_items=[{"quantity": 1, "price": "NaN"}]),
            "JSON_BAD_NUMBER",
            "line_items[0].price",
        ),
        (minimal(total_price=True), "JSON_BAD_NUMBER", "total_price"),
        (minimal(created_at="yesterday"), "JSON_BAD_DATE", "processed_at || created_at"),
        (minimal(currency=["USD"]), "JSON_BAD_VALUE", "currency"),
        (minimal(shipping_address="somewhere"), "JSON_BAD_VALUE", "shipping_address"),
        (
            minimal(payment_gateway_names=[1, 2]),
            "JSON_EXPRESSION",
            "payment_gateway_names && join(', ', payment_gateway_names) || gateway",
        ),
        (
            minimal(tax_lines=[{"price": "1.00", "rate": "six"}]),
            "JSON_BAD_NUMBER",
            "tax_lines[0] | percent(rate)",
        ),
    ],
)
def test_bad_values_are_mapping_errors_with_position(
    body: dict[str, Any], reason: str, position: str
):
    with pytest.raises(MappingError) as info:
        map_shopify(doc_of(body))
    assert info.value.reason == reason, info.value.message
    assert info.value.position == position


def test_a_non_order_document_is_refused_by_the_mapper():
    doc = doc_of(minimal())
    doc.doc_type = "refund"
    with pytest.raises(MappingError) as info:
        map_shopify(doc)
    assert info.value.reason == "NOT_AN_ORDER"


def test_empty_entries_are_left_out():
    o = map_shopify(
        doc_of(
            minimal(
                line_items=[{"quantity": 1, "variant_id": None, "product_id": 5}],
                discount_codes=[],
                shipping_lines=[],
            )
        )
    )
    assert [(i.qualifier, i.value) for i in o.lines[0].item_ids] == [("product_id", "5")]
    assert o.allowances_charges == [] and o.shipping is None and o.totals is None


def test_non_code_discounts_are_allowances():
    body = minimal(
        discount_applications=[
            {
                "type": "discount_code",
                "code": "X",
                "value": "10.0",
                "value_type": "percentage",
                "allocation_method": "across",
            },
            {
                "type": "manual",
                "title": "Staff",
                "description": "Staff discount",
                "value": "15.0",
                "value_type": "percentage",
                "allocation_method": "across",
            },
            {
                "type": "automatic",
                "title": "Bulk",
                "value": "5.00",
                "value_type": "fixed_amount",
                "allocation_method": "across",
            },
            {
                "type": "script",
                "title": "Each",
                "value": "1.00",
                "value_type": "fixed_amount",
                "allocation_method": "each",
            },
        ]
    )
    o = map_shopify(doc_of(body))
    assert [
        (a.indicator, a.code, a.percent, a.amount, a.rate, a.description)
        for a in o.allowances_charges
    ] == [
        ("allowance", "Staff", D("15.0"), None, None, "Staff discount"),
        ("allowance", "Bulk", None, D("5.00"), None, "Bulk"),
        ("allowance", "Each", None, None, D("1.00"), "Each"),
    ]


# ------------------------------------------------------------------------------------------
# Mapping files: checked at load


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BASE = """
version: 1
channel: shopify
po_number: name
lines:
  from: line_items
  quantity: quantity
"""


def config_error(path: Path, overrides: list[Path] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_mapping(path, overrides or [])
    return info.value


def test_default_mapping_files_load():
    for path in (SHOPIFY_MAPPING, WOOCOMMERCE_MAPPING):
        mapping = load_mapping(path)
        assert isinstance(mapping, JsonMapping) and mapping.fields
    assert default_mapping("shopify").channel == "shopify"
    assert default_mapping("woocommerce").channel == "woocommerce"


def test_typo_in_a_field_name_is_a_config_error_naming_file_and_key(tmp_path: Path):
    path = write(
        tmp_path, BASE.replace("quantity: quantity", "quantty: quantity") + "po_numbr: name\n"
    )
    err = config_error(path)
    text = str(err)
    assert (
        f"{path}: lines.quantty: OrderLine has no field 'quantty'; did you mean 'quantity'?"
        in err.problems
    )
    assert f"{path}: lines: quantity is required in every OrderLine; map it" in err.problems
    assert any(
        p.startswith(f"{path}: po_numbr: unknown key; did you mean 'po_number'?")
        for p in err.problems
    )
    assert len(err.problems) == 3 and "quantty" in text


def test_bad_jmespath_is_a_config_error_naming_it(tmp_path: Path):
    path = write(tmp_path, BASE.replace("po_number: name", 'po_number: "name[" '))
    [problem] = config_error(path).problems
    assert problem.startswith(f"{path}: po_number: 'name[' is not valid JMESPath")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('currency: "upper(currency)"', "currency: 'upper(currency)': unknown function upper()"),
        (
            'currency: "to_strin(currency)"',
            "unknown function to_strin(); did you mean 'to_string'?",
        ),
        ('currency: "join(currency)"', "join() takes 2 arguments, not 1"),
        ('currency: "add()"', "add() takes at least 1 argument, not 0"),
        ('currency: "multiply(total, `1.5`)"', "would be read as a float"),
        ("currency: 12", "expected a JMESPath expression in quotes, not a number"),
        ("currency:", "expected a JMESPath expression in quotes, not nothing"),
        ("ship_to: {from: shipping_address, city: city}", "ship_to: parties go under 'parties:'"),
        ("parties: {shipto: {city: city}}", "parties.shipto: not a party; did you mean 'ship_to'?"),
        (
            "parties: {ship_to: {from: shipping_address, town: city}}",
            "parties.ship_to.town: Party has no field 'town'",
        ),
        ("totals: total_price", "a Totals maps to a block of its fields, not text"),
        ("source: {sender_id: shop}", "source: not set by a mapping"),
        ("unmapped: keys(@)", "unmapped: not set by a mapping"),
        (
            "purpose: {rules: [{when: cancelled_at, purpose: cancelled}]}",
            "'cancelled' is not a purpose; did you mean 'cancel'?",
        ),
        (
            "purpose: {rules: [{if: cancelled_at, purpose: cancel}]}",
            "each rule is {when: <expression>, purpose: <name>}",
        ),
        ("ignore: token", "ignore: must be a list of top-level key names"),
        ("extensions: {'bad key': x}", "extensions.bad key: names are letters"),
        (
            "allowances_charges: [{from: discount_codes, amount: amount}]",
            "indicator is required in every AllowanceCharge",
        ),
    ],
)
def test_mapping_file_mistakes(tmp_path: Path, line: str, words: str):
    err = config_error(write(tmp_path, BASE + line + "\n"))
    assert any(words in p for p in err.problems), err.problems


def test_version_channel_and_po_number_are_required(tmp_path: Path):
    err = config_error(write(tmp_path, "lines: {from: line_items, quantity: quantity}\n"))
    joined = "\n".join(err.problems)
    assert "version: None is not a supported version" in joined
    assert "channel: missing" in joined
    assert "po_number: missing" in joined
    err = config_error(write(tmp_path, BASE.replace("channel: shopify", "channel: shopfy")))
    assert "did you mean 'shopify'?" in err.problems[0]


def test_unreadable_and_invalid_yaml(tmp_path: Path):
    assert "cannot read the mapping" in config_error(tmp_path / "missing.yaml").problems[0]
    assert "not valid YAML" in config_error(write(tmp_path, "po_number: [\n")).problems[0]
    assert "expected a mapping" in config_error(write(tmp_path, "- a\n- b\n")).problems[0]


def test_partner_override(tmp_path: Path):
    override = write(
        tmp_path,
        'po_number: "to_string(order_number)"\nextensions: {taxes_included: null, tags: tags}\nlines: {gtin: null}\n',
        "acme.yaml",
    )
    mapping = load_shopify_mapping([override])
    trace: dict[str, str] = {}
    [doc] = documents(SHOPIFY_CREATE.read_bytes())
    o = map_shopify(doc, mapping, trace=trace)
    assert o.po_number == "1042"
    assert trace["po_number"] == "acme.yaml: po_number <- to_string(order_number)"
    assert trace["lines[0].sku"] == "shopify.yaml: lines[0].sku <- line_items[0].sku"
    assert o.extensions["tags"] == "vip" and "taxes_included" not in o.extensions
    assert "tags" not in o.unmapped
    assert o.lines[0].gtin is None
    # an override's mistakes name the override file
    bad = write(tmp_path, "lines: {quantity: qty, colour: x}\n", "bad.yaml")
    [problem] = config_error(SHOPIFY_MAPPING, [bad]).problems
    assert problem.startswith(f"{bad}: lines.colour: OrderLine has no field 'colour'")


# ------------------------------------------------------------------------------------------
# Functions


def search(expression: str, data: Any = None) -> Any:
    return jmespath.search(expression, data, jmespath.Options(custom_functions=CartFunctions()))


def test_functions_keep_decimals():
    data = {"a": D("0.1"), "b": D("0.2"), "s": "19.99", "n": 3, "l": ["1.10", None, 2]}
    assert search("add(a, b)", data) == D("0.3")
    assert search("add(l)", data) == D("3.10")
    assert search("add(missing)", data) is None
    assert search("multiply(s, n)", data) == D("59.97")
    assert search("divide(s, `0`)", data) is None
    assert search("divide('40.00', `2`)", data) == D("20.00")
    assert search("divide('1', `3`)", data) == D("0.333333")
    assert search("divide('2', `3`)", data) == D("0.666667")
    assert (
        search("to_number(s)", data) == D("19.99") and type(search("to_number(s)", data)) is Decimal
    )
    assert search("to_number('12')") == 12
    assert search("to_string(a)", data) == "0.1"
    assert search("type(a)", data) == "number"
    assert search("sum([a, b])", data) == D("0.3")
    assert search("max([a, b])", data) == D("0.2")
    assert search("sort_by(l2, &p)[0].p", {"l2": [{"p": D("2.5")}, {"p": D("1.5")}]}) == D("1.5")
    assert search("percent('0.0725')") == D("7.25") and str(search("percent('0.06')")) == "6"
    assert search('lookup(\'b\', `{"a": 1, "b": 2}`)') == 2
    assert search('lookup(`null`, `{"a": 1}`)') is None
    assert search(
        "from_entries(x, 'k', 'v')", {"x": [{"k": "a", "v": 1}, {"k": None, "v": 2}, "junk"]}
    ) == {"a": 1}
    assert search("decimal(' 1.50 ')") == D("1.50")


# ------------------------------------------------------------------------------------------
# The translate path


@pytest.fixture
def carts_registered(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(gateway.formats.FORMATS, "shopify", "gateway.formats.carts:ShopifyParser")
    monkeypatch.setitem(
        gateway.formats.FORMATS, "woocommerce", "gateway.formats.carts:WooCommerceParser"
    )
    monkeypatch.setitem(
        gateway.translate.MAPPERS,
        ("shopify", "order"),
        MapperSpec("gateway.mapping.jsonmap:map_shopify", "shopify", None),
    )
    monkeypatch.setitem(
        gateway.translate.MAPPERS,
        ("woocommerce", "order"),
        MapperSpec("gateway.mapping.jsonmap:map_woocommerce", "woocommerce", None),
    )
    gateway.formats._cache.clear()
    gateway.translate._mapper.cache_clear()
    yield
    gateway.formats._cache.clear()
    gateway.translate._mapper.cache_clear()


@pytest.mark.usefixtures("carts_registered")
def test_translate_shopify_and_woocommerce():
    with SHOPIFY_CREATE.open("rb") as fh:
        evs = list(translate(fh, format="shopify", name="orders_create.json", trace=True))
    [t] = [e for e in evs if isinstance(e, Translated)]
    assert t.order.po_number == "#1042" and t.order.channel == "shopify"
    assert t.order.source.file_name == "orders_create.json"
    assert t.provenance["lines[0].sku"] == "shopify.yaml: lines[0].sku <- line_items[0].sku"
    assert (t.doc_type, t.control_number, t.position) == ("order", "5551234567890", "order 1")
    with WOO_CREATED.open("rb") as fh:
        [w] = [e for e in translate(fh, format="woocommerce") if isinstance(e, Translated)]
    assert w.order.po_number == "727" and w.order.channel == "woocommerce"


@pytest.mark.usefixtures("carts_registered")
def test_translate_rejects_and_mapping_errors():
    with (corpus_dir("carts") / "shopify_python_api__draft_order.json").open("rb") as fh:
        [r] = [e for e in translate(fh, format="shopify") if isinstance(e, Rejected)]
    assert r.reason == "NOT_AN_ORDER" and "draft order" in r.message and r.position == "draft_order"
    body = json.dumps([minimal(), {"id": 2, "line_items": []}]).encode()
    out = [
        e
        for e in translate(io.BytesIO(body), format="shopify")
        if isinstance(e, Translated | Rejected)
    ]
    assert isinstance(out[0], Translated)
    assert isinstance(out[1], Rejected) and (out[1].reason, out[1].position, out[1].index) == (
        "MISSING_PO_NUMBER",
        "name",
        1,
    )


@pytest.mark.usefixtures("carts_registered")
def test_cart_json_is_not_auto_detected():
    with SHOPIFY_CREATE.open("rb") as fh, pytest.raises(ParseError) as info:
        list(translate(fh))
    assert info.value.reason == "NOT_RECOGNIZED"


def test_yaml_aliases_and_loops(tmp_path: Path):
    # an alias is a copy: overriding ship_to leaves bill_to alone
    base = write(
        tmp_path,
        BASE
        + "parties:\n  ship_to: &addr {from: shipping_address, city: city}\n  bill_to: *addr\n",
        "base.yaml",
    )
    override = write(tmp_path, "parties: {ship_to: {city: town}}\n", "o.yaml")
    o = load_mapping(base, [override]).map(
        doc_of(minimal(shipping_address={"city": "Ottawa", "town": "Vanier"}))
    )
    assert o.ship_to is not None and o.ship_to.city == "Vanier"
    assert o.bill_to is not None and o.bill_to.city == "Ottawa"
    loop = write(tmp_path, BASE + "notes: &n [*n]\n", "loop.yaml")
    assert "nested more than" in config_error(loop).problems[0]
    dated = write(tmp_path, BASE + "order_date: 2024-01-01\n", "dated.yaml")
    assert "not a date (YAML reads an unquoted date" in config_error(dated).problems[0]

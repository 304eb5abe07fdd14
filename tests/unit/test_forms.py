"""Web-form order intake: POST /intake/forms/{form} (FastAPI TestClient, real Gateway on SQLite).

A valid submission (form-encoded or JSON) is stored and becomes exactly one order when the
pipeline processes it; an invalid one is answered 422 per field and nothing is stored; size,
rate, secret and Standard Webhooks signature checks refuse before anything is stored.
"""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select

import gateway.formats
import gateway.translate
from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.errors import StoreUnavailable
from gateway.intake.forms import (
    FormConfig,
    FormRateLimiter,
    forms_router,
    normalise_form_body,
    sign_standard_webhook,
    verify_standard_webhook,
)
from gateway.store import tables as t
from gateway.translate import MapperSpec

SECRET = "form-secret-0123456789abcdef"
WH_KEY = b"standard-webhooks-key-32-bytes!!"
WH_SECRET = "whsec_" + base64.b64encode(WH_KEY).decode()

FORM_FIELDS = [
    ("customer[name]", "Jane Doe"),
    ("customer[email]", "jane@example.com"),
    ("customer[phone]", "555-0100"),
    ("company", "Acme Widgets"),
    ("ship_to[name]", "Jane Doe"),
    ("ship_to[address1]", "1 Main St"),
    ("ship_to[address2]", "Apt 2"),
    ("ship_to[city]", "Springfield"),
    ("ship_to[region]", "IL"),
    ("ship_to[postal_code]", "62701"),
    ("ship_to[country]", "US"),
    ("items[0][sku]", "SKU-1"),
    ("items[0][quantity]", "2"),
    ("items[0][price]", "9.99"),
    ("items[1][sku]", "SKU-2"),
    ("items[1][quantity]", "1"),
    ("notes", "leave at the door"),
]


def json_order(**extra: object) -> dict[str, object]:
    return {
        "customer": {"name": "Jane Doe", "email": "jane@example.com"},
        "ship_to": {"address1": "1 Main St", "city": "Springfield", "postal_code": "62701", "country": "US"},
        "items": [{"sku": "SKU-1", "quantity": 3, "price": 0.1}],
        **extra,
    }


@pytest.fixture
def web_form_format(monkeypatch):
    monkeypatch.setitem(gateway.formats.FORMATS, "web_form", "gateway.formats.webform:WebFormParser")
    gateway.formats._cache.clear()
    monkeypatch.setitem(
        gateway.translate.MAPPERS, ("web_form", "form"), MapperSpec("gateway.mapping.webform:map_web_form", "web_form", None)
    )
    gateway.translate._mapper.cache_clear()
    yield
    gateway.formats._cache.clear()
    gateway.translate._mapper.cache_clear()


@pytest.fixture
def gw(tmp_path, web_form_format):
    gateway_ = Gateway(GatewayConfig.model_validate({"store": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"}}))
    yield gateway_
    gateway_.close()


def make_client(gw: Gateway, *forms: dict[str, object]) -> TestClient:
    app = FastAPI()
    configs = [FormConfig.model_validate(f) for f in forms or ({"name": "order", "partner": "web-shop"},)]
    app.include_router(forms_router(gw, configs))
    return TestClient(app)


@pytest.fixture
def client(gw):
    with make_client(gw) as c:
        yield c


def message_count(gw: Gateway) -> int:
    with gw.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.messages)).scalar_one()


def orders(gw: Gateway) -> list[dict[str, object]]:
    with gw.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t.orders)).mappings()]


def post_form(client: TestClient, fields: list[tuple[str, str]], form: str = "order", **headers: str):
    return client.post(
        f"/intake/forms/{form}",
        content=urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )


def post_json(client: TestClient, data: object, form: str = "order", **headers: str):
    return client.post(f"/intake/forms/{form}", content=json.dumps(data).encode(), headers={"Content-Type": "application/json", **headers})


# -- valid submissions -----------------------------------------------------------------------


def test_form_encoded_submission_is_stored_and_becomes_one_order(gw, client):
    res = post_form(client, FORM_FIELDS)
    assert res.status_code == 201, res.text
    answer = res.json()
    assert answer["duplicate"] is False and answer["reference"].startswith("WF-")
    with gw.store.engine.connect() as conn:
        msg = conn.execute(select(t.messages)).mappings().one()
        body = conn.execute(select(t.message_bodies.c.body)).scalar_one()
    assert msg["id"] == answer["stored"] and msg["format"] == "web_form" and msg["partner"] == "web-shop"
    stored = json.loads(body)
    assert stored["_form"] == "order" and stored["items"][0] == {"sku": "SKU-1", "quantity": "2", "price": "9.99"}

    gw.pipeline.process_pending()
    (row,) = orders(gw)
    assert row["state"] != "rejected", row
    order = row["data"]
    assert order["channel"] == "web_form" and order["partner"] == "web-shop"
    assert order["po_number"] == answer["reference"]
    assert order["customer_email"] == "jane@example.com" and order["customer_phone"] == "555-0100"
    assert order["buyer"]["name"] == "Acme Widgets"
    assert order["buyer"]["contact"] == {"name": "Jane Doe", "email": "jane@example.com", "phone": "555-0100", "fax": None}
    ship = order["ship_to"]
    assert ship["address_lines"] == ["1 Main St", "Apt 2"]
    assert (ship["city"], ship["region"], ship["postal_code"], ship["country"]) == ("Springfield", "IL", "62701", "US")
    assert [(line["sku"], line["quantity"], line["unit_price"]) for line in order["lines"]] == [
        ("SKU-1", "2", "9.99"),
        ("SKU-2", "1", None),
    ]
    assert order["notes"] == ["leave at the door"]
    assert order["unmapped"] == []


def test_json_submission_keeps_amounts_exact_and_uses_the_forms_po_number(gw, client):
    res = post_json(client, json_order(po_number="PO-77"))
    assert res.status_code == 201, res.text
    assert res.json()["reference"] == "PO-77"
    gw.pipeline.process_pending()
    (row,) = orders(gw)
    order = row["data"]
    assert order["po_number"] == "PO-77" and row["partner"] == "web-shop"
    assert Decimal(order["lines"][0]["unit_price"]) == Decimal("0.1")  # never 0.1000000000000000055
    assert order["lines"][0]["quantity"] == "3"


def test_partner_defaults_to_the_form_name_and_a_double_submit_is_one_message(gw):
    with make_client(gw, {"name": "order"}) as c:
        first = post_json(c, json_order(po_number="PO-1"))
        again = post_json(c, json_order(po_number="PO-1"))
    assert first.status_code == 201 and again.status_code == 201
    gw.pipeline.process_pending()
    # The same second: one message; across a second boundary (a loaded machine) the second
    # message's order is a DUPLICATE_ORDER of the first (the form sends its po_number).
    assert [r["partner"] for r in orders(gw) if r["data"] and r["state"] != "duplicate"] == ["order"]


# -- invalid submissions: 422 per field, nothing stored -------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ([("items[0][quantity]", "2")], "items[0].sku", "no item number"),
        ([("items[0][sku]", "A"), ("items[0][quantity]", "0")], "items[0].quantity", "must be greater than zero"),
        ([("items[0][sku]", "A"), ("items[0][quantity]", "two")], "items[0].quantity", "not a number"),
        ([("items[0][sku]", "A")], "items[0].quantity", "required"),
        ([("customer[email]", "not-an-email")], "customer.email", "e-mail"),
        ([], "items", "no items"),
        ([("items[0][sku]", "A"), ("items[0]", "x")], "items[0]", "conflicts"),
    ],
)
def test_invalid_submission_is_422_per_field_and_stores_nothing(gw, client, fields, field, message):
    res = post_form(client, fields)
    assert res.status_code == 422, res.text
    errors = res.json()["errors"]
    assert any(e["field"] == field and message in e["message"] for e in errors), errors
    assert message_count(gw) == 0


def test_every_problem_is_reported(gw, client):
    data = json_order(items=[{"sku": "A", "quantity": "0"}, {"quantity": "1"}, {"sku": "C", "quantity": "1", "price": "-1"}])
    data["customer"] = {"email": "nope"}
    res = post_json(client, data)
    assert res.status_code == 422
    fields = {e["field"] for e in res.json()["errors"]}
    assert {"items[0].quantity", "items[1].sku", "items[2].price", "customer.email"} <= fields
    assert message_count(gw) == 0


def test_reserved_keys_are_refused(gw, client):
    res = post_json(client, json_order(_form="other"))
    assert res.status_code == 422 and res.json()["errors"][0]["field"] == "_form"
    assert message_count(gw) == 0


def test_malformed_bodies_are_400_or_415(gw, client):
    assert post_json(client, ["not", "an", "object"]).status_code == 400
    bad = client.post("/intake/forms/order", content=b'{"a": ', headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    latin = client.post("/intake/forms/order", content=b"notes=caf\xe9", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert latin.status_code == 400
    assert client.post("/intake/forms/order", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    assert post_form(client, FORM_FIELDS, form="nope").status_code == 404
    assert message_count(gw) == 0


# -- limits ----------------------------------------------------------------------------------


def test_oversized_body_is_413(gw):
    with make_client(gw, {"name": "order", "max_body_bytes": 500}) as c:
        res = post_form(c, [*FORM_FIELDS, ("notes", "x" * 600)])
    assert res.status_code == 413
    assert message_count(gw) == 0


def test_rate_limit_per_client_is_429_with_retry_after(gw):
    """reliability W3: a web form has a rate limit per client address."""
    with make_client(gw, {"name": "order", "rate_limit_per_minute": 2}) as c:
        codes = [post_json(c, json_order(po_number=f"PO-{i}")).status_code for i in range(2)]
        res = post_json(c, json_order(po_number="PO-3"))
    assert codes == [201, 201]
    assert res.status_code == 429 and 1 <= int(res.headers["Retry-After"]) <= 60
    assert message_count(gw) == 2


def test_rate_limiter_window_slides():
    now = [1000.0]
    limiter = FormRateLimiter(clock=lambda: now[0])
    key = ("order", "10.0.0.1")
    assert limiter.hit(key, 2) is None and limiter.hit(key, 2) is None
    assert limiter.hit(key, 2) == 60
    assert limiter.hit(("order", "10.0.0.2"), 2) is None  # another address has its own window
    now[0] += 45
    assert limiter.hit(key, 2) == 15
    now[0] += 15.5
    assert limiter.hit(key, 2) is None


def test_store_unavailable_is_503(gw, client, monkeypatch):
    def down(*args, **kwargs):
        raise StoreUnavailable("database is down")

    monkeypatch.setattr(gw.pipeline, "receive", down)
    res = post_form(client, FORM_FIELDS)
    assert res.status_code == 503 and res.headers["Retry-After"]


# -- secrets and signatures ------------------------------------------------------------------


def test_shared_secret(gw):
    with make_client(gw, {"name": "order", "secret": SECRET}) as c:
        assert post_form(c, FORM_FIELDS).status_code == 401
        assert post_form(c, FORM_FIELDS, **{"X-Form-Secret": SECRET[:-1] + "X"}).status_code == 401
        assert message_count(gw) == 0
        assert post_form(c, FORM_FIELDS, **{"X-Form-Secret": SECRET}).status_code == 201
    assert message_count(gw) == 1


def signed_headers(body: bytes, *, ts: int | None = None, key: bytes = WH_KEY, msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W") -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard_webhook(body, msg_id, ts, key),
    }


def test_standard_webhooks_signature(gw):
    """reliability W1 and W2: forged, tampered, unsigned and 10-minute-old (or future) signed
    submissions are 401; a replay of a valid one is the same message."""
    body = json.dumps(json_order()).encode()
    with make_client(gw, {"name": "order", "standard_webhooks_secret": WH_SECRET}) as c:
        url = "/intake/forms/order"
        forged = c.post(url, content=body, headers=signed_headers(body, key=b"another-key-of-enough-length!!"))
        stale = c.post(url, content=body, headers=signed_headers(body, ts=int(time.time()) - 600))
        future = c.post(url, content=body, headers=signed_headers(body, ts=int(time.time()) + 600))
        tampered = c.post(url, content=body.replace(b"SKU-1", b"SKU-9"), headers=signed_headers(body))
        unsigned = c.post(url, content=body, headers={"Content-Type": "application/json"})
        assert [r.status_code for r in (forged, stale, future, tampered, unsigned)] == [401] * 5
        assert message_count(gw) == 0
        headers = signed_headers(body)
        ok = c.post(url, content=body, headers=headers)
        replay = c.post(url, content=body, headers=headers)
    assert ok.status_code == 201, ok.text
    assert replay.status_code == 201 and replay.json() == {**ok.json(), "duplicate": True}
    assert message_count(gw) == 1


def test_verify_standard_webhook_accepts_any_listed_v1_signature():
    body = b'{"a":"1"}'
    good = sign_standard_webhook(body, "id-1", 1_700_000_000, WH_KEY)
    assert verify_standard_webhook(body, "id-1", "1700000000", f"v1,bm9wZQ== {good}", WH_KEY, now=1_700_000_100) is None
    assert verify_standard_webhook(body, "id-1", "1700000000", good.replace("v1,", "v2,"), WH_KEY, now=1_700_000_000)
    assert verify_standard_webhook(body, "id-2", "1700000000", good, WH_KEY, now=1_700_000_000)
    assert verify_standard_webhook(body, "id-1", "1700000000", good, WH_KEY, now=1_700_000_301)
    assert verify_standard_webhook(body, "id-1", "17e8", good, WH_KEY, now=1_700_000_000)
    assert verify_standard_webhook(body, None, "1700000000", good, WH_KEY, now=1_700_000_000)


# -- configuration and normalisation ---------------------------------------------------------


def test_form_config_checks():
    with pytest.raises(ValidationError):
        FormConfig.model_validate({"name": "Order"})
    with pytest.raises(ValidationError):
        FormConfig.model_validate({"name": "order", "secret": "short"})
    with pytest.raises(ValidationError):
        FormConfig.model_validate({"name": "order", "secret": SECRET, "standard_webhooks_secret": WH_SECRET})
    with pytest.raises(ValidationError):
        FormConfig.model_validate({"name": "order", "standard_webhooks_secret": "whsec_!!!not-base64!!!"})
    assert "form-secret" not in repr(FormConfig.model_validate({"name": "order", "secret": SECRET}))


def test_unknown_form_mapping_fails_at_startup(gw):
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError):
        forms_router(gw, [FormConfig(name="no-such-form")])


def test_bracket_keys_become_nested_objects_and_lists():
    body = urlencode(
        [
            ("a[b][c]", "1"),
            ("items[1][sku]", "B"),
            ("items[0][sku]", "A"),
            ("tags[]", "x"),
            ("tags[]", "y"),
            ("rows[][sku]", "R1"),
            ("rows[][qty]", "1"),
            ("rows[][sku]", "R2"),
            ("note", "n1"),
            ("note", "n2"),
            ("empty", ""),
        ]
    ).encode()
    assert normalise_form_body(body) == {
        "a": {"b": {"c": "1"}},
        "items": [{"sku": "A"}, {"sku": "B"}],
        "tags": ["x", "y"],
        "rows": [{"sku": "R1", "qty": "1"}, {"sku": "R2"}],
        "note": ["n1", "n2"],
        "empty": "",
    }

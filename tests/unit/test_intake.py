"""The HTTP intake: signatures, limits, duplicates and the store-down path (FastAPI TestClient).

Rows W1-W3 and faults F5/F22 of the reliability bar: a forged or malformed delivery is
refused before anything is stored; a delivery is answered 2xx only after its raw bytes are
committed; repeats and concurrent repeats are one message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.errors import StoreUnavailable
from gateway.intake import (
    IntakeConfig,
    StoreConfig,
    create_app,
    sign_hmac_base64,
    verify_hmac_base64,
)
from gateway.intake.app import MAX_JSON_DEPTH, json_nesting_depth
from gateway.store import tables as t

SECRET = "shpss_0123456789abcdef0123456789abcdef"
OLD_SECRET = "shpss_previous-secret-still-valid-1h"
WOO_SECRET = "woo-secret-with-enough-characters"
CANARY = "CANARY-PII-alice@example.com"


def order(number: int = 1001, *, updated_at: str = "2026-11-20T10:00:00-05:00", **extra: object) -> dict[str, object]:
    return {
        "id": 450789469 + number,
        "name": f"#{number}",
        "order_number": number,
        "email": CANARY,
        "created_at": "2026-11-20T10:00:00-05:00",
        "updated_at": updated_at,
        "currency": "USD",
        "total_price": "19.98",
        "line_items": [{"id": 1, "sku": "SKU-1", "title": "Widget", "quantity": 2, "price": "9.99"}],
        **extra,
    }


def body_of(data: object) -> bytes:
    return json.dumps(data).encode()


def shopify_headers(body: bytes, *, secret: str = SECRET, topic: str = "orders/create", webhook_id: str = "wh-1") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": sign_hmac_base64(body, secret.encode()),
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Shop-Domain": "acme.myshopify.com",
    }


@pytest.fixture
def gw(tmp_path):
    gateway = Gateway(GatewayConfig.model_validate({"store": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"}}))
    yield gateway
    gateway.close()


@pytest.fixture
def intake_config() -> IntakeConfig:
    return IntakeConfig.model_validate(
        {
            "max_body_bytes": 20_000,
            "stores": [
                {"name": "acme", "platform": "shopify", "secrets": [SECRET, OLD_SECRET]},
                {"name": "woo", "platform": "woocommerce", "secrets": [WOO_SECRET]},
            ],
        }
    )


@pytest.fixture
def client(gw, intake_config):
    with TestClient(create_app(gw, intake_config)) as c:
        yield c


def messages(gw: Gateway) -> list[dict[str, object]]:
    with gw.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t.messages)).mappings()]


def message_count(gw: Gateway) -> int:
    with gw.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.messages)).scalar_one()


# -- signatures ------------------------------------------------------------------------------


def test_verify_accepts_the_base64_hmac_of_the_raw_body_only():
    body = b'{"id": 1, "note": "caf\xc3\xa9"}'
    good = base64.b64encode(hmac.new(b"k" * 20, body, hashlib.sha256).digest()).decode()
    assert verify_hmac_base64(body, good, [b"k" * 20])
    assert verify_hmac_base64(body, f"  {good}\t", [b"other-secret-000000", b"k" * 20])  # any listed secret
    assert not verify_hmac_base64(body, None, [b"k" * 20])
    assert not verify_hmac_base64(body, "", [b"k" * 20])
    assert not verify_hmac_base64(body, good, [])
    assert not verify_hmac_base64(body, good[:-2], [b"k" * 20])
    assert not verify_hmac_base64(body, hmac.new(b"k" * 20, body, hashlib.sha256).hexdigest(), [b"k" * 20])
    assert not verify_hmac_base64(body + b" ", good, [b"k" * 20])
    assert not verify_hmac_base64(body, "ünïcode", [b"k" * 20])
    empty = base64.b64encode(hmac.new(b"", body, hashlib.sha256).digest()).decode()
    assert not verify_hmac_base64(body, empty, [b""])  # an empty key never verifies


def forgeries(body: bytes) -> dict[str, dict[str, str | None]]:
    raw = hmac.new(SECRET.encode(), body, hashlib.sha256)
    reserialized = json.dumps(json.loads(body), separators=(",", ":"), sort_keys=True).encode()
    return {
        "missing header": {"X-Shopify-Hmac-Sha256": None},
        "wrong secret": {"X-Shopify-Hmac-Sha256": sign_hmac_base64(body, b"not-the-secret-at-all")},
        "hex instead of base64": {"X-Shopify-Hmac-Sha256": raw.hexdigest()},
        "over re-serialized JSON": {"X-Shopify-Hmac-Sha256": sign_hmac_base64(reserialized, SECRET.encode())},
        "truncated": {"X-Shopify-Hmac-Sha256": base64.b64encode(raw.digest()).decode()[:20]},
        "empty": {"X-Shopify-Hmac-Sha256": ""},
    }


@pytest.mark.parametrize("kind", list(forgeries(body_of(order()))))
def test_forged_deliveries_get_401_and_nothing_is_stored(client, gw, caplog, kind):
    """reliability W1: a missing, wrong, truncated or re-encoded HMAC is 401; nothing stored."""
    body = body_of(order())
    headers = {**shopify_headers(body), **forgeries(body)[kind]}
    headers = {k: v for k, v in headers.items() if v is not None}
    with caplog.at_level(logging.INFO):
        res = client.post("/intake/shopify/acme", content=body, headers=headers)
    assert res.status_code == 401
    assert res.json() == {"error": "invalid signature"}
    assert message_count(gw) == 0
    # One audit line, without the payload.
    assert any("signature" in r.getMessage() and "acme" in r.getMessage() for r in caplog.records)
    assert CANARY not in caplog.text
    assert client.app.state.intake.stats["rejected:401"] == 1


def test_both_secrets_are_accepted_during_a_rotation(client, gw):
    new, old = body_of(order(1)), body_of(order(2))
    assert client.post("/intake/shopify/acme", content=new, headers=shopify_headers(new, webhook_id="a")).status_code == 200
    assert client.post("/intake/shopify/acme", content=old, headers=shopify_headers(old, secret=OLD_SECRET, webhook_id="b")).status_code == 200
    assert message_count(gw) == 2
    # A secret of another store does not sign for this one.
    third = body_of(order(3))
    assert client.post("/intake/shopify/acme", content=third, headers=shopify_headers(third, secret=WOO_SECRET)).status_code == 401


# -- storing ---------------------------------------------------------------------------------


def test_a_verified_order_is_committed_with_its_origin(client, gw):
    body = body_of(order())
    res = client.post("/intake/shopify/acme", content=body, headers=shopify_headers(body, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"))
    assert res.status_code == 200
    answer = res.json()
    assert answer["duplicate"] is False
    [row] = messages(gw)
    assert row["id"] == answer["stored"]
    assert row["state"] == "received"  # processing is left to the pipeline's job
    assert (row["format"], row["partner"], row["source"]) == ("shopify", "acme", "shopify:acme")
    assert row["source_ref"] == "shopify:acme:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert row["display_name"] == "orders.create b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert row["sha256"] == hashlib.sha256(body).hexdigest()
    with gw.store.engine.connect() as conn:
        assert conn.execute(select(t.message_bodies.c.body)).scalar_one() == body  # the raw bytes, as signed


def test_the_event_id_stands_in_for_a_missing_webhook_id_and_junk_ids_are_not_kept(client, gw):
    body = body_of(order(1))
    headers = shopify_headers(body)
    del headers["X-Shopify-Webhook-Id"]
    headers["X-Shopify-Event-Id"] = "evt-98"
    assert client.post("/intake/shopify/acme", content=body, headers=headers).status_code == 200
    for n, junk in enumerate(["../../etc x", "ok\n", "x" * 101], start=2):
        other = body_of(order(n))
        headers = shopify_headers(other)
        headers["X-Shopify-Webhook-Id"] = junk
        assert client.post("/intake/shopify/acme", content=other, headers=headers).status_code == 200
    refs = sorted(str(m["source_ref"]) for m in messages(gw))
    assert refs[0] == "shopify:acme:evt-98"
    assert all(ref.startswith("shopify:acme:sha256-") for ref in refs[1:]) and len(refs) == 4


def test_a_replay_with_the_same_or_a_fresh_webhook_id_is_one_message(client, gw, monkeypatch):
    """reliability W2: a replay, with the same or a fresh webhook id, is a 200 no-op."""
    body = body_of(order())
    first = client.post("/intake/shopify/acme", content=body, headers=shopify_headers(body, webhook_id="wh-1")).json()
    calls = []
    receive = gw.pipeline.receive
    monkeypatch.setattr(gw.pipeline, "receive", lambda *a, **k: calls.append(1) or receive(*a, **k))
    # Same id: answered from the in-memory cache, the database is not asked.
    again = client.post("/intake/shopify/acme", content=body, headers=shopify_headers(body, webhook_id="wh-1")).json()
    assert again == {"stored": first["stored"], "duplicate": True} and calls == []
    # A fresh id (the header is not signed): the content hash in the store catches it.
    fresh = client.post("/intake/shopify/acme", content=body, headers=shopify_headers(body, webhook_id="wh-2")).json()
    assert fresh == {"stored": first["stored"], "duplicate": True} and calls == [1]
    assert message_count(gw) == 1


def test_a_known_webhook_id_with_other_bytes_is_not_taken_for_a_repeat(client, gw):
    """The repeat cache is only a shortcut: a reused id never hides a different delivery."""
    one, two = body_of(order(1)), body_of(order(1, updated_at="2026-11-20T11:00:00-05:00"))
    a = client.post("/intake/shopify/acme", content=one, headers=shopify_headers(one, webhook_id="same")).json()
    b = client.post("/intake/shopify/acme", content=two, headers=shopify_headers(two, webhook_id="same", topic="orders/updated")).json()
    assert a["stored"] != b["stored"] and b["duplicate"] is False
    assert message_count(gw) == 2


def test_three_concurrent_deliveries_of_one_webhook_are_one_message(client, gw):
    """reliability F22 (in process; tests/e2e/test_intake_server.py does it over sockets)."""
    body = body_of(order())
    headers = shopify_headers(body, webhook_id="wh-concurrent")
    start = threading.Barrier(3)

    def deliver(_: int) -> tuple[int, dict[str, object]]:
        start.wait()
        res = client.post("/intake/shopify/acme", content=body, headers=headers)
        return res.status_code, res.json()

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(deliver, range(3)))
    assert [status for status, _ in answers] == [200, 200, 200]
    assert len({a["stored"] for _, a in answers}) == 1
    assert sorted(a["duplicate"] for _, a in answers) == [False, True, True]
    assert message_count(gw) == 1


def test_store_unavailable_is_503_with_retry_after_and_the_retry_stores_it(client, gw, monkeypatch):
    """reliability F5 (the store raising; tests/e2e/test_intake_server.py holds a real lock)."""
    body = body_of(order())

    def down():
        raise StoreUnavailable("the store is unavailable: database is locked")

    monkeypatch.setattr(gw.pipeline.store, "begin", down)
    res = client.post("/intake/shopify/acme", content=body, headers=shopify_headers(body))
    assert res.status_code == 503
    assert int(res.headers["Retry-After"]) > 0
    assert "error" in res.json()
    monkeypatch.undo()
    assert message_count(gw) == 0
    # Shopify retries the same delivery: now it is stored (the failed try left nothing behind,
    # not even in the repeat cache).
    retry = client.post("/intake/shopify/acme", content=body, headers=shopify_headers(body))
    assert retry.status_code == 200 and retry.json()["duplicate"] is False
    assert message_count(gw) == 1


# -- topics and WooCommerce ------------------------------------------------------------------


@pytest.mark.parametrize("topic", ["products/update", "customers/create", "app/uninstalled"])
def test_a_verified_delivery_on_an_unused_topic_is_200_ignored(client, gw, topic):
    body = body_of({"id": 1})
    res = client.post("/intake/shopify/acme", content=body, headers=shopify_headers(body, topic=topic))
    assert res.status_code == 200 and res.json() == {"ignored": topic}
    assert message_count(gw) == 0


def test_all_order_topics_are_stored(client, gw):
    for n, topic in enumerate(["orders/create", "orders/updated", "orders/cancelled", "orders/paid", "orders/edited"]):
        body = body_of(order(n))
        assert client.post("/intake/shopify/acme", content=body, headers=shopify_headers(body, topic=topic, webhook_id=f"w{n}")).json()["duplicate"] is False
    assert message_count(gw) == 5


def test_a_missing_topic_is_400(client, gw):
    body = body_of(order())
    headers = shopify_headers(body)
    del headers["X-Shopify-Topic"]
    assert client.post("/intake/shopify/acme", content=body, headers=headers).status_code == 400
    assert message_count(gw) == 0


def woo_headers(body: bytes, *, topic: str = "order.created", secret: str = WOO_SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Signature": sign_hmac_base64(body, secret.encode()),
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": topic.split(".")[-1],
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "7f3c2a",
        "X-WC-Webhook-Source": "https://shop.example.com/",
    }


def test_woocommerce_ping_is_answered_without_storing(client, gw):
    res = client.post("/intake/woocommerce/woo", content=b"webhook_id=12", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert res.status_code == 200 and res.json() == {"ping": True}
    assert message_count(gw) == 0
    # A ping to a store we do not serve is still a 404.
    assert client.post("/intake/woocommerce/nope", content=b"webhook_id=12", headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 404


def test_woocommerce_orders_are_verified_and_stored(client, gw):
    body = body_of({"id": 727, "number": "727", "status": "processing", "billing": {"email": CANARY}})
    assert client.post("/intake/woocommerce/woo", content=body, headers=woo_headers(body, secret=SECRET)).status_code == 401
    unsigned = {k: v for k, v in woo_headers(body).items() if k != "X-WC-Webhook-Signature"}
    assert client.post("/intake/woocommerce/woo", content=body, headers=unsigned).status_code == 401
    assert client.post("/intake/woocommerce/woo", content=body, headers=woo_headers(body, topic="coupon.created")).json() == {"ignored": "coupon.created"}
    assert message_count(gw) == 0
    res = client.post("/intake/woocommerce/woo", content=body, headers=woo_headers(body, topic="order.updated"))
    assert res.status_code == 200 and res.json()["duplicate"] is False
    [row] = messages(gw)
    assert (row["format"], row["partner"], row["source_ref"]) == ("woocommerce", "woo", "woocommerce:woo:7f3c2a")


# -- the edge: stores, sizes, types, depth ---------------------------------------------------


def test_unknown_store_or_wrong_platform_is_404(client, gw):
    body = body_of(order())
    assert client.post("/intake/shopify/nobody", content=body, headers=shopify_headers(body)).json() == {"error": "unknown store"}
    assert client.post("/intake/shopify/woo", content=body, headers=shopify_headers(body)).status_code == 404
    assert client.post("/intake/woocommerce/acme", content=body, headers=woo_headers(body)).status_code == 404
    assert message_count(gw) == 0


def test_an_oversized_body_is_413_by_content_length_and_by_counting(client, gw):
    """reliability W3: a body over the limit is 413."""
    big = body_of(order(note="x" * 30_000))
    res = client.post("/intake/shopify/acme", content=big, headers=shopify_headers(big))
    assert res.status_code == 413
    # Chunked, no Content-Length: counted while reading.
    chunks = [big[i : i + 4096] for i in range(0, len(big), 4096)]
    res = client.post("/intake/shopify/acme", content=iter(chunks), headers=shopify_headers(big))
    assert res.status_code == 413
    # A lying Content-Length is no way around the limit either.
    for bad in ("x1", b"\xb2", "-1"):
        assert client.post("/intake/shopify/acme", content=big, headers={**shopify_headers(big), "Content-Length": bad}).status_code == 400
    assert message_count(gw) == 0


def test_deep_json_is_400_and_brackets_inside_strings_do_not_count(client, gw):
    """reliability W3: JSON nested too deep is 400 before any parser sees it."""
    deep = b'{"a":' * 65 + b"1" + b"}" * 65
    res = client.post("/intake/shopify/acme", content=deep, headers=shopify_headers(deep))
    assert res.status_code == 400 and "nested" in res.json()["error"]
    assert message_count(gw) == 0
    limit = b'{"a":' * 63 + b"[1]" + b"}" * 63  # exactly 64 deep
    assert client.post("/intake/shopify/acme", content=limit, headers=shopify_headers(limit)).status_code == 200
    fine = body_of(order(note="[[[[" * 100 + '"\\' + "{" * 100))
    assert client.post("/intake/shopify/acme", content=fine, headers=shopify_headers(fine)).status_code == 200


def test_json_nesting_depth_scan():
    assert json_nesting_depth(b"") == 0
    assert json_nesting_depth(b'{"a": [1, {"b": []}]}') == 4
    assert json_nesting_depth(b'{"a": "[[[{{{\\"[[["}') == 1
    assert json_nesting_depth(b"[" * 100_000) == 100_000
    assert json_nesting_depth(b'"' + b"\\" * 5 + b"[") == 0  # an unterminated string runs to the end
    assert json_nesting_depth(b'["' + b'\\"' * 1000 + b'"]') == 1
    assert MAX_JSON_DEPTH == 64


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None])
def test_wrong_content_type_is_415(client, gw, ctype):
    """reliability W3: a wrong Content-Type is 415."""
    body = body_of(order())
    headers = shopify_headers(body)
    if ctype is None:
        del headers["Content-Type"]
    else:
        headers["Content-Type"] = ctype
    assert client.post("/intake/shopify/acme", content=body, headers=headers).status_code == 415
    assert message_count(gw) == 0


def test_json_with_charset_is_accepted(client):
    body = body_of(order())
    headers = {**shopify_headers(body), "Content-Type": "application/json; charset=utf-8"}
    assert client.post("/intake/shopify/acme", content=body, headers=headers).status_code == 200


def test_an_empty_signed_body_is_400(client, gw):
    assert client.post("/intake/shopify/acme", content=b"", headers=shopify_headers(b"")).status_code == 400
    assert message_count(gw) == 0


# -- health and documentation ----------------------------------------------------------------


def test_health_is_ok_and_503_when_the_store_does_not_answer(client, gw, monkeypatch):
    assert client.get("/health").json() == {"status": "ok"}

    def refuse(*_a, **_k):
        raise OperationalError("SELECT 1", {}, Exception("unable to open database file"))

    monkeypatch.setattr(gw.store.engine, "connect", refuse)
    res = client.get("/health")
    assert res.status_code == 503 and res.json() == {"status": "unavailable"}


def test_openapi_documents_every_endpoint(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) == {
        "/intake/shopify/{store}", "/intake/woocommerce/{store}", "/intake/shipments/{connector}", "/intake/forms/{form}", "/health", "/metrics",
    }
    for path, item in paths.items():
        for op in item.values():
            assert op["summary"] and op["description"], path
            for status, response in op["responses"].items():
                assert response["description"], (path, status)
            assert ("422" in op["responses"]) == path.startswith("/intake/forms/")  # only forms validate fields
    for path in ("/intake/shopify/{store}", "/intake/woocommerce/{store}"):
        op = paths[path]["post"]
        assert {"200", "400", "401", "404", "413", "415", "503"} <= set(op["responses"])
        assert "application/json" in op["requestBody"]["content"]
        assert all(p.get("description") for p in op["parameters"])
    shipments = paths["/intake/shipments/{connector}"]["post"]
    assert {"200", "400", "401", "404", "503"} <= set(shipments["responses"]) and "application/json" in shipments["requestBody"]["content"]
    names = {p["name"] for p in paths["/intake/shopify/{store}"]["post"]["parameters"]}
    assert {"x-shopify-hmac-sha256", "x-shopify-topic", "x-shopify-webhook-id"} <= names
    assert client.get("/docs").status_code == 200


# -- configuration ---------------------------------------------------------------------------


def test_config_describes_every_field_and_hides_secrets():
    for model in (IntakeConfig, StoreConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"
    cfg = IntakeConfig.model_validate({"stores": [{"name": "acme", "platform": "shopify", "secrets": [SECRET]}]})
    assert SECRET not in repr(cfg) and SECRET not in cfg.model_dump_json()
    assert (cfg.host, cfg.port, cfg.max_body_bytes) == ("127.0.0.1", 8080, 1_000_000)


@pytest.mark.parametrize(
    "store",
    [
        {"name": "acme", "platform": "shopify", "secrets": []},
        {"name": "acme", "platform": "shopify", "secrets": [SECRET, OLD_SECRET, WOO_SECRET]},
        {"name": "acme", "platform": "shopify", "secrets": [""]},
        {"name": "acme", "platform": "shopify", "secrets": ["short"]},
        {"name": "Acme Shop", "platform": "shopify", "secrets": [SECRET]},
        {"name": "acme", "platform": "magento", "secrets": [SECRET]},
        {"name": "acme", "platform": "shopify", "secrets": [SECRET], "secret": SECRET},
    ],
)
def test_bad_store_configs_are_refused(store):
    with pytest.raises(ValidationError):
        IntakeConfig.model_validate({"stores": [store]})


def test_store_names_are_unique_across_platforms():
    with pytest.raises(ValidationError, match="used twice"):
        IntakeConfig.model_validate(
            {
                "stores": [
                    {"name": "acme", "platform": "shopify", "secrets": [SECRET]},
                    {"name": "acme", "platform": "woocommerce", "secrets": [WOO_SECRET]},
                ]
            }
        )

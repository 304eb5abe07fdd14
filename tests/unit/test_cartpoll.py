"""The cart reconciliation poller: Shopify/WooCommerce REST orders since a persisted cursor."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import func, select

from connectors.sources.cartpoll.config import CartPollConfig
from connectors.sources.cartpoll.source import CartPollSource
from gateway.connector import RawMessage
from gateway.errors import ConfigError
from gateway.pipeline import Pipeline
from gateway.store import Store
from gateway.store import tables as t
from gateway.store.cursors import get_cursor, set_cursor

BASE = "https://acme.myshopify.com"
ORDERS = f"{BASE}/admin/api/2024-10/orders.json"
WOO = "https://shop.example.com"
WOO_ORDERS = f"{WOO}/wp-json/wc/v3/orders"
NOW = dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.UTC)
FIXTURES = Path(__file__).parents[1] / "fixtures" / "carts"


@pytest.fixture
def store(tmp_path: Path):
    s = Store(f"sqlite:///{tmp_path / 'gateway.db'}")
    yield s
    s.dispose()


def shopify_config(**extra: Any) -> CartPollConfig:
    return CartPollConfig.model_validate(
        {"name": "acme-poll", "platform": "shopify", "partner": "acme", "base_url": BASE, "access_token": "shpat_secret", "page_size": 2, **extra}
    )


def woo_config(**extra: Any) -> CartPollConfig:
    return CartPollConfig.model_validate(
        {
            "name": "woo-poll",
            "platform": "woocommerce",
            "partner": "woo",
            "base_url": WOO,
            "consumer_key": "ck_key",
            "consumer_secret": "cs_secret",
            "page_size": 2,
            **extra,
        }
    )


def make(config: CartPollConfig, store: Store, **kw: Any) -> CartPollSource:
    kw.setdefault("resolver", lambda host, port: ["93.184.216.34"])
    kw.setdefault("sleep", lambda s: None)
    return CartPollSource(config, store=store, clock=lambda: NOW, **kw)


def order(oid: int, updated_at: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": oid,
        "order_number": oid - 1000,
        "name": f"#{oid - 1000}",
        "updated_at": updated_at,
        "created_at": "2026-11-20T09:00:00-05:00",
        "currency": "USD",
        "total_price": "19.98",
        "line_items": [{"id": 1, "sku": "SKU-1", "title": "Widget", "quantity": 2, "price": "9.99"}],
        **extra,
    }


def run(source: CartPollSource, *, ack: bool = True) -> list[RawMessage]:
    got = []
    for msg in source.poll():
        got.append(msg)
        if ack:
            source.ack(msg, "stored", "m")
    return got


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


# -- Shopify ---------------------------------------------------------------------------------------


@responses.activate
def test_shopify_follows_link_pages_and_never_another_host(store):
    page2 = f"{ORDERS}?limit=2&page_info=p2"
    page3 = f"{ORDERS}?limit=2&page_info=p3"
    responses.get(ORDERS, json={"orders": [order(2001, "2026-11-20T10:00:00-05:00"), order(2002, "2026-11-20T10:01:00-05:00")]},
                  headers={"Link": f'<{page2}>; rel="next"'}, match=[responses.matchers.query_param_matcher({}, strict_match=False)])
    responses.get(page2, json={"orders": [order(2003, "2026-11-20T10:02:00-05:00"), order(2004, "2026-11-20T10:03:00-05:00")]},
                  headers={"Link": f'<{ORDERS}?page_info=p1>; rel="previous", <{page3}>; rel="next"'},
                  match=[responses.matchers.query_param_matcher({"page_info": "p2"}, strict_match=False)])
    responses.get(page3, json={"orders": [order(2005, "2026-11-20T10:04:00-05:00")]},
                  headers={"Link": '<https://evil.example.net/admin/api/2024-10/orders.json?page_info=p4>; rel="next"'},
                  match=[responses.matchers.query_param_matcher({"page_info": "p3"}, strict_match=False)])
    src = make(shopify_config(), store)
    msgs = run(src)
    assert [m.source_ref for m in msgs] == [
        f"shopify:acme:{i}:2026-11-20T10:0{i - 2001}:00-05:00" for i in range(2001, 2006)
    ]
    assert msgs[0].display_name == "order 2001 updated 2026-11-20T10:00:00-05:00"
    assert all(m.source == "acme-poll" for m in msgs)
    assert json.loads(msgs[0].body) == order(2001, "2026-11-20T10:00:00-05:00")
    urls = [c.request.url for c in responses.calls]
    assert len(urls) == 3 and not any("evil" in u for u in urls)
    first = query(responses.calls[0])
    assert first["status"] == ["any"] and first["limit"] == ["2"] and first["order"] == ["updated_at asc"]
    assert first["updated_at_min"] == ["2026-11-19T16:00:00+00:00"]  # no cursor yet: 24 h look-back
    assert "updated_at_min" not in query(responses.calls[1])  # the link carries its own query
    assert all(c.request.headers["X-Shopify-Access-Token"] == "shpat_secret" for c in responses.calls)
    assert get_cursor(store, "acme-poll") == "2026-11-20T15:04:00+00:00"


@responses.activate
def test_cursor_moves_only_on_ack_survives_restart_and_poll_starts_at_cursor_minus_overlap(store):
    responses.get(ORDERS, json={"orders": [order(2001, "2026-11-20T10:00:00-05:00")]})
    src = make(shopify_config(), store)
    msgs = run(src, ack=False)
    assert len(msgs) == 1 and get_cursor(store, "acme-poll") is None  # polled, not acknowledged
    src.ack(msgs[0], "stored", "m1")
    assert get_cursor(store, "acme-poll") == "2026-11-20T15:00:00+00:00"

    fresh = make(shopify_config(overlap_seconds=120), store)  # a restart
    run(fresh)
    assert query(responses.calls[-1])["updated_at_min"] == ["2026-11-20T14:58:00+00:00"]


def test_the_cursor_only_moves_forward(store):
    set_cursor(store, "s", "2026-11-20T10:00:00-05:00")
    set_cursor(store, "s", "2026-11-20T14:00:00Z")  # earlier, in another zone
    assert get_cursor(store, "s") == "2026-11-20T15:00:00+00:00"
    set_cursor(store, "s", "2026-11-20T15:00:01+00:00")
    assert get_cursor(store, "s") == "2026-11-20T15:00:01+00:00"
    assert get_cursor(store, "other") is None


@responses.activate
def test_an_unchanged_order_polled_twice_is_the_same_bytes_and_stored_once(store):
    # the API's own key order and white space differ between the two answers
    first = json.dumps({"orders": [order(2001, "2026-11-20T10:00:00-05:00")]}, indent=2)
    again = json.dumps({"orders": [dict(reversed(list(order(2001, "2026-11-20T10:00:00-05:00").items())))]})
    responses.get(ORDERS, body=first, content_type="application/json")
    responses.get(ORDERS, body=again, content_type="application/json")
    src = make(shopify_config(), store)
    pipeline = Pipeline(store, connectors=["erp"])
    results = []
    for _ in range(2):
        for msg in src.poll():
            results.append(pipeline.receive(msg, format="shopify", partner="acme"))
            src.ack(msg, "duplicate" if results[-1].duplicate else "stored", results[-1].message_id)
    assert [r.duplicate for r in results] == [False, True]
    assert results[0].message_id == results[1].message_id
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.messages)).scalar() == 1


@responses.activate
def test_429_stops_the_poll_without_acking_and_waits_for_retry_after(store):
    now = [1000.0]
    page2 = f"{ORDERS}?page_info=p2"
    responses.get(ORDERS, json={"orders": [order(2001, "2026-11-20T10:00:00-05:00")]}, headers={"Link": f'<{page2}>; rel="next"'},
                  match=[responses.matchers.query_param_matcher({"status": "any"}, strict_match=False)])
    responses.get(page2, status=429, headers={"Retry-After": "30"})
    src = make(shopify_config(), store, monotonic=lambda: now[0])
    msgs = run(src, ack=False)
    assert len(msgs) == 1  # the first page came; the second was refused
    assert get_cursor(store, "acme-poll") is None
    calls = len(responses.calls)
    assert list(src.poll()) == [] and len(responses.calls) == calls  # within Retry-After: no request
    now[0] += 31
    assert len(list(src.poll())) == 1 and len(responses.calls) == calls + 2


@responses.activate
def test_a_nearly_full_call_bucket_slows_down(store):
    waits: list[float] = []
    responses.get(ORDERS, json={"orders": []}, headers={"X-Shopify-Shop-Api-Call-Limit": "39/40"})
    run(make(shopify_config(), store, sleep=waits.append))
    assert waits and waits[0] > 0


@responses.activate
@pytest.mark.parametrize("status", [500, 503, 401, 403])
def test_server_and_auth_errors_end_the_poll_and_lose_nothing(store, status, caplog):
    set_cursor(store, "acme-poll", "2026-11-20T15:00:00+00:00")
    responses.get(ORDERS, status=status, body="oops")
    assert run(make(shopify_config(), store)) == []
    assert get_cursor(store, "acme-poll") == "2026-11-20T15:00:00+00:00"
    if status in (401, 403):
        assert "CONFIGURATION ERROR" in caplog.text and "access_token" in caplog.text
    assert "shpat_secret" not in caplog.text


@responses.activate
def test_a_connection_error_ends_the_poll_quietly(store):
    import requests

    responses.get(ORDERS, body=requests.ConnectionError("refused"))
    assert run(make(shopify_config(), store)) == []
    assert get_cursor(store, "acme-poll") is None


@responses.activate
def test_redirects_are_not_followed(store):
    responses.get(ORDERS, status=302, headers={"Location": "https://evil.example.net/"})
    assert run(make(shopify_config(), store)) == []
    assert len(responses.calls) == 1


# -- WooCommerce -----------------------------------------------------------------------------------


def woo_order(oid: int, modified: str) -> dict[str, Any]:
    return {"id": oid, "order_key": f"wc_order_{oid}", "date_modified_gmt": modified, "currency": "EUR",
            "line_items": [{"id": 1, "sku": "W-1", "name": "Widget", "quantity": 1, "price": 5}]}


@responses.activate
def test_woocommerce_pages_by_total_pages_with_basic_auth(store):
    for page, orders in ((1, [woo_order(1, "2026-11-20T10:00:00"), woo_order(2, "2026-11-20T10:01:00")]), (2, [woo_order(3, "2026-11-20T10:02:00")])):
        responses.get(WOO_ORDERS, json=orders, headers={"X-WP-TotalPages": "2", "X-WP-Total": "3"},
                      match=[responses.matchers.query_param_matcher({"page": str(page)}, strict_match=False)])
    src = make(woo_config(), store)
    msgs = run(src)
    assert [m.source_ref for m in msgs] == [f"woocommerce:woo:{i}:2026-11-20T10:0{i - 1}:00" for i in (1, 2, 3)]
    assert len(responses.calls) == 2
    q = query(responses.calls[0])
    assert q["modified_after"] == ["2026-11-19T16:00:00"] and q["per_page"] == ["2"]
    assert q["orderby"] == ["modified"] and q["order"] == ["asc"] and q["dates_are_gmt"] == ["true"]
    expected = "Basic " + base64.b64encode(b"ck_key:cs_secret").decode()
    assert all(c.request.headers["Authorization"] == expected for c in responses.calls)
    assert get_cursor(store, "woo-poll") == "2026-11-20T10:02:00+00:00"


# -- SSRF and configuration ------------------------------------------------------------------------


@responses.activate
def test_a_host_resolving_to_a_private_address_is_refused(store, caplog):
    src = make(shopify_config(), store, resolver=lambda host, port: ["10.0.0.7"])
    assert list(src.poll()) == []
    assert len(responses.calls) == 0 and "public hosts" in caplog.text


def test_a_private_ip_base_url_is_refused_unless_allowed(store):
    with pytest.raises(ConfigError):
        make(shopify_config(base_url="https://169.254.169.254"), store)
    make(shopify_config(base_url="http://127.0.0.1:8000", allow_private_targets=True), store)


@pytest.mark.parametrize(
    "extra",
    [
        {"base_url": "http://acme.myshopify.com"},  # credentials over plain http
        {"access_token": None},
        {"partner": "Acme"},
        {"base_url": "https://user:pw@acme.myshopify.com"},
        {"page_size": 251},
    ],
)
def test_bad_configurations_are_refused(extra):
    with pytest.raises(ValueError):
        shopify_config(**extra)


def test_every_config_field_is_described_and_secrets_are_hidden():
    for name, field in CartPollConfig.model_fields.items():
        assert field.description, name
    assert "shpat_secret" not in repr(shopify_config())
    assert shopify_config().format == "shopify"


# -- the pipeline: a webhook copy and a polled copy are one order ----------------------------------


@responses.activate
def test_a_webhook_order_and_the_same_order_polled_are_one_order(store):
    webhook_body = (FIXTURES / "shopify_orders_create.json").read_bytes()
    data = json.loads(webhook_body)
    pipeline = Pipeline(store, connectors=["erp"])
    hook = pipeline.receive(
        RawMessage(body=webhook_body, source="intake", source_ref="shopify:acme", display_name="webhook"), format="shopify", partner="acme"
    )
    pipeline.process_pending()

    responses.get(ORDERS, json={"orders": [data]})
    src = make(shopify_config(), store)
    for msg in src.poll():
        result = pipeline.receive(msg, format="shopify", partner="acme")
        src.ack(msg, "stored", result.message_id)
        assert result.message_id != hook.message_id  # other bytes: a message of its own
    pipeline.process_pending()
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.messages)).scalar() == 2
        orders = conn.execute(select(t.orders.c.id, t.orders.c.state)).all()
        outbox = conn.execute(select(func.count()).select_from(t.outbox)).scalar()
    live = [o for o in orders if o.state != "duplicate"]
    assert len(live) == 1 and sorted(o.state for o in orders) == ["duplicate", "validated"], orders
    assert outbox == 1

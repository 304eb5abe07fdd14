"""Shipment webhooks (issue 11): each connector's check of its service's webhook (EasyPost's
HMAC signature, ShipStation's URL token and resource_url), its reading of the documented
payloads, and the intake's answers (TestClient) for what is refused before anything is recorded."""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from fastapi.testclient import TestClient

from connectors.targets.easypost.config import EasyPostConfig
from connectors.targets.shipstation.config import ShipStationConfig
from gateway import plugins
from gateway.app import Gateway, check_connectors
from gateway.config import GatewayConfig
from gateway.connector import ShipmentFound, StatusFound, WebhookRequest
from gateway.errors import ConfigError, TransientError, WebhookRefused, WebhookUnauthorized
from gateway.intake import IntakeConfig, IntakeServer, create_app
from gateway.intake.shipments import ShipmentWebhookIntake
from gateway.plugins import build
from tests.support.shipping_apis import (
    EASYPOST_URL,
    SHIPSTATION_URL,
    FakeShipStation,
    easypost_event,
    easypost_signature,
)

EP_SECRET = "ep-webhook-secret-0123456789"
SS_TOKEN = "ss-webhook-token-0123456789abcdef"
FROM = {"name": "Gateway Co", "street1": "9 Depot St", "city": "Sparks", "state": "NV", "zip": "89431", "country": "US"}


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EP_HOOK", EP_SECRET)
    monkeypatch.setenv("SS_HOOK", SS_TOKEN)


def easypost(**kw: Any) -> Any:
    cfg = EasyPostConfig.model_validate({"name": "labels", "url": EASYPOST_URL, "api_key": "EZTK-1", "from_address": FROM, **kw})
    return build("target", cfg)


def shipstation(url: str = SHIPSTATION_URL, **kw: Any) -> Any:
    return build("target", ShipStationConfig.model_validate({"name": "shipstation", "url": url, "api_key": "k", "api_secret": "s", **kw}))


def ep_request(body: bytes, signature: str | None) -> WebhookRequest:
    return WebhookRequest(headers={"x-hmac-signature": signature} if signature is not None else {}, query={}, body=body)


# -- EasyPost: the signature --------------------------------------------------------------------


def test_easypost_takes_webhooks_only_with_a_secret_configured() -> None:
    assert easypost().capabilities.shipment_webhooks is False
    assert easypost(webhook_secret_env="EP_HOOK").capabilities.shipment_webhooks is True
    assert easypost(webhook_secret_env="EP_HOOK").capabilities.idempotent is True  # the rest is unchanged


def test_easypost_signature_good_bad_missing_and_wrong_length() -> None:
    ep = easypost(webhook_secret_env="EP_HOOK")
    body = easypost_event("1Z999", "shp_00000001")
    good = easypost_signature(body, EP_SECRET)
    [event] = ep.shipment_events(ep_request(body, good))
    assert event.reference == "shp_00000001" and event.found.shipments[0].tracking == "1Z999"
    refused = {
        "other secret": easypost_signature(body, EP_SECRET + "x"),
        "other body": easypost_signature(body + b" ", EP_SECRET),
        "missing": None,
        "empty": "",
        "no prefix": good.removeprefix("hmac-sha256-hex="),
        "truncated": good[:-2],
        "longer": good + "00",
        "upper-case prefix": good.replace("hmac-sha256-hex=", "HMAC-SHA256-HEX="),
        "not ASCII": good[:-1] + "é",
    }
    for what, signature in refused.items():
        with pytest.raises(WebhookUnauthorized):
            ep.shipment_events(ep_request(body, signature))
            pytest.fail(f"signature {what} accepted")


def test_easypost_secret_is_nfkd_normalised_as_easyposts_clients_do(monkeypatch: pytest.MonkeyPatch) -> None:
    composed = "caf\u00e9-webhook-secret-\ufb01le"  # é composed, and the "fi" ligature
    monkeypatch.setenv("EP_HOOK", composed)
    ep = easypost(webhook_secret_env="EP_HOOK")
    body = easypost_event("1Z1", "shp_1")
    assert ep.shipment_events(ep_request(body, easypost_signature(body, "cafe\u0301-webhook-secret-file")))  # the NFKD form
    raw = "hmac-sha256-hex=" + hmac.new(composed.encode(), body, "sha256").hexdigest()
    with pytest.raises(WebhookUnauthorized):  # keyed with the un-normalised bytes: not what EasyPost sends
        ep.shipment_events(ep_request(body, raw))


def test_easypost_without_its_secret_in_the_environment_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EP_HOOK")
    with pytest.raises(ConfigError, match="EP_HOOK is not set"):
        easypost(webhook_secret_env="EP_HOOK").shipment_events(ep_request(b"{}", "hmac-sha256-hex=00"))
    monkeypatch.setenv("EP_HOOK", "short")
    with pytest.raises(ConfigError, match="EP_HOOK is too short"):
        easypost(webhook_secret_env="EP_HOOK").webhook_secrets()


# -- EasyPost: the documented events ------------------------------------------------------------


def signed(ep: Any, body: bytes) -> list[Any]:
    return list(ep.shipment_events(ep_request(body, easypost_signature(body, EP_SECRET))))


@pytest.mark.parametrize("status", ["in_transit", "out_for_delivery", "available_for_pickup", "delivered"])
def test_a_tracker_that_left_reports_the_shipment_of_its_label(status: str) -> None:
    ep = easypost(webhook_secret_env="EP_HOOK")
    [event] = signed(ep, easypost_event("9400100000000000000001", "shp_abc123", status, carrier="USPS"))
    assert (event.reference, event.order_key) == ("shp_abc123", None)
    assert event.found == StatusFound(shipped=True, shipments=(
        ShipmentFound(carrier="USPS", service=None, tracking="9400100000000000000001", ship_date=dt.date(2026, 12, 5)),
    ))
    assert "evt_" in event.about and status in event.about


def test_events_that_ship_nothing_report_nothing() -> None:
    ep = easypost(webhook_secret_env="EP_HOOK")
    for status in ("pre_transit", "unknown", "return_to_sender", "failure", "cancelled"):
        assert signed(ep, easypost_event("1Z1", "shp_1", status)) == [], status
    batch = json.dumps({"object": "Event", "description": "batch.updated", "result": {"object": "Batch", "id": "batch_1", "state": "purchased"}})
    assert signed(ep, batch.encode()) == []


def test_a_tracker_of_no_label_of_ours_names_no_reference() -> None:
    [event] = signed(easypost(webhook_secret_env="EP_HOOK"), easypost_event("1Z1", None))
    assert event.reference is None  # the core answers it 200 "unknown", never a retry loop
    [event] = signed(easypost(webhook_secret_env="EP_HOOK"), easypost_event("1Z1", "../../etc/passwd"))
    assert event.reference is None  # nothing from a message is used unchecked


def test_verified_bodies_that_are_not_events_are_refused() -> None:
    ep = easypost(webhook_secret_env="EP_HOOK")
    for body in (b"not json", b"[1, 2]", b'{"object": "Tracker"}', b'{"object": "Event", "description": "tracker.updated", "result": []}',
                 json.dumps({"object": "Event", "description": "tracker.updated", "result": {"object": "Tracker", "status": "delivered"}}).encode(),
                 b"[" * 100_000):
        with pytest.raises(WebhookRefused) as caught:
            signed(ep, body)
        assert not isinstance(caught.value, WebhookUnauthorized)


# -- ShipStation: the token and the resource_url ------------------------------------------------


def ss_request(body: bytes, token: str | None) -> WebhookRequest:
    return WebhookRequest(headers={}, query={"token": token} if token is not None else {}, body=body)


@pytest.fixture
def api() -> Iterator[FakeShipStation]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeShipStation(rsps)


def shipped(api: FakeShipStation, n: int) -> list[dict[str, Any]]:
    """`n` ShipStation orders created and shipped."""
    found = []
    for i in range(n):
        key = f"key-{i}"
        api.orders[key] = {"orderId": 900_000 + i, "orderKey": key, "orderNumber": f"PO-{i}", "orderStatus": "awaiting_shipment"}
        found.append(api.ship(900_000 + i, f"1ZSS{i:05d}"))
    return found


def test_shipstation_token_good_bad_missing_and_wrong_length(api: FakeShipStation) -> None:
    ss = shipstation(webhook_secret_env="SS_HOOK")
    body = api.notify(shipped(api, 1))
    [event] = ss.shipment_events(ss_request(body, SS_TOKEN))
    assert (event.reference, event.order_key) == ("900000", "key-0")
    asked = len(api.requests)
    for token in (None, "", SS_TOKEN[:-1], SS_TOKEN + "x", SS_TOKEN.upper(), "ü" * len(SS_TOKEN)):
        with pytest.raises(WebhookUnauthorized):
            ss.shipment_events(ss_request(body, token))
    assert len(api.requests) == asked  # a refused notification makes no call with our credentials


def test_a_previous_secret_is_accepted_while_the_service_switches_over(api: FakeShipStation, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotation: with webhook_previous_secret_env set, both the new and the old secret are
    accepted (EasyPost's signature and ShipStation's token); unset the variable and only the
    new one is; a third is never. A previous secret set too short is a configuration error."""
    old_ep, old_ss = "ep-old-webhook-secret-987654", "ss-old-webhook-token-987654321"
    monkeypatch.setenv("EP_OLD", old_ep)
    monkeypatch.setenv("SS_OLD", old_ss)
    ep = easypost(webhook_secret_env="EP_HOOK", webhook_previous_secret_env="EP_OLD")
    ss = shipstation(webhook_secret_env="SS_HOOK", webhook_previous_secret_env="SS_OLD")
    body = easypost_event("1Z42", "shp_00000042")
    notify = api.notify(shipped(api, 1))
    for secret in (EP_SECRET, old_ep):
        assert ep.shipment_events(ep_request(body, easypost_signature(body, secret)))
    for token in (SS_TOKEN, old_ss):
        assert ss.shipment_events(ss_request(notify, token))
    with pytest.raises(WebhookUnauthorized):
        ep.shipment_events(ep_request(body, easypost_signature(body, "ep-third-webhook-secret-000")))
    with pytest.raises(WebhookUnauthorized):
        ss.shipment_events(ss_request(notify, "ss-third-webhook-token-0000000"))
    monkeypatch.delenv("EP_OLD")
    monkeypatch.delenv("SS_OLD")  # the switch is over
    with pytest.raises(WebhookUnauthorized):
        ep.shipment_events(ep_request(body, easypost_signature(body, old_ep)))
    with pytest.raises(WebhookUnauthorized):
        ss.shipment_events(ss_request(notify, old_ss))
    assert ss.shipment_events(ss_request(notify, SS_TOKEN))
    monkeypatch.setenv("SS_OLD", "short")
    with pytest.raises(ConfigError, match="webhook_previous_secret_env: environment variable SS_OLD is too short"):
        ss.webhook_secrets()


def test_shipstation_follows_every_page_and_skips_voided_shipments(api: FakeShipStation) -> None:
    api.page_size = 40
    shipments = shipped(api, 100)
    shipments[7]["voided"] = True
    events = shipstation(webhook_secret_env="SS_HOOK").shipment_events(ss_request(api.notify(shipments), SS_TOKEN))
    assert len(events) == 99 and "900007" not in {e.reference for e in events}
    assert [u.split("page=")[-1] if "page=" in u else "1" for _, u, _ in api.requests] == ["1", "2", "3"]
    assert all(a and a.startswith("Basic ") for a in api.authorization)  # with the API credentials
    e = next(e for e in events if e.reference == "900001")
    assert e.found == StatusFound(shipped=True, shipments=(
        ShipmentFound(carrier="ups", service="ups_ground", tracking="1ZSS00001", ship_date=dt.date(2026, 12, 5)),
    ))


def test_other_notifications_report_nothing(api: FakeShipStation) -> None:
    ss = shipstation(webhook_secret_env="SS_HOOK")
    assert ss.shipment_events(ss_request(api.notify(shipped(api, 1), kind="ORDER_NOTIFY"), SS_TOKEN)) == []
    assert api.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://ssapi.shipstation.test/shipments?batchId=1",  # not https
        "https://evil.test/shipments?batchId=1",  # another host
        "https://ssapi.shipstation.test.evil.test/shipments?batchId=1",
        "https://ssapi.shipstation.test:8443/shipments?batchId=1",  # another port
        "https://user:pw@ssapi.shipstation.test/shipments?batchId=1",
        "https://ssapi.shipstation.test/orders?orderStatus=shipped",  # not the shipments list
        "https://ssapi.shipstation.test/shipments/../accounts/listtags",
        "https://ssapi.shipstation.test/shipments?batchId=1#x&y=<script>",
        "https://ssapi.shipstation.test/shipments?batchId=1%0d%0aHost:evil",
        "https://ssapi.shipstation.test:notaport/shipments",
        "//ssapi.shipstation.test/shipments",
    ],
)
def test_a_resource_url_elsewhere_is_never_followed(api: FakeShipStation, url: str) -> None:
    body = json.dumps({"resource_url": url, "resource_type": "SHIP_NOTIFY"}).encode()
    with pytest.raises(WebhookRefused):
        shipstation(webhook_secret_env="SS_HOOK").shipment_events(ss_request(body, SS_TOKEN))
    assert api.requests == []


def test_a_resource_url_under_a_configured_path_prefix_is_followed() -> None:
    with responses.RequestsMock() as rsps:
        rsps.get("https://proxy.test/ss/shipments?batchId=5", json={"shipments": [], "total": 0, "page": 1, "pages": 1})
        ss = shipstation("https://proxy.test/ss", webhook_secret_env="SS_HOOK")
        body = json.dumps({"resource_url": "https://PROXY.test/ss/shipments?batchId=5", "resource_type": "SHIP_NOTIFY"}).encode()
        assert ss.shipment_events(ss_request(body, SS_TOKEN)) == []


def test_shipstation_not_answering_is_transient(api: FakeShipStation) -> None:
    api.script(500, {"Message": "An error has occurred."})
    with pytest.raises(TransientError):
        shipstation(webhook_secret_env="SS_HOOK").shipment_events(ss_request(api.notify(shipped(api, 1)), SS_TOKEN))


# -- configuration -------------------------------------------------------------------------------


def gateway_config(tmp_path: Any, **intake: Any) -> GatewayConfig:
    return GatewayConfig.model_validate({
        "store": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
        "connectors": [
            {"type": "easypost", "name": "labels", "url": EASYPOST_URL, "api_key": "EZTK-1", "from_address": FROM, "webhook_secret_env": "EP_HOOK"},
            {"type": "shipstation", "name": "shipstation", "url": SHIPSTATION_URL, "api_key": "k", "api_secret": "s", "webhook_secret_env": "SS_HOOK"},
            {"type": "shipstation", "name": "plain", "url": SHIPSTATION_URL, "api_key": "k", "api_secret": "s"},
            {"type": "file", "name": "erp", "path": str(tmp_path / "erp")},
        ],
    })


def test_config_check_names_a_missing_webhook_secret_variable(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_connectors(gateway_config(tmp_path)) == []
    monkeypatch.delenv("SS_HOOK")
    [problem] = check_connectors(gateway_config(tmp_path))
    assert "connector shipstation" in problem and "SS_HOOK is not set" in problem
    with pytest.raises(ValueError, match="webhook_secret_env"):
        ShipStationConfig.model_validate({"name": "x", "api_key": "k", "api_secret": "s", "webhook_secret_env": "lower-case; rm"})


# -- the intake's refusals ------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Any) -> Iterator[TestClient]:
    gw = Gateway(gateway_config(tmp_path))
    with TestClient(create_app(gw, IntakeConfig())) as c:
        yield c
    gw.close()


def test_the_intake_refuses_before_recording(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    body = easypost_event("1Z1", "shp_1")
    post = lambda path, sig=easypost_signature(body, EP_SECRET): client.post(path, content=body, headers={"X-Hmac-Signature": sig})  # noqa: E731
    assert post("/intake/shipments/nope").status_code == 404
    assert post("/intake/shipments/erp").status_code == 404  # a file connector takes no webhooks
    assert post("/intake/shipments/plain").json() == {"error": "this connector takes no shipment webhooks"}
    assert post("/intake/shipments/labels", "hmac-sha256-hex=00").status_code == 401
    assert client.post("/intake/shipments/shipstation?token=wrong", content=b"{}").status_code == 401
    bad = b'{"object": "Thing"}'
    assert client.post("/intake/shipments/labels", content=bad, headers={"X-Hmac-Signature": easypost_signature(bad, EP_SECRET)}).status_code == 400
    # Verified, naming no order we sent: 200, so EasyPost does not retry it for days.
    answer = post("/intake/shipments/labels")
    assert answer.status_code == 200 and answer.json() == {"events": 1, "recorded": 0, "repeats": 0, "unknown": 1, "refused": 0}
    monkeypatch.delenv("EP_HOOK")
    missing = post("/intake/shipments/labels")
    assert missing.status_code == 503 and int(missing.headers["Retry-After"]) > 0  # our fault: the service retries later


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any]]:
    """The connectors `plugins.build` makes from now on, and those closed, in order."""
    built: list[Any] = []
    closed: list[Any] = []
    real_build = plugins.build

    def counted(kind: str, cfg: Any, **deps: Any) -> Any:
        connector = real_build(kind, cfg, **deps)
        real_close = connector.close
        connector.close = lambda: (closed.append(connector), real_close())
        built.append(connector)
        return connector

    monkeypatch.setattr(plugins, "build", counted)
    return built, closed


def test_the_intake_builds_each_connector_once_and_closes_it_when_its_server_stops(
    tmp_path: Any, builds: tuple[list[Any], list[Any]]
) -> None:
    built, closed = builds
    body = easypost_event("1Z1", "shp_1")
    headers = {"X-Hmac-Signature": easypost_signature(body, EP_SECRET)}
    gw = Gateway(gateway_config(tmp_path))
    try:
        with IntakeServer(gw, IntakeConfig(port=0)) as server:
            for _ in range(2):
                assert requests.post(f"{server.url}/intake/shipments/labels", data=body, headers=headers, timeout=10).status_code == 200
            assert (len(built), closed) == (1, [])  # one connector for both webhooks, kept open
            server.replace(gw, IntakeConfig(port=0))  # a reload: the replaced app's connector is closed
            assert closed == built
            assert requests.post(f"{server.url}/intake/shipments/labels", data=body, headers=headers, timeout=10).status_code == 200
            assert len(built) == 2 and closed == built[:1]
        assert closed == built  # stopping the server closed the new app's connector too
    finally:
        gw.close()


def test_a_webhook_after_the_intake_closed_builds_its_own_connector_and_closes_it(
    tmp_path: Any, builds: tuple[list[Any], list[Any]]
) -> None:
    built, closed = builds
    hooks = ShipmentWebhookIntake(Gateway(gateway_config(tmp_path)), store_timeout=5)
    hooks.close()
    body = easypost_event("1Z1", "shp_1")
    try:
        hooks.receive("labels", ep_request(body, easypost_signature(body, EP_SECRET)), "test")
        assert len(built) == 1 and closed == built  # a request in flight when a reload closed its app: nothing left open
    finally:
        hooks.gateway.close()


# -- finding the order an event names ---------------------------------------------------------------


def test_the_order_is_found_by_key_or_reference_newest_shippable_version_first(store_url: str) -> None:
    import datetime as dt

    from sqlalchemy import insert

    from gateway.store import Store
    from gateway.store import tables as t
    from gateway.store.outbox import idempotency_key
    from gateway.store.tracking import order_taken

    store = Store(store_url)  # SQLite and PostgreSQL read the receipt's JSON differently
    now = dt.datetime.now(dt.UTC)
    with store.begin() as conn:
        conn.execute(insert(t.messages), [{"id": "m1", "received_at": now, "updated_at": now, "source": "t", "sha256": "a" * 64, "size": 1,
                                           "state": "parsed", "warnings": [], "attempts": 0, "order_count": 3, "rejected_count": 0}])
        orders = [("o1", 1, "dispatched", "acme|X|PO-1"), ("o2", 2, "dispatched", "acme|X|PO-1"), ("o3", 1, "held", "acme|X|PO-2")]
        conn.execute(insert(t.orders), [
            {"id": oid, "message_id": "m1", "doc_index": i, "created_at": now, "updated_at": now, "channel": "x12", "partner": "acme",
             "po_number": key.rsplit("|", 1)[1], "order_key": key, "state": state, "version": version, "line_count": 1}
            for i, (oid, version, state, key) in enumerate(orders)
        ])
        conn.execute(insert(t.outbox), [
            {"order_id": oid, "connector": "ss", "idempotency_key": idempotency_key(oid, "ss"), "state": "sent", "attempts": 1,
             "created_at": now, "updated_at": now, "next_attempt_at": now, "kind": "order", "action": "create" if oid != "o2" else "update",
             "receipt": {"status": 200, "reference": ref, "detail": {}}}
            for oid, ref in (("o1", "1001"), ("o2", "1001"), ("o3", "1003"))
        ])
    try:
        # ShipStation names the first version's orderKey: the change (version 2) is the one shipped.
        assert order_taken(store, "ss", key=idempotency_key("o1", "ss")) == ("o2", "PO-1", "dispatched")
        assert order_taken(store, "ss", reference="1001") == ("o2", "PO-1", "dispatched")
        assert order_taken(store, "ss", key="unknown-key", reference="1003") == ("o3", "PO-2", "held")  # the fulfilment refuses it
        assert order_taken(store, "other", reference="1001") is None  # another connector's reference
        assert order_taken(store, "ss", reference="1001' OR '1'='1") is None
        assert order_taken(store, "ss") is None
    finally:
        store.dispose()

"""The ShipStation target on ShipStation's documented payloads and error bodies (`responses`)."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.targets.shipstation.config import ShipStationConfig
from connectors.targets.shipstation.connector import ShipStationConnector
from gateway.config import load_config
from gateway.connector import Delivery, ShipmentFound, StatusFound
from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.plugins import build
from gateway.store.outbox import idempotency_key
from tests.support.shipping_apis import SHIPSTATION_URL, FakeShipStation
from tests.unit.test_target_contract import GOLDEN

ROUTED = {
    **GOLDEN,
    "ship_to": {"name": "Acme DC 4", "address_lines": ["1 Dock Rd"], "city": "Reno", "region": "NV", "postal_code": "89501", "country": "US"},
    "route": {"warehouse": "WEST", "carrier": "UPSN", "service": "GND", "weight_kg": "2"},
    "lines": [{**GOLDEN["lines"][0]}],
}


@pytest.fixture
def api() -> Iterator[FakeShipStation]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeShipStation(rsps)


@pytest.fixture
def ss(monkeypatch: pytest.MonkeyPatch) -> Iterator[ShipStationConnector]:
    cfg = ShipStationConfig(name="shipstation", url=SHIPSTATION_URL, api_key="key-1", api_secret="secret-1", store_id=7)  # type: ignore[arg-type]
    connector = build("target", cfg)
    yield connector
    connector.close()


def delivery(
    order: dict[str, Any] = ROUTED, oid: str = "o-1", action: str = "create", reference: str | None = None,
    *, connector: str = "shipstation", **kw: Any,
) -> Delivery:
    """One delivery of `order` to `connector` (also used by tests/unit/test_easypost.py)."""
    return Delivery(outbox_id=1, order_id=oid, idempotency_key=idempotency_key(oid, connector), attempt=1, order=order,
                    action=action, target_reference=reference, **kw)


def test_create_posts_the_order_with_its_key_auth_route_and_the_erp_reference(api: FakeShipStation, ss: ShipStationConnector) -> None:
    receipt = ss.send(delivery(steps={"erp": "SO-17"}))
    [(method, url, body)] = api.requests
    assert (method, url) == ("POST", f"{SHIPSTATION_URL}/orders/createorder")
    assert body["orderKey"] == idempotency_key("o-1", "shipstation") and body["orderNumber"] == "PO-GOLD-1"
    assert body["orderStatus"] == "awaiting_shipment" and body["orderDate"] == "2026-11-27T00:00:00"
    assert body["shipTo"] == {"name": "Acme DC 4", "street1": "1 Dock Rd", "street2": None, "city": "Reno", "state": "NV",
                              "postalCode": "89501", "country": "US", "phone": None}
    assert body["items"] == [{"lineItemKey": "1", "sku": "WID-1", "name": "WID-1", "quantity": 10, "unitPrice": 2.5}]
    assert body["advancedOptions"] == {"customField1": "erp: SO-17", "customField2": "PO-GOLD-1", "storeId": 7}
    assert body["requestedShippingService"] == "UPSN GND" and body["weight"]["units"] == "ounces"
    assert round(body["weight"]["value"], 2) == 70.55
    assert receipt.reference == str(api.orders[body["orderKey"]]["orderId"])
    assert api.authorization[0] == "Basic " + base64.b64encode(b"key-1:secret-1").decode()


def test_a_retry_updates_the_same_order(api: FakeShipStation, ss: ShipStationConnector) -> None:
    first, second = ss.send(delivery()), ss.send(delivery())
    assert first.reference == second.reference and len(api.effects) == 1 and api.changes == []


def test_update_and_cancel_find_the_order_key_by_its_id(api: FakeShipStation, ss: ShipStationConnector) -> None:
    created = ss.send(delivery())
    changed = {**ROUTED, "lines": [{**ROUTED["lines"][0], "quantity": "12"}]}
    ss.send(delivery(changed, "o-2", "update", created.reference))
    ss.send(delivery(changed, "o-3", "cancel", created.reference))
    assert [kind for kind, _ in api.changes] == ["update", "cancel"] and len(api.orders) == 1
    assert api.changes[0][1]["items"][0]["quantity"] == 12
    with pytest.raises(PermanentError, match="not a ShipStation orderId"):
        ss.send(delivery(changed, "o-4", "update", "../../admin"))


def test_rate_limit_is_transient_with_the_reset_seconds(api: FakeShipStation, ss: ShipStationConnector) -> None:
    api.script(429, {"Message": "Too Many Requests"}, {"X-Rate-Limit-Reset": "37", "X-Rate-Limit-Remaining": "0"})
    with pytest.raises(TransientError) as info:
        ss.send(delivery())
    assert info.value.status == 429 and info.value.retry_after == 37
    api.script(503, {"Message": "Service Unavailable"})
    with pytest.raises(TransientError):
        ss.send(delivery())
    assert api.effects == []


def test_a_4xx_is_permanent_with_shipstations_message(api: FakeShipStation, ss: ShipStationConnector) -> None:
    api.script(400, {"Message": "The request is invalid.", "ModelState": {"apiOrder.shipTo.country": ["Country code is invalid"]}})
    with pytest.raises(PermanentError) as info:
        ss.send(delivery())
    assert not isinstance(info.value, TransientError)
    assert "HTTP 400" in str(info.value) and "apiOrder.shipTo.country: Country code is invalid" in str(info.value)
    api.script(401, {"Message": "Unauthorized"})
    with pytest.raises(PermanentError, match="credentials"):
        ss.send(delivery())


def test_a_fractional_quantity_is_refused_before_any_call(api: FakeShipStation, ss: ShipStationConnector) -> None:
    with pytest.raises(PermanentError, match="whole"):
        ss.send(delivery(GOLDEN))  # line 2 is 0.5 KG
    assert api.requests == []


def test_status_lookup(api: FakeShipStation, ss: ShipStationConnector) -> None:
    created = ss.send(delivery())
    assert created.reference is not None
    assert ss.status(created.reference) == StatusFound()  # not shipped yet
    api.ship(int(created.reference), "1Z999")["shipDate"] = "2026-12-05T00:00:00.0000000"  # as ShipStation writes it
    api.ship(int(created.reference), "1Z998")["voided"] = True
    assert ss.status(created.reference) == StatusFound(
        shipped=True, shipments=(ShipmentFound(carrier="ups", service="ups_ground", tracking="1Z999", ship_date=dt.date(2026, 12, 5)),)
    )


def test_shipped_without_a_shipment_listed_is_dated_by_the_order(api: FakeShipStation, ss: ShipStationConnector) -> None:
    created = ss.send(delivery())
    assert created.reference is not None
    api.ship(int(created.reference), "1Z999")["voided"] = True
    assert ss.status(created.reference) == StatusFound(shipped=True, shipments=(ShipmentFound(ship_date=dt.date(2026, 12, 5)),))


def test_credentials_come_only_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("connectors:\n  - {type: shipstation, name: ss, api_key: abc, api_secret: '${env:SS_SECRET}'}\n")
    with pytest.raises(ConfigError, match="secrets may not be written"):
        load_config(path, env={"SS_SECRET": "s"})
    path.write_text("connectors:\n  - {type: shipstation, name: ss, api_key: '${env:SS_KEY}', api_secret: '${env:SS_SECRET}'}\n")
    cfg = load_config(path, env={"SS_KEY": "key-from-env-1", "SS_SECRET": "s"})
    assert "key-from-env-1" not in repr(cfg.connectors[0])

"""The EasyPost target on EasyPost's documented payloads and error bodies (`responses`)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from connectors.targets.easypost.config import EasyPostConfig
from connectors.targets.easypost.connector import EasyPostConnector
from gateway.errors import PermanentError, TransientError
from gateway.plugins import build
from gateway.store.outbox import idempotency_key
from tests.support.shipping_apis import EASYPOST_URL, FakeEasyPost
from tests.unit.test_shipstation import ROUTED
from tests.unit.test_shipstation import delivery as shipstation_delivery

FROM = {"name": "Gateway Co", "street1": "9 Depot St", "city": "Sparks", "state": "NV", "zip": "89431", "country": "US"}


@pytest.fixture
def api() -> Iterator[FakeEasyPost]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeEasyPost(rsps)


def connector(**kw: Any) -> EasyPostConnector:
    cfg = EasyPostConfig.model_validate(
        {"name": "easypost", "url": EASYPOST_URL, "api_key": "EZTK-1", "from_address": FROM,
         "rates": [{"carrier": "UPSN", "service": "GND", "easypost_carrier": "UPS", "easypost_service": "Ground"}], **kw}
    )
    built = build("target", cfg)
    assert isinstance(built, EasyPostConnector)
    return built


@pytest.fixture
def ep() -> Iterator[EasyPostConnector]:
    c = connector()
    yield c
    c.close()


delivery = functools.partial(shipstation_delivery, connector="easypost")


def test_create_buys_the_routings_rate_for_the_catalogue_weight(api: FakeEasyPost, ep: EasyPostConnector) -> None:
    receipt = ep.send(delivery(steps={"erp": "SO-17"}))
    key = idempotency_key("o-1", "easypost")
    assert [(m, u.removeprefix(EASYPOST_URL)) for m, u, _ in api.requests] == [
        ("GET", f"/v2/shipments/{key}"), ("POST", "/v2/shipments"), ("POST", "/v2/shipments/shp_00000001/buy"),
    ]
    shipment = api.requests[1][2]["shipment"]
    assert shipment["reference"] == key and shipment["parcel"] == {"weight": 70.5}  # 2 kg in ounces
    assert shipment["to_address"]["zip"] == "89501" and shipment["from_address"]["name"] == "Gateway Co"
    assert shipment["options"] == {"print_custom_1": "erp: SO-17"}
    assert api.requests[2][2] == {"rate": {"id": "rate_1_0"}}  # UPSN GND -> UPS Ground
    assert receipt.reference == "shp_00000001" and receipt.detail["tracking_code"] == "1Z00000001"
    assert (receipt.detail["carrier"], receipt.detail["service"]) == ("UPS", "Ground")
    assert api.authorization[0] is not None and api.authorization[0].startswith("Basic ")


def test_a_retry_finds_the_shipment_by_reference_and_never_buys_twice(api: FakeEasyPost, ep: EasyPostConnector) -> None:
    d = delivery()
    api.script(503, {"error": {"code": "INTERNAL_SERVER_ERROR", "message": "try later", "errors": []}})
    with pytest.raises(TransientError):
        ep.send(d)  # the lookup failed: nothing made
    first = ep.send(d)  # looks up (404), creates, buys
    again = ep.send(d)  # looks up: bought already
    assert first.reference == again.reference and len(api.effects) == 1 and len(api.shipments) == 1
    assert [m for m, _, _ in api.requests[-1:]] == ["GET"]


def test_a_shipment_made_before_a_crash_is_bought_not_made_again(api: FakeEasyPost, ep: EasyPostConnector) -> None:
    d = delivery()
    # An earlier attempt made the shipment and stopped before buying (a crash).
    ep.http.call("POST", "/v2/shipments", {"shipment": ep._shipment(d, d.idempotency_key)})
    receipt = ep.send(d)
    assert len(api.shipments) == 1 and len(api.effects) == 1 and receipt.reference == "shp_00000001"
    assert [m for m, _, _ in api.requests] == ["POST", "GET", "POST"]  # made, looked up, bought


def test_no_rate_for_the_route_is_permanent_and_names_what_was_offered(api: FakeEasyPost, ep: EasyPostConnector) -> None:
    order = {**ROUTED, "route": {**ROUTED["route"], "carrier": "FXFE", "service": "LTL"}}
    with pytest.raises(PermanentError, match=r"no EasyPost rate for FXFE LTL \(offered: UPS Ground, UPS 2ndDayAir, USPS Priority\)"):
        ep.send(delivery(order))
    assert api.effects == []


def test_easyposts_error_body_is_kept_in_a_permanent_error(api: FakeEasyPost, ep: EasyPostConnector) -> None:
    api.script(404, {"error": {"code": "NOT_FOUND", "message": "not found", "errors": []}})
    api.script(422, {"error": {"code": "ADDRESS.VERIFY.FAILURE", "message": "Unable to verify address.",
                               "errors": [{"field": "zip", "message": "Invalid zip"}]}})
    with pytest.raises(PermanentError) as info:
        ep.send(delivery())
    assert not isinstance(info.value, TransientError) and info.value.status == 422
    assert "ADDRESS.VERIFY.FAILURE: Unable to verify address. (zip: Invalid zip)" in str(info.value)
    api.script(429, {"error": {"code": "RATE_LIMITED", "message": "slow down", "errors": []}}, {"Retry-After": "12"})
    with pytest.raises(TransientError) as transient:
        ep.send(delivery())
    assert transient.value.retry_after == 12


def test_an_order_without_weight_or_route_is_refused_unless_defaults_are_set(api: FakeEasyPost) -> None:
    bare = {k: v for k, v in ROUTED.items() if k != "route"}
    ep = connector()
    with pytest.raises(PermanentError, match="has no weight"):
        ep.send(delivery(bare))
    ep = connector(default_weight_oz=16, default_carrier="USPS", default_service="Priority")
    receipt = ep.send(delivery(bare))
    assert receipt.detail["carrier"] == "USPS" and api.effects[-1]["weight"] == 16


def test_cancel_refunds_the_label_once_and_updates_are_not_declared(api: FakeEasyPost, ep: EasyPostConnector) -> None:
    created = ep.send(delivery())
    for _ in range(2):
        ep.send(delivery(oid="o-3", action="cancel", reference=created.reference))
    assert api.changes == [("cancel", None)]
    assert not ep.capabilities.updates and ep.capabilities.cancels
    with pytest.raises(PermanentError, match="not an EasyPost shipment id"):
        ep.send(delivery(oid="o-4", action="cancel", reference="shp_1/../../v2/users"))

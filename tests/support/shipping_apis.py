"""ShipStation and EasyPost as far as the gateway uses them, behind `responses` (no network).

Each fake keeps the state its API keeps (orders by orderKey; shipments by id and reference),
answers with the documented payloads and error bodies, and can be told to fail:
``fake.script(status, body=None, headers=None)`` queues answers for the next requests;
``FakeShipStation.refuse_sku`` refuses (400, as ShipStation refuses an invalid order) every
order holding one of those SKUs, however often it is sent.
``effects`` lists what a person would see made (an order, a bought label); ``changes`` the
updates and cancellations, each recorded once (a repeat that changes nothing records nothing).
"""

from __future__ import annotations

import itertools
import json
import re
from collections import deque
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import responses
from requests import PreparedRequest

__all__ = ["EASYPOST_URL", "SHIPSTATION_URL", "FakeEasyPost", "FakeShipStation", "easypost_event", "easypost_signature"]

SHIPSTATION_URL = "https://ssapi.shipstation.test"
EASYPOST_URL = "https://api.easypost.test"

Answer = tuple[int, dict[str, str], str]


class _Fake:
    def __init__(self) -> None:
        self._script: deque[Answer] = deque()
        self.requests: list[tuple[str, str, Any]] = []
        self.effects: list[Any] = []
        self.changes: list[tuple[str, Any]] = []
        self.authorization: list[str | None] = []  # the Authorization header of each request

    def script(self, status: int, body: Any = None, headers: dict[str, str] | None = None, times: int = 1) -> None:
        for _ in range(times):
            self._script.append((status, headers or {}, json.dumps(body if body is not None else {})))

    def clear_script(self) -> None:
        self._script.clear()

    def _seen(self, request: PreparedRequest) -> tuple[Any, Answer | None]:
        raw = request.body
        body = json.loads(raw) if raw else None
        self.requests.append((str(request.method), str(request.url), body))
        self.authorization.append(request.headers.get("Authorization"))
        return body, (self._script.popleft() if self._script else None)


def _ok(status: int, body: Any) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(body)


class FakeShipStation(_Fake):
    """POST /orders/createorder (upsert by orderKey), GET /orders/{orderId}, GET /shipments?orderId=,
    and the shipments of a SHIP_NOTIFY webhook: GET /shipments?batchId=&page= (`notify`)."""

    def __init__(self, rsps: responses.RequestsMock, url: str = SHIPSTATION_URL):
        super().__init__()
        self.orders: dict[str, dict[str, Any]] = {}  # orderKey -> order as ShipStation holds it
        self.shipments: dict[int, list[dict[str, Any]]] = {}
        self.refuse_sku: set[str] = set()  # orders with any of these SKUs are refused (400)
        self.batches: dict[int, list[dict[str, Any]]] = {}  # batchId -> the shipments a notification names
        self.page_size = 100
        self._url = url
        self._ids = itertools.count(100_001)
        self._shipment_ids = itertools.count(500_001)
        rsps.add_callback(responses.POST, f"{url}/orders/createorder", callback=self._create)
        rsps.add_callback(responses.GET, re.compile(re.escape(url) + r"/orders/\d+$"), callback=self._get)
        rsps.add_callback(responses.GET, re.compile(re.escape(url) + r"/shipments\?orderId=\d+$"), callback=self._shipments)
        rsps.add_callback(responses.GET, re.compile(re.escape(url) + r"/shipments\?batchId=\d+"), callback=self._batch)

    def _create(self, request: PreparedRequest) -> Answer:
        body, scripted = self._seen(request)
        if scripted:
            return scripted
        refused = sorted({i.get("sku") for i in body.get("items") or []} & self.refuse_sku)
        if refused:
            return _ok(400, {"Message": "The request is invalid.", "ModelState": {"apiOrder.items": [f"unknown product {refused[0]}"]}})
        if not body.get("orderNumber") or not body.get("orderKey"):
            return _ok(400, {"Message": "The request is invalid.", "ModelState": {"apiOrder.orderNumber": ["The orderNumber field is required."]}})
        known = self.orders.get(body["orderKey"])
        order = {**body, "orderId": known["orderId"] if known else next(self._ids)}
        if known is None:
            self.effects.append(body)
        elif {k: v for k, v in known.items() if k != "orderId"} != body:
            self.changes.append(("cancel", None) if body["orderStatus"] == "cancelled" else ("update", body))
        self.orders[body["orderKey"]] = order
        return _ok(200, order)

    def _get(self, request: PreparedRequest) -> Answer:
        _, scripted = self._seen(request)
        if scripted:
            return scripted
        order_id = int(str(request.url).rsplit("/", 1)[1])
        for order in self.orders.values():
            if order["orderId"] == order_id:
                return _ok(200, order)
        return _ok(404, {"Message": f"Order {order_id} not found"})

    def _shipments(self, request: PreparedRequest) -> Answer:
        _, scripted = self._seen(request)
        order_id = int(str(request.url).rsplit("=", 1)[1])
        return scripted or _ok(200, {"shipments": self.shipments.get(order_id, []), "total": 0, "page": 1, "pages": 1})

    def _batch(self, request: PreparedRequest) -> Answer:
        _, scripted = self._seen(request)
        if scripted:
            return scripted
        query = dict(parse_qsl(urlsplit(str(request.url)).query))
        listed, page = self.batches.get(int(query["batchId"]), []), int(query.get("page", "1"))
        pages = max(1, -(-len(listed) // self.page_size))
        shown = listed[(page - 1) * self.page_size : page * self.page_size]
        return _ok(200, {"shipments": shown, "total": len(listed), "page": page, "pages": pages})

    def ship(self, order_id: int, tracking: str) -> dict[str, Any]:
        """Mark an order shipped, as a person does in ShipStation; the shipment made."""
        key = number = None
        for order in self.orders.values():
            if order["orderId"] == order_id:
                order["orderStatus"] = "shipped"
                order["shipDate"] = "2026-12-05"
                key, number = order["orderKey"], order["orderNumber"]
        shipment = {
            "shipmentId": next(self._shipment_ids), "orderId": order_id, "orderKey": key, "orderNumber": number, "carrierCode": "ups",
            "serviceCode": "ups_ground", "trackingNumber": tracking, "shipDate": "2026-12-05", "voided": False,
        }
        self.shipments.setdefault(order_id, []).append(shipment)
        return shipment

    def notify(self, shipments: list[dict[str, Any]], *, kind: str = "SHIP_NOTIFY") -> bytes:
        """The body of the webhook ShipStation posts about `shipments` (its resource_url lists them)."""
        batch = len(self.batches) + 12_345_000
        self.batches[batch] = list(shipments)
        return json.dumps({"resource_url": f"{self._url}/shipments?batchId={batch}&includeShipmentItems=False", "resource_type": kind}).encode()


class FakeEasyPost(_Fake):
    """POST /v2/shipments (with rates), GET /v2/shipments/{id or reference}, buy, refund."""

    RATES = (("UPS", "Ground", "9.80"), ("UPS", "2ndDayAir", "24.10"), ("USPS", "Priority", "8.15"))

    def __init__(self, rsps: responses.RequestsMock, url: str = EASYPOST_URL):
        super().__init__()
        self.shipments: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        base = re.escape(url) + r"/v2/shipments"
        rsps.add_callback(responses.POST, f"{url}/v2/shipments", callback=self._create)
        rsps.add_callback(responses.GET, re.compile(base + r"/[A-Za-z0-9_-]+$"), callback=self._get)
        rsps.add_callback(responses.POST, re.compile(base + r"/shp_[A-Za-z0-9]+/buy$"), callback=self._buy)
        rsps.add_callback(responses.POST, re.compile(base + r"/shp_[A-Za-z0-9]+/refund$"), callback=self._refund)

    @staticmethod
    def error(status: int, code: str, message: str, errors: list[dict[str, str]] | None = None) -> Answer:
        return _ok(status, {"error": {"code": code, "message": message, "errors": errors or []}})

    def _create(self, request: PreparedRequest) -> Answer:
        body, scripted = self._seen(request)
        if scripted:
            return scripted
        s = body["shipment"]
        if not s.get("parcel", {}).get("weight"):
            return self.error(422, "PARCEL.WEIGHT.INVALID", "Parcel weight must be greater than 0.", [{"field": "weight", "message": "must be greater than 0"}])
        n = next(self._ids)
        shipment = {
            "id": f"shp_{n:08d}", "object": "Shipment", "reference": s.get("reference"), "to_address": s["to_address"],
            "from_address": s["from_address"], "parcel": {"id": f"prcl_{n}", **s["parcel"]}, "options": s.get("options", {}),
            "rates": [{"id": f"rate_{n}_{i}", "carrier": c, "service": v, "rate": r, "shipment_id": f"shp_{n:08d}"} for i, (c, v, r) in enumerate(self.RATES)],
            "selected_rate": None, "postage_label": None, "tracking_code": None, "refund_status": None,
        }
        self.shipments[shipment["id"]] = shipment
        return _ok(201, shipment)

    def _find(self, key: str) -> dict[str, Any] | None:
        return self.shipments.get(key) or next((s for s in self.shipments.values() if s["reference"] == key), None)

    def _get(self, request: PreparedRequest) -> Answer:
        _, scripted = self._seen(request)
        if scripted:
            return scripted
        found = self._find(str(request.url).rsplit("/", 1)[1])
        return _ok(200, found) if found else self.error(404, "NOT_FOUND", "The requested resource could not be found.")

    def _buy(self, request: PreparedRequest) -> Answer:
        body, scripted = self._seen(request)
        if scripted:
            return scripted
        shipment = self.shipments[str(request.url).rsplit("/", 2)[1]]
        if shipment["postage_label"]:
            return self.error(422, "SHIPMENT.POSTAGE.EXISTS", "Postage already exists for this shipment.")
        rate = next((r for r in shipment["rates"] if r["id"] == body["rate"]["id"]), None)
        if rate is None:
            return self.error(422, "SHIPMENT.RATE.INVALID", "Rate not found.", [{"field": "rate", "message": "not one of this shipment's rates"}])
        shipment.update(selected_rate=rate, postage_label={"label_url": f"https://labels.test/{shipment['id']}.png"}, tracking_code=f"1Z{shipment['id'][4:]}")
        self.effects.append({"reference": shipment["reference"], "carrier": rate["carrier"], "service": rate["service"], "weight": shipment["parcel"]["weight"], "to": shipment["to_address"]["name"], "note": shipment["options"].get("print_custom_1")})
        return _ok(200, shipment)

    def _refund(self, request: PreparedRequest) -> Answer:
        _, scripted = self._seen(request)
        if scripted:
            return scripted
        shipment = self.shipments[str(request.url).rsplit("/", 2)[1]]
        if shipment["refund_status"]:
            return self.error(422, "SHIPMENT.REFUND.EXISTS", "A refund was already requested.")
        shipment["refund_status"] = "submitted"
        self.changes.append(("cancel", None))
        return _ok(200, shipment)


def easypost_event(tracking: str, shipment_id: str | None, status: str = "in_transit", *, n: int = 1, carrier: str = "UPS",
                   description: str = "tracker.updated") -> bytes:
    """An EasyPost Event about a Tracker, as EasyPost posts it to a webhook (documented shape)."""
    tracker = {
        "id": f"trk_{n:032x}", "object": "Tracker", "mode": "test", "tracking_code": tracking, "status": status,
        "status_detail": "arrived_at_facility" if status == "in_transit" else status, "created_at": "2026-12-05T08:00:00Z",
        "updated_at": "2026-12-05T09:00:00Z", "signed_by": None, "weight": None, "est_delivery_date": "2026-12-08T00:00:00Z",
        "shipment_id": shipment_id, "carrier": carrier,
        "tracking_details": [
            {"object": "TrackingDetail", "message": "Label created", "status": "pre_transit", "datetime": "2026-12-04T17:00:00Z"},
            {"object": "TrackingDetail", "message": "Picked up", "status": "in_transit", "datetime": "2026-12-05T08:00:00Z"},
        ],
        "public_url": f"https://track.easypost.com/{tracking}", "fees": [],
    }
    event = {
        "id": f"evt_{n:032x}", "object": "Event", "mode": "test", "description": description, "previous_attributes": {"status": "pre_transit"},
        "created_at": "2026-12-05T09:00:00Z", "pending_urls": [], "completed_urls": [], "updated_at": "2026-12-05T09:00:00Z",
        "status": "pending", "result": tracker,
    }
    return json.dumps(event).encode()


def easypost_signature(body: bytes, secret: str) -> str:
    """X-Hmac-Signature as EasyPost computes it: hex HMAC-SHA256 of the body under the NFKD secret."""
    import hashlib
    import hmac
    import unicodedata

    return "hmac-sha256-hex=" + hmac.new(unicodedata.normalize("NFKD", secret).encode("utf-8"), body, hashlib.sha256).hexdigest()

"""ShipStation target: each order becomes a ShipStation order (``type: shipstation``).

Calls (API v1, basic auth with api_key / api_secret)
    create   POST /orders/createorder with ``orderKey`` = the delivery's idempotency key:
             ShipStation updates the order with that key instead of making a second one, so
             a retry or a repeat after a crash has one effect. The receipt reference is the
             ``orderId`` ShipStation gives it.
    update   GET /orders/{orderId} (the receipt reference) for its orderKey, then createorder
             with that key and the changed order: the same ShipStation order is updated.
    cancel   the same, with ``orderStatus: cancelled``.
    status   `status(reference)` looks an order up and, once ShipStation marked it shipped,
             answers shipped with its shipments not voided (GET /shipments?orderId=): carrier,
             service, tracking number and ship date (`gateway shipped ORDER`, the
             ``status:<name>`` poll of `gateway.tracking`).
    webhook  `shipment_events(request)`: a SHIP_NOTIFY (or ITEM_SHIP_NOTIFY) webhook posted to
             /intake/shipments/{name}?token=... ShipStation signs nothing, so the token in the
             URL is the proof (compared in constant time with ``webhook_secret_env``). Its
             body names a ``resource_url``; it is followed only when it is https on the
             configured API host and port, under the configured path, at /shipments (never a
             URL from a message unchecked), with the API credentials, every page of it. Each
             shipment not voided is an event for the order created with its orderKey (the
             delivery's idempotency key) or its orderId (the receipt reference).

The body: orderNumber (the PO number), orderDate, orderStatus, billTo / shipTo (the order's
bill-to or buyer, and ship-to), items (lineItemKey, sku, name, whole quantity, unitPrice),
requestedShippingService (the route's carrier and service, `gateway.routing`), weight (the
route's catalogue weight, in ounces) and advancedOptions: storeId, customField1 with the
earlier steps' references (``after: [erp]``: "erp: SO-17"), customField2 with the PO. A
`payload` mapping replaces the body (orderKey is always set by the connector).

Capabilities
    idempotency_key=True, idempotent=True (orderKey), updates=True, cancels=True,
    shipments=True (a shipping service: `status` is asked about dispatched orders, never
    about invoices), shipment_webhooks when webhook_secret_env is set

Config keys (`ShipStationConfig`)
    name, url, api_key, api_secret (${env:NAME} references), order_status, store_id, timeout
    (connect, read), webhook_secret_env, webhook_previous_secret_env (the old token, accepted too
    while the webhook URL is changed), payload, retry, after

Errors (see `connectors.targets._shipping`)
    429                  TransientError, retry_after from X-Rate-Limit-Reset (seconds)
    408, 5xx, network    TransientError
    401, 403             PermanentError (credentials)
    other 4xx            PermanentError with ShipStation's Message / ExceptionMessage
    a fractional quantity, a reference that is not an orderId: PermanentError
    webhook: a token missing or wrong: WebhookUnauthorized; a body that is not a notification
    or a resource_url elsewhere: WebhookRefused; the token variable unset: ConfigError
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jmespath

from connectors.targets._shipping import (
    ShippingHttp,
    address,
    first_step_reference,
    route_of,
    shipment_found,
    whole,
)
from connectors.targets._webhooks import (
    any_same_secret,
    json_object,
    previous_secret_from_env,
    secret_from_env,
)
from connectors.targets.shipstation.config import ShipStationConfig
from gateway.connector import (
    Capabilities,
    Delivery,
    Receipt,
    ShipmentEvent,
    ShipmentFound,
    StatusFound,
    WebhookRequest,
)
from gateway.errors import (
    ConfigError,
    PermanentError,
    TransientError,
    WebhookRefused,
    WebhookUnauthorized,
)
from gateway.payload import load_payload

__all__ = ["ShipStationConnector"]

_ORDER_ID = re.compile(r"^[0-9]{1,18}$")
_OUNCES_PER_KG = Decimal("35.27396195")
_SHIP_NOTIFY = frozenset({"SHIP_NOTIFY", "ITEM_SHIP_NOTIFY"})
_QUERY = re.compile(r"^[A-Za-z0-9=&_.%+-]{0,500}$")  # a resource_url's query: ids and flags, nothing else
_MAX_PAGES = 50  # of one notification's shipments (ShipStation pages them by 100 by default)


def _message(body: Any) -> str | None:
    """ShipStation's error text: {"Message": ..., "ExceptionMessage": ..., "ModelState": {...}}."""
    if not isinstance(body, dict):
        return None
    parts = [str(body[k]) for k in ("Message", "ExceptionMessage") if body.get(k)]
    state = body.get("ModelState")
    if isinstance(state, dict):
        parts += [f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in state.items()]
    return "; ".join(parts) or None


class ShipStationConnector:
    """Sends orders to ShipStation; see the module docstring for the contract."""

    config_model = ShipStationConfig
    capabilities = Capabilities(idempotency_key=True, idempotent=True, updates=True, cancels=True, shipments=True, ships=True)

    def __init__(self, config: ShipStationConfig):
        self.config = config
        self.name = config.name
        if config.webhook_secret_env is not None:
            self.capabilities = dataclasses.replace(self.capabilities, shipment_webhooks=True)
        self._payload = load_payload(config.payload)
        self.http = ShippingHttp(
            config.name, str(config.url), config.timeout,
            auth=(config.api_key.get_secret_value(), config.api_secret.get_secret_value()),
            message_of=_message, retry_after_header="X-Rate-Limit-Reset",
        )

    def send(self, delivery: Delivery) -> Receipt:
        if delivery.action == "create":
            key = delivery.idempotency_key
        elif delivery.action in ("update", "cancel"):
            key = self._order_key(delivery.target_reference)
        else:
            raise PermanentError(f"{self.name}: unknown delivery action {delivery.action!r}")
        body = self._body(delivery, key)
        answer = self.http.call("POST", "/orders/createorder", body)
        order_id = answer.get("orderId") if isinstance(answer, dict) else None
        if not isinstance(order_id, int):
            raise TransientError(f"{self.name}: createorder answered without an orderId; sent again with the same orderKey")
        return Receipt(status=200, reference=str(order_id), detail={"orderKey": key, "orderStatus": answer.get("orderStatus")})

    def status(self, reference: str) -> StatusFound:
        """Shipped, with the shipments not voided, once ShipStation marked the order so."""
        order = self.http.call("GET", f"/orders/{self._checked(reference)}")
        if not isinstance(order, dict) or order.get("orderStatus") != "shipped":
            return StatusFound()
        found = self.http.call("GET", f"/shipments?orderId={self._checked(reference)}")
        shipments = found.get("shipments") if isinstance(found, dict) else None
        listed = tuple(_shipment(s, order.get("shipDate")) for s in shipments or [] if isinstance(s, dict) and not s.get("voided"))
        # Shipped with none listed: still one shipment, on the day ShipStation says the order shipped.
        return StatusFound(shipped=True, shipments=listed or (_shipment({}, order.get("shipDate")),))

    def webhook_secrets(self) -> list[bytes]:
        if self.config.webhook_secret_env is None:
            raise ConfigError(f"connector {self.name}: shipment webhooks are not configured (set webhook_secret_env)")
        current = secret_from_env(self.name, self.config.webhook_secret_env)
        previous = previous_secret_from_env(self.name, self.config.webhook_previous_secret_env)
        return [s.encode("utf-8") for s in (current, previous) if s]

    def shipment_events(self, request: WebhookRequest) -> list[ShipmentEvent]:
        """The shipments a SHIP_NOTIFY names (see the module docstring); [] for another kind."""
        if not any_same_secret(request.query.get("token"), self.webhook_secrets()):
            raise WebhookUnauthorized(f"{self.name}: the token in the webhook URL is {'wrong' if request.query.get('token') else 'missing'}")
        note = json_object(request.body, "ShipStation")
        kind = note.get("resource_type")
        if kind not in _SHIP_NOTIFY:
            return []
        path, query = self._resource(note.get("resource_url"))
        events = []
        page, pages = 1, 1
        while page <= pages:
            params = [*query, ("page", str(page))] if page > 1 else query
            found = self.http.call("GET", f"{path}?{urlencode(params)}" if params else path)
            if not isinstance(found, dict) or not isinstance(found.get("shipments"), list):
                raise TransientError(f"{self.name}: {kind} resource answered without a shipments list; ShipStation may send it again")
            for s in found["shipments"]:
                if isinstance(s, dict) and not s.get("voided"):
                    events.append(_event(s, kind))
            pages = min(_MAX_PAGES, found["pages"]) if isinstance(found.get("pages"), int) else 1
            page += 1
        return events

    def _resource(self, url: Any) -> tuple[str, list[tuple[str, str]]]:
        """The path (under the base URL) and query of a notification's resource_url, checked:
        https, the configured host and port, /shipments under the configured path."""
        if not isinstance(url, str) or len(url) > 1000:
            raise WebhookRefused(f"{self.name}: the notification has no resource_url")
        base = urlsplit(self.http.base_url)
        try:
            given = urlsplit(url)
            same_place = given.scheme == "https" and (given.hostname or "").lower() == (base.hostname or "").lower() and given.port == base.port
        except ValueError:  # a port that is not a number, a broken IPv6 address
            same_place = False
        if not same_place or given.username or given.password:
            raise WebhookRefused(f"{self.name}: the resource_url is not on the configured ShipStation API (https://{base.hostname}); not followed")
        if given.path != base.path.rstrip("/") + "/shipments" or not _QUERY.match(given.query) or given.fragment:
            raise WebhookRefused(f"{self.name}: the resource_url is not a shipments list of the API; not followed")
        return "/shipments", [(k, v) for k, v in parse_qsl(given.query) if k.lower() != "page"]

    def _checked(self, reference: str | None) -> str:
        if not reference or not _ORDER_ID.match(reference):
            raise PermanentError(f"{self.name}: {reference!r} is not a ShipStation orderId")
        return reference

    def _order_key(self, reference: str | None) -> str:
        order = self.http.call("GET", f"/orders/{self._checked(reference)}")
        key = order.get("orderKey") if isinstance(order, dict) else None
        if not isinstance(key, str) or not key:
            raise PermanentError(f"{self.name}: ShipStation order {reference} has no orderKey to update it by")
        return key

    def _body(self, delivery: Delivery, key: str) -> dict[str, Any]:
        order = delivery.order
        status = "cancelled" if delivery.action == "cancel" else self.config.order_status
        if self.config.payload is not None:
            try:
                shaped = self._payload.render(order)
            except (TypeError, ValueError, jmespath.exceptions.JMESPathError) as exc:
                raise PermanentError(f"{self.name}: the payload mapping {self._payload.source} failed: {exc}") from None
            if not isinstance(shaped, dict):
                raise PermanentError(f"{self.name}: the payload mapping {self._payload.source} must give an object")
            return {"orderStatus": status, **shaped, "orderKey": key}
        route = route_of(order)
        bill = order.get("bill_to") or order.get("buyer")
        body: dict[str, Any] = {
            "orderNumber": order.get("po_number"),
            "orderKey": key,
            "orderDate": f"{order.get('order_date') or dt.date.today().isoformat()}T00:00:00",
            "orderStatus": status,
            "billTo": _ss_address(bill),
            "shipTo": _ss_address(order.get("ship_to") or bill),
            "items": [
                {
                    "lineItemKey": str(line.get("line_number") or i),
                    "sku": line.get("sku") or line.get("buyer_part_number"),
                    "name": line.get("description") or line.get("sku") or "",
                    "quantity": whole(line.get("quantity"), f"line {line.get('line_number') or i} quantity", self.name),
                    "unitPrice": float(line["unit_price"]) if line.get("unit_price") is not None else None,
                }
                for i, line in enumerate(order.get("lines") or [], start=1)
            ],
            "advancedOptions": {"customField1": first_step_reference(delivery.steps), "customField2": order.get("po_number")},
        }
        if self.config.store_id is not None:
            body["advancedOptions"]["storeId"] = self.config.store_id
        if route.get("carrier"):
            body["requestedShippingService"] = f"{route['carrier']} {route.get('service') or ''}".strip()
        if route.get("weight_kg"):
            body["weight"] = {"value": float(Decimal(str(route["weight_kg"])) * _OUNCES_PER_KG), "units": "ounces"}
        return body

    def close(self) -> None:
        self.http.close()


def _shipment(s: dict[str, Any], order_ship_date: object = None) -> ShipmentFound:
    """One of ShipStation's shipments as the core reads a shipment; dated by the order's
    shipDate when it has none of its own."""
    return shipment_found(
        carrier=s.get("carrierCode"), service=s.get("serviceCode"), tracking=s.get("trackingNumber"),
        ship_date=s.get("shipDate") or order_ship_date,
    )


def _event(s: dict[str, Any], kind: str) -> ShipmentEvent:
    """A shipment of a notification as the event of the order it belongs to."""
    key, order_id = s.get("orderKey"), s.get("orderId")
    return ShipmentEvent(
        reference=str(order_id) if isinstance(order_id, int) else None,
        order_key=key if isinstance(key, str) and key else None,
        found=StatusFound(shipped=True, shipments=(_shipment(s),)),
        about=f"{kind} shipment {str(s.get('shipmentId'))[:20]} of order {str(order_id)[:20]}",
    )


def _ss_address(party: Any) -> dict[str, Any]:
    a = address(party)
    return {
        "name": a["name"], "street1": a["street1"], "street2": a["street2"], "city": a["city"],
        "state": a["state"], "postalCode": a["postal_code"], "country": a["country"], "phone": a["phone"],
    }

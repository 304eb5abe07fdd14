"""EasyPost target: buys a shipping label for each order (``type: easypost``).

Calls (API v2, basic auth with the api_key)
    create   GET /v2/shipments/{reference} first (``reference`` = the delivery's idempotency
             key; EasyPost takes a shipment's reference in place of its id): a shipment made
             by an earlier attempt is reused, and one already bought is answered at once, so
             a retry never buys a second label. Otherwise POST /v2/shipments with to_address
             (the order's ship-to), from_address (config), parcel (weight in ounces: the
             route's catalogue weight, `gateway.routing`, else default_weight_oz) and
             options.print_custom_1 (the earlier steps' references, ``after: [erp]``); then
             the rate matching the route's carrier and service (through `rates`, else by name)
             is bought: POST /v2/shipments/{id}/buy. The receipt reference is the shipment id;
             its detail holds tracking_code, carrier, service and rate.
    cancel   POST /v2/shipments/{id}/refund (skipped when a refund is already asked for).
    webhook  `shipment_events(request)`: an Event posted to /intake/shipments/{name}, signed
             ``X-Hmac-Signature: hmac-sha256-hex=<hex>``: HMAC-SHA256 of the raw body keyed
             with the webhook secret, NFKD-normalised and UTF-8 encoded (as EasyPost's own
             clients check it), compared in constant time. A ``tracker.*`` event whose Tracker
             is in_transit, out_for_delivery, available_for_pickup or delivered reports its
             tracking_code and carrier for the order whose shipment id (the receipt
             reference) is the tracker's shipment_id; any other event or status reports none.

Capabilities
    idempotency_key=True (reference lookup), idempotent=True, cancels=True, updates=False: a
    bought label cannot be changed, so a changed order to this connector is a dead letter
    naming the reason (cancel the label and send the order again, or let a person decide).
    shipment_webhooks when webhook_secret_env is set.

Config keys (`EasyPostConfig`)
    name, url, api_key (an ${env:NAME} reference), from_address, rates, default_weight_oz,
    default_carrier / default_service (for an order without a route), timeout (connect, read),
    webhook_secret_env, webhook_previous_secret_env (accepted too while EasyPost is switched to a
    new secret), retry, after

Errors: EasyPost answers ``{"error": {"code", "message", "errors": [{"field", "message"}]}}``
(see `connectors.targets._shipping` for the status table)
    429, 5xx, network    TransientError
    401, 403             PermanentError (credentials)
    other 4xx            PermanentError with the code, message and field errors
    no rate for the route's carrier and service, no weight, no route, an id that is not a
    shipment id: PermanentError (fix the routing or the catalogue, then replay)
    webhook: a signature missing or wrong: WebhookUnauthorized; a body that is not an Event, a
    tracker event without a Tracker: WebhookRefused; the secret variable unset: ConfigError
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import unicodedata
from decimal import Decimal
from typing import Any

from connectors.targets._shipping import (
    ShippingHttp,
    address,
    first_step_reference,
    route_of,
    shipment_found,
)
from connectors.targets._webhooks import (
    any_same_secret,
    json_object,
    previous_secret_from_env,
    secret_from_env,
)
from connectors.targets.easypost.config import EasyPostConfig
from gateway.connector import (
    Capabilities,
    Delivery,
    Receipt,
    ShipmentEvent,
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

__all__ = ["EasyPostConnector"]

_SHIPMENT_ID = re.compile(r"^shp_[A-Za-z0-9]{1,64}$")
_REFERENCE = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_OUNCES_PER_KG = Decimal("35.27396195")
_SIGNATURE_PREFIX = b"hmac-sha256-hex="
# A tracker in one of these has left the warehouse: the order shipped (pre_transit is a label
# printed, not a parcel handed over; return_to_sender, failure and the like are no news to us).
_SHIPPED = frozenset({"in_transit", "out_for_delivery", "available_for_pickup", "delivered"})


def _message(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    text = f"{error.get('code') or 'ERROR'}: {error.get('message') or ''}".strip()
    fields = [f"{e.get('field')}: {e.get('message')}" for e in error.get("errors") or [] if isinstance(e, dict)]
    return text + (f" ({'; '.join(fields)})" if fields else "")


class EasyPostConnector:
    """Buys labels in EasyPost; see the module docstring for the contract."""

    config_model = EasyPostConfig
    capabilities = Capabilities(idempotency_key=True, idempotent=True, cancels=True, ships=True)

    def __init__(self, config: EasyPostConfig):
        self.config = config
        self.name = config.name
        if config.webhook_secret_env is not None:
            self.capabilities = dataclasses.replace(self.capabilities, shipment_webhooks=True)
        self.http = ShippingHttp(
            config.name, str(config.url), config.timeout, auth=(config.api_key.get_secret_value(), ""), message_of=_message
        )

    def send(self, delivery: Delivery) -> Receipt:
        if delivery.action == "cancel":
            self._refund(delivery.target_reference)
            return Receipt(status=200, reference=delivery.target_reference, detail={"refund": "submitted"})
        if delivery.action != "create":
            raise PermanentError(f"{self.name}: unknown delivery action {delivery.action!r}")
        reference = delivery.idempotency_key
        if not _REFERENCE.match(reference):
            raise PermanentError(f"{self.name}: idempotency key {reference!r} cannot be a shipment reference")
        shipment = self.http.call("GET", f"/v2/shipments/{reference}", missing_ok=True)
        if shipment is None:
            shipment = self.http.call("POST", "/v2/shipments", {"shipment": self._shipment(delivery, reference)})
        shipment_id = self._id(shipment)
        if not _bought(shipment):
            rate = self._rate(delivery.order, shipment)
            shipment = self.http.call("POST", f"/v2/shipments/{shipment_id}/buy", {"rate": {"id": rate["id"]}})
            if not _bought(shipment):
                raise TransientError(f"{self.name}: buying shipment {shipment_id} answered without a label; looked up again")
        selected = shipment.get("selected_rate") or {}
        return Receipt(
            status=200,
            reference=shipment_id,
            detail={
                "tracking_code": shipment.get("tracking_code"), "carrier": selected.get("carrier"),
                "service": selected.get("service"), "rate": selected.get("rate"),
            },
        )

    def webhook_secrets(self) -> list[bytes]:
        if self.config.webhook_secret_env is None:
            raise ConfigError(f"connector {self.name}: shipment webhooks are not configured (set webhook_secret_env)")
        current = secret_from_env(self.name, self.config.webhook_secret_env)
        previous = previous_secret_from_env(self.name, self.config.webhook_previous_secret_env)
        # EasyPost's clients normalise the secret (NFKD) before keying the HMAC with its UTF-8 bytes.
        return [unicodedata.normalize("NFKD", s).encode("utf-8") for s in (current, previous) if s]

    def shipment_events(self, request: WebhookRequest) -> list[ShipmentEvent]:
        """The shipment a tracker event reports (see the module docstring); [] for another event."""
        given = request.headers.get("x-hmac-signature")
        expected = [
            _SIGNATURE_PREFIX + hmac.new(secret, request.body, hashlib.sha256).hexdigest().encode("ascii")
            for secret in self.webhook_secrets()
        ]
        if not any_same_secret(given.strip() if given else None, expected):
            raise WebhookUnauthorized(f"{self.name}: X-Hmac-Signature is {'wrong' if given else 'missing'}")
        event = json_object(request.body, "EasyPost")
        if event.get("object") != "Event":
            raise WebhookRefused(f"{self.name}: the body is not an EasyPost Event")
        description = str(event.get("description") or "")
        if not description.startswith("tracker."):
            return []  # batch.updated, shipment.invoice.created, ...: nothing shipped
        tracker = event.get("result")
        if not isinstance(tracker, dict) or tracker.get("object") != "Tracker":
            raise WebhookRefused(f"{self.name}: a {description[:40]} event without a Tracker")
        if tracker.get("status") not in _SHIPPED:
            return []
        tracking = tracker.get("tracking_code")
        if not isinstance(tracking, str) or not tracking.strip():
            raise WebhookRefused(f"{self.name}: a {tracker.get('status')} tracker without a tracking_code")
        shipment_id = tracker.get("shipment_id")
        reference = shipment_id if isinstance(shipment_id, str) and _SHIPMENT_ID.match(shipment_id) else None
        shipment = shipment_found(carrier=tracker.get("carrier"), service=None, tracking=tracking.strip(), ship_date=_left(tracker))
        about = f"{str(event.get('id'))[:40]} {description[:40]} {str(tracker.get('id'))[:40]} ({tracker.get('status')}) of {reference}"
        return [ShipmentEvent(reference=reference, order_key=None, found=StatusFound(shipped=True, shipments=(shipment,)), about=about)]

    def _id(self, shipment: Any) -> str:
        shipment_id = shipment.get("id") if isinstance(shipment, dict) else None
        if not isinstance(shipment_id, str) or not _SHIPMENT_ID.match(shipment_id):
            raise TransientError(f"{self.name}: EasyPost answered without a shipment id")
        return shipment_id

    def _refund(self, reference: str | None) -> None:
        if not reference or not _SHIPMENT_ID.match(reference):
            raise PermanentError(f"{self.name}: {reference!r} is not an EasyPost shipment id")
        shipment = self.http.call("GET", f"/v2/shipments/{reference}")
        if isinstance(shipment, dict) and shipment.get("refund_status") in ("submitted", "refunded"):
            return
        self.http.call("POST", f"/v2/shipments/{reference}/refund")

    def _shipment(self, delivery: Delivery, reference: str) -> dict[str, Any]:
        order = delivery.order
        to = address(order.get("ship_to"), name=(order.get("buyer") or {}).get("name"))
        body: dict[str, Any] = {
            "reference": reference,
            "to_address": {
                "name": to["name"], "street1": to["street1"], "street2": to["street2"], "city": to["city"],
                "state": to["state"], "zip": to["postal_code"], "country": to["country"], "phone": to["phone"], "email": to["email"],
            },
            "from_address": self.config.from_address.model_dump(),
            "parcel": {"weight": self._ounces(order)},
        }
        note = first_step_reference(delivery.steps)
        if note:
            body["options"] = {"print_custom_1": note[:35]}
        return body

    def _ounces(self, order: dict[str, Any]) -> float:
        kg = route_of(order).get("weight_kg")
        if kg is not None and Decimal(str(kg)) > 0:
            return float((Decimal(str(kg)) * _OUNCES_PER_KG).quantize(Decimal("0.1")))
        if self.config.default_weight_oz is not None:
            return self.config.default_weight_oz
        raise PermanentError(
            f"{self.name}: order {order.get('po_number')} has no weight: its route has none (load items.weight_kg "
            "in the catalogue, configure routing) and default_weight_oz is not set"
        )

    def _rate(self, order: dict[str, Any], shipment: dict[str, Any]) -> dict[str, Any]:
        route = route_of(order)
        carrier, service = str(route.get("carrier") or ""), str(route.get("service") or "")
        if not carrier and self.config.default_carrier:
            carrier, service = self.config.default_carrier, self.config.default_service or ""
        if not carrier:
            raise PermanentError(f"{self.name}: order {order.get('po_number')} has no route carrier to choose a rate by")
        for choice in self.config.rates:
            if (choice.carrier.lower(), choice.service.lower()) == (carrier.lower(), service.lower()):
                carrier, service = choice.easypost_carrier, choice.easypost_service
                break
        rates = [r for r in shipment.get("rates") or [] if isinstance(r, dict)]
        for rate in rates:
            if (str(rate.get("carrier")).lower(), str(rate.get("service")).lower()) == (carrier.lower(), service.lower()):
                return rate
        offered = ", ".join(f"{r.get('carrier')} {r.get('service')}" for r in rates) or "none"
        raise PermanentError(f"{self.name}: no EasyPost rate for {carrier} {service} (offered: {offered})")

    def close(self) -> None:
        self.http.close()


def _left(tracker: dict[str, Any]) -> str | None:
    """When the parcel left: the first tracking detail in transit (an ISO timestamp), if any."""
    for detail in tracker.get("tracking_details") or []:
        if isinstance(detail, dict) and detail.get("status") == "in_transit" and isinstance(detail.get("datetime"), str):
            return str(detail["datetime"])
    return None


def _bought(shipment: Any) -> bool:
    return isinstance(shipment, dict) and bool(shipment.get("postage_label") or shipment.get("tracking_code"))

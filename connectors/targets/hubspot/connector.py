"""HubSpot target: each order becomes a deal in HubSpot CRM (v3 objects, v4 associations),
associated with the buyer's contact and carrying the order's lines as line items.

Capabilities
    idempotency_key=True   the deal is upserted by ``key_property`` (a deal property with unique
                           values holding the delivery's key): a retry after a lost answer finds
                           the same deal, never a second one, and HubSpot's search index lag
                           cannot hide it; line items are created only for a deal that has none
    idempotent=True        for the same reason a repeat of a delivery has one effect
    updates=True           a changed order replaces the deal's line items (and its amount); a
                           repeat with the same lines changes nothing
    cancels=True           the deal moves to ``cancel_stage``; already there is fine
    stock=False            a CRM holds no stock

Config keys (`HubSpotConfig`)
    name, url, auth (see connectors/targets/auth.py: bearer for a private app, or
    oauth2_client_credentials), key_property, po_property, pipeline, dealstage, cancel_stage,
    email_from (buyer, bill_to, ship_to), require_contact, timeout.connect / timeout.read /
    timeout.total, retry, verify_tls

What a create does
    1. the contact, when the order carries an e-mail: ``POST /crm/v3/objects/contacts/batch/upsert``
       with idProperty ``email`` (company = the party's name)
    2. the deal: ``POST /crm/v3/objects/deals/batch/upsert`` with idProperty = key_property,
       dealname ``PO <number>``, amount (sum of quantity × price), pipeline, dealstage,
       closedate (the order date) and po_property
    3. ``PUT /crm/v4/objects/deals/<id>/associations/default/contacts/<contact>`` (idempotent)
    4. the deal's line items (``GET /crm/v4/objects/deals/<id>/associations/line_items``); none:
       ``POST /crm/v3/objects/line_items/batch/create`` with name, hs_sku, quantity, price,
       each associated to the deal (type 20, line item to deal)
    The receipt's reference is the deal's id.

Error mapping (HubSpot answers ``{"status": "error", "message", "category", "correlationId"}``)
    HTTP 429 (RATE_LIMITS), 408, 423, 5xx TransientError (Retry-After honoured when sent)
    HTTP 401 INVALID_AUTHENTICATION,      PermanentError (token or scopes); an OAuth2 token is
      EXPIRED_AUTHENTICATION; 403           fetched again once first
      MISSING_SCOPES
    HTTP 404 OBJECT_NOT_FOUND             PermanentError (an update of a deleted deal)
    HTTP 400 VALIDATION_ERROR, 409        PermanentError with HubSpot's message (e.g. the
      CONFLICT, other 4xx                   key_property does not exist or is not unique)
    a batch answer with ``errors``        PermanentError with the first error's message
    connection errors, timeouts           TransientError (connectors/targets/rest.py)
    no contact e-mail (require_contact)   PermanentError
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import requests

from connectors.targets.hubspot.config import HubSpotConfig
from connectors.targets.rest import (
    Answer,
    RestClient,
    excerpt,
    order_lines,
    segment,
    transient_status,
)
from gateway.connector import Capabilities, Delivery, Receipt
from gateway.errors import DeliveryError, PermanentError, TransientError

__all__ = ["LINE_ITEM_TO_DEAL", "HubSpotConnector", "HubSpotError"]

LINE_ITEM_TO_DEAL = 20  # HUBSPOT_DEFINED association type id: line item -> deal
EXTRA_TRANSIENT = frozenset({423})


class HubSpotError(PermanentError):
    """HubSpot refused a call (VALIDATION_ERROR, MISSING_SCOPES, ...); never retried."""


def _deal_id(value: object) -> str:
    text = str(value or "")
    if not text.isdigit():
        raise PermanentError(f"{text!r} is not a HubSpot deal id")
    return segment(text, "deal id")


class HubSpotConnector:
    """Upserts contacts and deals, replaces line items, moves cancelled deals; see the module docstring."""

    capabilities = Capabilities(idempotency_key=True, idempotent=True, updates=True, cancels=True)

    def __init__(self, config: HubSpotConfig, session: requests.Session | None = None):
        self.config = config
        self.name = config.name
        self.client = RestClient.for_target(config, session)

    def __repr__(self) -> str:
        return f"HubSpotConnector(name={self.name!r}, url={self.client.base_url!r})"

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.client.call(method, path, body=body)
        if 200 <= answer.status < 300:
            result = answer.body if isinstance(answer.body, dict) else {}
            errors = result.get("errors") if isinstance(result, dict) else None
            if errors:  # a batch answered 207: some inputs failed
                first = errors[0] if isinstance(errors[0], dict) else {}
                raise HubSpotError(f"HubSpot {self.name} ({method} {path}) refused: "
                                   f"{excerpt(first.get('message') or first, self.client.secrets())}")
            return result
        raise self._error(method, path, answer)

    def _error(self, method: str, path: str, answer: Answer) -> DeliveryError:
        where = f"HubSpot {self.name} ({method} {path})"
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.status in EXTRA_TRANSIENT:
            return TransientError(f"{where}: HTTP {answer.status}", status=answer.status)
        failure = transient_status(answer, where)
        if failure:
            return failure
        category = str(body.get("category") or "")
        message = excerpt(body.get("message") or answer.body or "", self.client.secrets())
        hint = "; check the token and the app's scopes" if answer.status in (401, 403) else ""
        return HubSpotError(f"{where} refused: HTTP {answer.status} {category}: {message}{hint}", status=answer.status)

    def verify(self) -> str:
        """The token works and key_property exists with unique values (the upsert needs it); writes nothing."""
        self.client.start_send()
        prop = self.call("GET", f"/crm/v3/properties/deals/{segment(self.config.key_property, 'property')}")
        if not prop.get("hasUniqueValue"):
            raise PermanentError(
                f"HubSpot {self.name}: deal property {self.config.key_property!r} must have unique values "
                "(create it with hasUniqueValue: true); without it a retry could not find its deal"
            )
        return f"token accepted; deal property {self.config.key_property} has unique values"

    # -- the Connector protocol ---------------------------------------------------------------------

    def send(self, delivery: Delivery) -> Receipt:
        self.client.start_send()
        if delivery.action == "create":
            return self._create(delivery)
        if not delivery.target_reference:
            raise PermanentError(f"{delivery.action} of PO {delivery.order.get('po_number')}: no HubSpot deal id recorded")
        deal = _deal_id(delivery.target_reference)
        if delivery.action == "update":
            return self._update(delivery, deal)
        if delivery.action == "cancel":
            return self._cancel(deal)
        raise PermanentError(f"HubSpot connector {self.name} cannot {delivery.action!r}")

    def _create(self, delivery: Delivery) -> Receipt:
        order = delivery.order
        lines = self._line_items(order)
        contact = self._contact(order)
        po = str(order.get("po_number") or "")
        properties: dict[str, str] = {
            self.config.key_property: delivery.idempotency_key,
            "dealname": f"PO {po}"[:200],
            "amount": str(_amount(lines)),
            "pipeline": self.config.pipeline,
            "dealstage": self.config.dealstage,
        }
        if order.get("order_date"):
            properties["closedate"] = f"{order['order_date']}T00:00:00Z"
        if self.config.po_property:
            properties[self.config.po_property] = po
        found = self.call("POST", "/crm/v3/objects/deals/batch/upsert", {"inputs": [
            {"idProperty": self.config.key_property, "id": delivery.idempotency_key, "properties": properties}]})
        deal = _deal_id(found["results"][0]["id"])
        if contact:
            self.call("PUT", f"/crm/v4/objects/deals/{deal}/associations/default/contacts/{contact}")
        if not self._line_item_ids(deal):
            self._add_lines(deal, lines)
        return Receipt(status=200, reference=deal, detail={"contact": contact, "new": bool(found["results"][0].get("new"))})

    def _contact(self, order: dict[str, Any]) -> str | None:
        for source in self.config.email_from:
            party = order.get(source) or {}
            email = (party.get("contact") or {}).get("email")
            if email:
                properties = {"email": str(email)}
                if party.get("name"):
                    properties["company"] = str(party["name"])
                found = self.call("POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": [
                    {"idProperty": "email", "id": str(email), "properties": properties}]})
                return segment(found["results"][0]["id"], "contact id")
        if self.config.require_contact:
            raise PermanentError(f"PO {order.get('po_number')}: no contact e-mail in {', '.join(self.config.email_from)}")
        return None

    def _line_items(self, order: dict[str, Any]) -> list[dict[str, str]]:
        out = []
        for line in order_lines(order):
            price = Decimal(str(line.get("unit_price") or 0))
            out.append({"name": str(line.get("description") or line["sku"])[:200], "hs_sku": str(line["sku"]),
                        "quantity": str(Decimal(str(line["quantity"]))), "price": str(price)})
        return out

    def _line_item_ids(self, deal: str) -> list[str]:
        found = self.call("GET", f"/crm/v4/objects/deals/{deal}/associations/line_items")
        return [str(r["toObjectId"]) for r in found.get("results") or []]

    def _add_lines(self, deal: str, lines: list[dict[str, str]]) -> None:
        association = [{"to": {"id": deal}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": LINE_ITEM_TO_DEAL}]}]
        self.call("POST", "/crm/v3/objects/line_items/batch/create",
                  {"inputs": [{"properties": line, "associations": association} for line in lines]})

    # -- update and cancel --------------------------------------------------------------------------

    def _update(self, delivery: Delivery, deal: str) -> Receipt:
        lines = self._line_items(delivery.order)
        ids = self._line_item_ids(deal)
        have: list[dict[str, Any]] = []
        if ids:
            found = self.call("POST", "/crm/v3/objects/line_items/batch/read", {
                "properties": ["hs_sku", "quantity", "price"], "inputs": [{"id": i} for i in ids]})
            have = [r["properties"] for r in found.get("results") or []]

        def key(line: dict[str, Any]) -> tuple[str, Decimal, Decimal]:
            return (str(line.get("hs_sku")), Decimal(str(line.get("quantity") or 0)), Decimal(str(line.get("price") or 0)))

        if sorted(map(key, have)) != sorted(map(key, lines)):
            if ids:
                self.call("POST", "/crm/v3/objects/line_items/batch/archive", {"inputs": [{"id": i} for i in ids]})
            self._add_lines(deal, lines)
            self.call("PATCH", f"/crm/v3/objects/deals/{deal}", {"properties": {"amount": str(_amount(lines))}})
        return Receipt(status=200, reference=deal, detail={"lines": len(lines)})

    def _cancel(self, deal: str) -> Receipt:
        current = self.call("GET", f"/crm/v3/objects/deals/{deal}?properties=dealstage")
        if (current.get("properties") or {}).get("dealstage") != self.config.cancel_stage:
            self.call("PATCH", f"/crm/v3/objects/deals/{deal}", {"properties": {"dealstage": self.config.cancel_stage}})
        return Receipt(status=200, reference=deal, detail={"dealstage": self.config.cancel_stage})


def _amount(lines: list[dict[str, str]]) -> Decimal:
    return sum((Decimal(line["quantity"]) * Decimal(line["price"]) for line in lines), Decimal(0))

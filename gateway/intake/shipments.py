"""Shipments coming back by webhook (issue 11): POST /intake/shipments/{connector}.

A shipping service (ShipStation's SHIP_NOTIFY, EasyPost's tracker events) posts to the URL of
the connector that sent it the orders. One request, in this order; the first that fails
answers and nothing is recorded:

1. `connector` is configured and takes shipment webhooks
   (`Capabilities.shipment_webhooks`: its webhook_secret_env is set) ............ else 404
2. the body is at most ``max_body_bytes`` and arrives in time .................... else 413 / 408
3. the connector verifies it (`ShipmentWebhooks.shipment_events`: signature or
   token, constant time, before it reads the body) ................................ else 401
   its body is what the service sends ............................................. else 400
   the secret's environment variable is set on the gateway ......................... else 503
   the service answers when the connector must ask it (ShipStation's
   resource_url) .................................................................. else 503 / 502
4. each shipment reported is recorded on its order (`gateway.tracking.record_found`:
   shipped, tracking in the history, the partner's 856/DESADV), each in its own
   transaction, all of them before the answer ..................................... 200
   the store cannot be written in ``store_timeout_seconds`` ........................ 503 + Retry-After

The 200 says what happened to each shipment: recorded, a repeat (the same tracking number on
the same order: recorded once, the fulfilment's rule), unknown (no order this connector
took under that reference), refused (the fulfilment refused it, e.g. the order is held).
Unknown and refused shipments are logged with the reason and still answered 200: the service
would retry them forever, and a retry cannot make them known. A 503 or 502 is retried by the
service; what was recorded before it is a repeat then, so nothing is lost or doubled.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway import plugins
from gateway.connector import Connector, ShipmentEvent, ShipmentWebhooks, WebhookRequest
from gateway.errors import (
    ConfigError,
    GatewayError,
    PermanentError,
    StoreUnavailable,
    TransientError,
    WebhookRefused,
    WebhookUnauthorized,
)
from gateway.fulfilment import Fulfilment
from gateway.intake.app import RETRY_AFTER_SECONDS, _doc, _error, _Refused
from gateway.redact import printable
from gateway.store.tracking import order_taken
from gateway.tracking import record_found

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.intake.app import _Intake

log = logging.getLogger(__name__)

__all__ = ["ShipmentWebhookAnswer", "ShipmentWebhookIntake", "shipments_route"]

_SHOWN = 300  # characters of a service's text (an event's ids, a refusal) in a log line or an answer


class ShipmentWebhookAnswer(BaseModel):
    """What became of the shipments a webhook reported; each is committed before this answer."""

    events: int = Field(description="Shipments the webhook reported (0: a verified event that reports none).")
    recorded: int = Field(description="Recorded now: the order is shipped, the partner's ship notice queued.")
    repeats: int = Field(description="Recorded before (the same tracking number on the same order): nothing done again.")
    unknown: int = Field(description="Naming no order this connector took: logged with the reason, nothing recorded.")
    refused: int = Field(description="Refused by the order's state (e.g. held, not sent): logged with the reason.")


class ShipmentWebhookIntake:
    """Verifies a shipping service's webhook through its connector and records what it reports."""

    def __init__(self, gateway: Gateway, *, store_timeout: float):
        self.gateway = gateway
        self.store_timeout = store_timeout
        # One connector per name for the intake's life, built on its first webhook (building
        # reads its payload file and opens an HTTP session); requests arrive on several threads,
        # which share it as the dispatcher's threads share theirs. `close` closes them.
        self._connectors: dict[str, Connector] = {}
        self._lock = threading.Lock()
        self._closed = False

    # Read on the first webhook, not when the app is built: the admin port builds the same app
    # for its probes before (and without) a gateway configuration of connectors.
    @cached_property
    def configs(self) -> dict[str, Any]:
        return {c.name: c for c in self.gateway.config.connectors}

    @cached_property
    def fulfilment(self) -> Fulfilment:
        return Fulfilment(self.gateway.store, self.gateway.config)

    def receive(self, name: str, request: WebhookRequest, client: str) -> JSONResponse:
        """One webhook for connector `name` (blocking: runs in the thread pool)."""
        cfg = self.configs.get(name)
        if cfg is None:
            raise _Refused(404, "unknown connector")
        connector, own = self._connector(cfg)
        try:
            if not connector.capabilities.shipment_webhooks:
                raise _Refused(404, "this connector takes no shipment webhooks")
            events = self._events(name, cast("ShipmentWebhooks", connector), request, client)
        finally:
            if own:
                connector.close()
        return self._record(name, events)

    def close(self) -> None:
        """Close the connectors built so far: the intake's server stops, or a reload replaced
        this app (`gateway.intake.app.close_app`). A webhook still in flight after this gets a
        connector of its own, closed after it, so nothing is left open and nothing refused."""
        with self._lock:
            self._closed, built = True, list(self._connectors.values())
            self._connectors.clear()
        for connector in built:
            connector.close()

    def _connector(self, cfg: Any) -> tuple[Connector, bool]:
        """The connector configured as `cfg`, and whether it is the caller's to close (only
        once the intake is closed)."""
        with self._lock:
            connector = self._connectors.get(cfg.name)
            if connector is None:
                connector = plugins.build("target", cfg)
                if self._closed:
                    return connector, True
                self._connectors[cfg.name] = connector
            return connector, False

    def _events(self, name: str, connector: ShipmentWebhooks, request: WebhookRequest, client: str) -> list[ShipmentEvent]:
        try:
            return connector.shipment_events(request)
        except WebhookUnauthorized as exc:
            # An audit line, never the payload: who, where, and what kind of failure.
            log.warning("intake shipments/%s: %s; %d bytes from %s refused", name, exc, len(request.body), client)
            raise _Refused(401, "invalid signature or token") from None
        except WebhookRefused as exc:
            raise _Refused(400, printable(str(exc), _SHOWN)) from None
        except ConfigError as exc:
            log.error("intake shipments/%s: %s; answered 503, the service will retry", name, exc)
            raise _Refused(503, "the gateway cannot verify this webhook yet, retry later") from None
        except TransientError as exc:
            log.warning("intake shipments/%s: %s; answered 503, the service will retry", name, exc)
            raise _Refused(503, "the shipping service did not answer, retry later") from None
        except PermanentError as exc:
            log.error("intake shipments/%s: %s; answered 502", name, exc)
            raise _Refused(502, "the shipping service refused the gateway's request") from None

    def _record(self, name: str, events: list[ShipmentEvent]) -> JSONResponse:
        counts: Counter[str] = Counter()
        try:
            # A lock held by another writer must not keep the service waiting past its deadline.
            with self.gateway.store.lock_wait(self.store_timeout):
                for event in events:
                    counts[self._record_one(name, event)] += 1
        except StoreUnavailable as exc:
            log.error("intake shipments/%s: %s; answered 503, the service will retry", name, exc)
            raise _Refused(503, "store unavailable, retry later") from None
        answer = ShipmentWebhookAnswer(events=len(events), **{k: counts[k] for k in ("recorded", "repeats", "unknown", "refused")})
        if events:
            log.info("intake shipments/%s: %d shipment(s): %d recorded, %d repeat(s), %d unknown, %d refused",
                     name, answer.events, answer.recorded, answer.repeats, answer.unknown, answer.refused)
        return JSONResponse(answer.model_dump())

    def _record_one(self, name: str, event: ShipmentEvent) -> str:
        """Record one shipment; which count it adds to. StoreUnavailable goes up (503)."""
        about = printable(event.about, _SHOWN)
        order = order_taken(self.gateway.store, name, key=event.order_key, reference=event.reference)
        if order is None:
            log.warning("intake shipments/%s: %s: no order sent to %s has that reference; nothing recorded (answered 200: "
                        "a retry would not find one either)", name, about, name)
            return "unknown"
        order_id, po_number, state = order
        try:
            done = record_found(self.fulfilment, order_id, name, event.found, state)
        except StoreUnavailable:
            raise
        except GatewayError as exc:
            log.warning("intake shipments/%s: %s for order %s (PO %s) not recorded: %s", name, about, order_id[:8], po_number, exc)
            return "refused"
        return "recorded" if done else "repeats"


ConnectorName = Annotated[str, Path(description="The connector's name as configured under connectors.")]


def shipments_route(app: FastAPI, intake: _Intake) -> None:
    """Add POST /intake/shipments/{connector} to the intake `app`."""
    hooks = ShipmentWebhookIntake(intake.gateway, store_timeout=intake.config.store_timeout_seconds)
    app.state.shipment_webhooks = hooks

    @app.post(
        "/intake/shipments/{connector}",
        summary="Receive a shipping service's shipment webhook",
        description=__doc__,
        response_model=None,
        responses={
            200: _doc("Every shipment reported was recorded, was a repeat, or names no order we know (logged).", ShipmentWebhookAnswer),
            400: _doc("Verified, but not a body the service sends (or a resource_url elsewhere than its API)."),
            401: _doc("The signature (EasyPost) or the token (ShipStation, ?token=) is missing or wrong."),
            404: _doc("No connector of that name, or it takes no shipment webhooks (webhook_secret_env unset)."),
            408: _doc("The body did not arrive within the configured time."),
            413: _doc("The body is larger than the configured maximum."),
            502: _doc("The shipping service refused the gateway's request for the shipments (its credentials?)."),
            503: _doc("The store, the webhook secret or the service is unavailable; retry later. Nothing was recorded after the failure."),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The service's notification exactly as sent; EasyPost's signature covers these bytes.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
        tags=["webhooks"],
    )
    async def shipments(connector: ConnectorName, request: Request) -> JSONResponse:
        try:
            body = await intake.read_body(request)
            got = WebhookRequest(
                headers={k.lower(): v for k, v in request.headers.items()}, query=dict(request.query_params), body=body
            )
            client = request.client.host if request.client else "?"
            answer: JSONResponse = await run_in_threadpool(hooks.receive, connector, got, client)
            intake.count("shipment_webhook")
            return answer
        except _Refused as exc:
            if exc.status == 503:
                intake.count("rejected:503")
                return _error(503, exc.message, {"Retry-After": str(RETRY_AFTER_SECONDS)})
            return intake.refused(exc, "shipments", request)

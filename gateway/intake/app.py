"""The HTTP intake: shop webhooks in, raw bytes committed to the store, then 2xx.

    POST /intake/shopify/{store}       Shopify order webhooks (X-Shopify-Hmac-Sha256)
    POST /intake/woocommerce/{store}   WooCommerce order webhooks (X-WC-Webhook-Signature)
    POST /intake/shipments/{connector} shipping services' shipment webhooks (gateway.intake.shipments)
    GET  /health                       200 while the store answers, else 503
    GET  /metrics                      the gateway's state for Prometheus (gateway.intake.metrics)

One delivery, in this order; the first check that fails answers and nothing is stored:

1. the store is one we serve on that platform ............................ else 404
2. ``Content-Type: application/json`` .................................... else 415
3. the body is at most ``max_body_bytes`` (Content-Length first, then
   counted while reading) and arrives within ``body_timeout_seconds`` ..... else 413 / 408
4. the HMAC-SHA256 of the raw bytes matches a configured secret ........... else 401
   (checked before anything parses the body; the rejection is logged
   without the payload)
5. the topic is an order topic we use ..................................... else 200 {"ignored": topic}
   (shops disable subscriptions that fail repeatedly, so a verified
   delivery we do not need is never answered 4xx)
6. the JSON nests at most 64 deep (a bracket scan on the raw bytes; the
   real parse happens later, in the pipeline) ............................ else 400
7. `Pipeline.receive` commits the raw bytes ............................... 200 {"stored": id, "duplicate": bool}
   the store cannot be written: 503 with Retry-After, so the shop retries

Processing (parse, map, validate, queue for connectors) is not done here: the service's
processing job picks the stored message up, so the answer goes out well inside Shopify's
five seconds.

Duplicates. Shops deliver at least once, and a signed body can be replayed by anybody who
saw it, with any delivery-id header (those headers are not signed). Three layers, each
sufficient on its own for what it covers:

* A small in-memory LRU of recent (store, delivery id, body sha256) answers an exact repeat
  without touching the database. It is only a shortcut: it is per process, forgets, and a
  hit requires the very same bytes, so a guessed id can never hide a different delivery.
* `Pipeline.receive` keys messages by the sha256 of the body: the same body again, with the
  same or a fresh id, three times at once from three threads, is one message (a unique
  constraint decides races). That is what correctness rests on.
* A different body for the same order (``orders/updated`` after ``orders/create``, or
  ``orders/paid``) is a new message; the pipeline keys orders by partner (the store name)
  and PO number and compares content, so an unchanged order creates nothing and a changed
  one becomes a new version, sent to connectors as an update, never as a second order.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, Header, Path, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from gateway.connector import RawMessage
from gateway.errors import StoreUnavailable
from gateway.intake.config import IntakeConfig
from gateway.intake.signatures import verify_hmac_base64
from gateway.store.nodes import ping

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

__all__ = [
    "MAX_JSON_DEPTH",
    "SHOPIFY_TOPICS",
    "WOOCOMMERCE_TOPICS",
    "close_app",
    "create_app",
    "json_nesting_depth",
]

SHOPIFY_TOPICS = frozenset(
    {"orders/create", "orders/updated", "orders/cancelled", "orders/paid", "orders/edited"}
)
WOOCOMMERCE_TOPICS = frozenset({"order.created", "order.updated"})
MAX_JSON_DEPTH = 64
RETRY_AFTER_SECONDS = 30  # what a 503 asks for; Shopify retries on its own schedule anyway
RECENT_DELIVERIES = 4096  # entries in the in-memory repeat cache

_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")  # used with fullmatch
_DIGITS = re.compile(r"[0-9]{1,20}")  # ASCII only: str.isdigit() takes "²" too
# A JSON string; an unterminated one runs to the end, so the scan stays linear.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))


# -- answers, as documented in the OpenAPI schema -------------------------------------------


class StoredAnswer(BaseModel):
    """The delivery is committed to the store (or was already)."""

    stored: str = Field(description="Id of the stored message (of the earlier one for a repeat).")
    duplicate: bool = Field(
        description="True when these exact bytes were received before; nothing new was stored."
    )


class IgnoredAnswer(BaseModel):
    """A verified delivery on a topic the gateway does not use: accepted and dropped."""

    ignored: str = Field(description="The topic of the delivery.")


class PingAnswer(BaseModel):
    """WooCommerce's test delivery when a webhook is saved: accepted, nothing stored."""

    ping: bool = Field(True, description="Always true.")


class ErrorAnswer(BaseModel):
    """The delivery was refused; nothing was stored."""

    error: str = Field(description="What was wrong, in a few words. Never echoes the payload.")


class HealthAnswer(BaseModel):
    """Whether the intake can store deliveries now."""

    status: Literal["ok", "unavailable"] = Field(
        description="ok: the store answers; unavailable: it does not."
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Refused(Exception):
    """Ends a delivery early with an error answer."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


StoreName = Annotated[str, Path(description="The store's name as configured under intake.stores.")]


def _doc(description: str, model: Any = ErrorAnswer) -> dict[str, Any]:
    return {"description": description, "model": model}


_COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc(
        "Malformed: empty body, JSON nested deeper than 64, invalid Content-Length, or the topic header is missing."
    ),
    401: _doc(
        "The signature is missing or does not match (checked on the raw body with every configured secret)."
    ),
    404: _doc("No store of this platform is configured under that name."),
    408: _doc("The body did not arrive within the configured time."),
    413: _doc("The body is larger than the configured maximum."),
    415: _doc("The body is not application/json."),
    503: _doc(
        "The store cannot be written right now; retry later (Retry-After is set). Nothing was stored."
    ),
}

_JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The webhook payload exactly as the shop sent it; the signature covers these bytes.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


# -- helpers ---------------------------------------------------------------------------------


def json_nesting_depth(body: bytes) -> int:
    """How deep the brackets of a JSON text nest, ignoring brackets inside strings.

    A cheap linear scan of the raw bytes, not a parse: it does not check that the JSON is
    valid (the pipeline's parser does), it only bounds what that parser will be given.
    """
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _shown(value: str | None, limit: int = 64) -> str:
    """An untrusted value made safe for a log line."""
    return repr((value or "")[:limit])


@dataclass(frozen=True, slots=True)
class _Shop:
    name: str
    platform: str
    secrets: tuple[bytes, ...]


class _RecentDeliveries:
    """A bounded LRU: (store, delivery id, body sha256) -> message id. Thread-safe."""

    def __init__(self, size: int = RECENT_DELIVERIES):
        self._size = size
        self._items: OrderedDict[tuple[str, str, str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str, str]) -> str | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, str, str, str], message_id: str) -> None:
        with self._lock:
            self._items[key] = message_id
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class _Intake:
    """What the endpoints share: the gateway, the limits, the shops and the repeat cache."""

    def __init__(self, gateway: Gateway, config: IntakeConfig):
        self.gateway = gateway
        self.config = config
        self.shops: dict[tuple[str, str], _Shop] = {
            (s.platform, s.name): _Shop(
                s.name, s.platform, tuple(x.get_secret_value().encode("utf-8") for x in s.secrets)
            )
            for s in config.stores
        }
        self.recent = _RecentDeliveries()
        # accepted, duplicate, ignored, ping, rejected:<status>
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    def count(self, what: str) -> None:
        with self._stats_lock:
            self.stats[what] += 1

    def shop(self, platform: str, name: str) -> _Shop:
        found = self.shops.get((platform, name))
        if found is None:
            raise _Refused(404, "unknown store")
        return found

    async def read_body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not _DIGITS.fullmatch(declared.strip()):
                raise _Refused(400, "invalid Content-Length")
            if int(declared) > limit:
                raise _Refused(413, f"body larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.config.body_timeout_seconds):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise _Refused(413, f"body larger than {limit} bytes")
                    chunks.append(chunk)
        except TimeoutError:
            raise _Refused(408, "the body did not arrive in time") from None
        except ClientDisconnect:
            raise _Refused(400, "the client went away") from None
        return b"".join(chunks)

    def verify(self, shop: _Shop, body: bytes, signature: str | None, request: Request) -> None:
        if not verify_hmac_base64(body, signature, shop.secrets):
            # An audit line, never the payload: who, where, and what kind of failure.
            log.warning(
                "intake %s/%s: signature %s from %s; %d bytes refused",
                shop.platform,
                shop.name,
                "missing" if not signature else "does not match",
                _client(request),
                len(body),
            )
            raise _Refused(401, "invalid signature")

    def store(self, shop: _Shop, body: bytes, topic: str, delivery_id: str | None) -> JSONResponse:
        """Depth check, repeat cache, commit. Blocking: runs in the thread pool."""
        if not body.strip():
            raise _Refused(400, "empty body")
        if json_nesting_depth(body) > MAX_JSON_DEPTH:
            raise _Refused(400, f"JSON nested deeper than {MAX_JSON_DEPTH}")
        sha = hashlib.sha256(body).hexdigest()
        ident = (
            delivery_id
            if delivery_id and _DELIVERY_ID.fullmatch(delivery_id)
            else f"sha256-{sha[:32]}"
        )
        key = (shop.platform, shop.name, ident, sha)
        known = self.recent.get(key)
        if known is not None:
            self.count("duplicate")
            return JSONResponse({"stored": known, "duplicate": True})
        raw = RawMessage(
            body=body,
            source=f"{shop.platform}:{shop.name}",
            source_ref=f"{shop.platform}:{shop.name}:{ident}",
            # The pipeline keeps only what follows the last "/" of a display name.
            display_name=f"{topic.replace('/', '.')} {ident}",
        )
        try:
            # A lock held by another writer must not keep the shop waiting past its 5 s (F5).
            with self.gateway.store.lock_wait(self.config.store_timeout_seconds):
                result = self.gateway.pipeline.receive(raw, format=shop.platform, partner=shop.name)
        except StoreUnavailable as exc:
            log.error(
                "intake %s/%s: %s; answered 503, the shop will retry", shop.platform, shop.name, exc
            )
            self.count("rejected:503")
            return _error(
                503, "store unavailable, retry later", {"Retry-After": str(RETRY_AFTER_SECONDS)}
            )
        self.recent.put(key, result.message_id)
        self.count("duplicate" if result.duplicate else "accepted")
        log.info(
            "intake %s/%s: %s %s stored as %s%s",
            shop.platform,
            shop.name,
            topic,
            ident,
            result.message_id,
            " (duplicate)" if result.duplicate else "",
        )
        return JSONResponse({"stored": result.message_id, "duplicate": result.duplicate})

    def refused(self, exc: _Refused, platform: str, request: Request) -> JSONResponse:
        self.count(f"rejected:{exc.status}")
        if exc.status != 401:  # 401s were logged where they were decided
            log.info(
                "intake %s: %s from %s: %s", platform, exc.status, _client(request), exc.message
            )
        return _error(exc.status, exc.message)

    def ignored(self, shop: _Shop, topic: str) -> JSONResponse:
        self.count("ignored")
        log.info("intake %s/%s: topic %s ignored", shop.platform, shop.name, _shown(topic))
        return JSONResponse({"ignored": topic[:200]})

    def health(self) -> bool:
        problem = ping(self.gateway.store)
        if problem is not None:
            log.error("health: the store does not answer: %s", problem)
            return False
        return True


# -- the application -------------------------------------------------------------------------

DOCS_ASSETS = "/docs-assets"


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from files shipped in a package, so it works without internet.

    The `fastapi-offline` package ships the Swagger UI 5 bundle (Apache-2.0) and FastAPI's
    favicon; only its static files are used. FastAPI's default page loads them from a CDN,
    which a gateway on a closed network cannot reach: the page stayed blank.
    """
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    static = files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(static)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - docs",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
        )



def create_app(gateway: Gateway, config: IntakeConfig | None = None) -> FastAPI:
    """The intake as an ASGI application. `config` defaults to ``gateway.config.intake``."""
    cfg = (
        config if config is not None else getattr(gateway.config, "intake", None) or IntakeConfig()
    )
    intake = _Intake(gateway, cfg)
    app = FastAPI(
        title="Order gateway intake",
        summary="Shop order webhooks in; each is stored durably before it is acknowledged.",
        description=__doc__,
        version="1",
        redoc_url=None,
        docs_url=None,  # served below from local files: no CDN (issue 14 #10)
    )
    app.state.intake = intake
    _serve_docs(app)
    from gateway.intake.forms import forms_router

    app.include_router(forms_router(gateway, cfg.forms, store_timeout=cfg.store_timeout_seconds))
    _shopify_route(app, intake)
    _woocommerce_route(app, intake)
    from gateway.intake.shipments import shipments_route

    shipments_route(app, intake)
    _health_route(app, intake)
    from gateway.intake.metrics import metrics_router

    app.include_router(metrics_router(gateway, lambda: _counts(intake)))
    if cfg.operator_api is not None:
        from gateway.intake.operator_api import mount_operator_api

        mount_operator_api(app, gateway, cfg.operator_api)
    if cfg.console is not None:
        from gateway.console import mount_console

        mount_console(app, gateway, cfg.console)
    if cfg.as2 is not None:
        from gateway.as2.http import mount_as2

        mount_as2(
            app, gateway, cfg.as2, store_timeout=cfg.store_timeout_seconds, read_body=intake.read_body,
            refused=lambda exc, request: intake.refused(exc, "as2", request), refusal=_Refused, count=intake.count,
        )
    _openapi_without_422(app)
    return app


def close_app(app: FastAPI) -> None:
    """Close what an app of `create_app` holds open: the connectors its shipment webhooks
    built. Its server calls this when it stops or replaces the app (`IntakeServer`): uvicorn
    runs it with lifespan off, so no shutdown hook of the app would run."""
    hooks = getattr(app.state, "shipment_webhooks", None)  # an admin app has none
    if hooks is not None:
        hooks.close()


def _counts(intake: _Intake) -> dict[str, int]:
    with intake._stats_lock:
        return dict(intake.stats)


def _shopify_route(app: FastAPI, intake: _Intake) -> None:
    @app.post(
        "/intake/shopify/{store}",
        summary="Receive a Shopify order webhook",
        description=(
            "Verifies `X-Shopify-Hmac-Sha256` (base64 HMAC-SHA256 of the raw body, current or previous "
            "secret) before anything parses the body, then commits the raw bytes and answers 200. Topics "
            f"used: {', '.join(sorted(SHOPIFY_TOPICS))}; other verified topics get 200 `ignored`. The same "
            "body again, with the same or a fresh `X-Shopify-Webhook-Id`, is a no-op (`duplicate: true`)."
        ),
        response_model=None,
        responses={
            200: _doc(
                "Stored (or a repeat of a stored delivery), or a topic we do not use.",
                StoredAnswer | IgnoredAnswer,
            ),
            **_COMMON_RESPONSES,
        },
        openapi_extra=_JSON_BODY,
        tags=["webhooks"],
    )
    async def shopify(
        store: StoreName,
        request: Request,
        x_shopify_hmac_sha256: Annotated[
            str | None, Header(description="Base64 HMAC-SHA256 of the raw body.")
        ] = None,
        x_shopify_topic: Annotated[
            str | None, Header(description="The event, e.g. orders/create.")
        ] = None,
        x_shopify_webhook_id: Annotated[
            str | None, Header(description="Id of this delivery (repeats keep it).")
        ] = None,
        x_shopify_event_id: Annotated[
            str | None, Header(description="Id of the event (used when the webhook id is absent).")
        ] = None,
    ) -> JSONResponse:
        try:
            shop = intake.shop("shopify", store)
            if _media_type(request) != "application/json":
                raise _Refused(415, "expected application/json")
            body = await intake.read_body(request)
            intake.verify(shop, body, x_shopify_hmac_sha256, request)
            if not x_shopify_topic:
                raise _Refused(400, "X-Shopify-Topic is missing")
            if x_shopify_topic not in SHOPIFY_TOPICS:
                return intake.ignored(shop, x_shopify_topic)
            return await run_in_threadpool(
                intake.store,
                shop,
                body,
                x_shopify_topic,
                x_shopify_webhook_id or x_shopify_event_id,
            )
        except _Refused as exc:
            return intake.refused(exc, "shopify", request)


def _woocommerce_route(app: FastAPI, intake: _Intake) -> None:
    @app.post(
        "/intake/woocommerce/{store}",
        summary="Receive a WooCommerce order webhook",
        description=(
            "Verifies `X-WC-Webhook-Signature` (base64 HMAC-SHA256 of the raw body) before anything parses "
            "the body, then commits the raw bytes and answers 200. Topics used: "
            f"{', '.join(sorted(WOOCOMMERCE_TOPICS))}; other verified topics get 200 `ignored`. The ping "
            "WooCommerce sends when a webhook is saved (form-encoded `webhook_id=...`, no signature, no "
            "topic) gets 200 `ping` and stores nothing."
        ),
        response_model=None,
        responses={
            200: _doc(
                "Stored (or a repeat), a topic we do not use, or the ping.",
                StoredAnswer | IgnoredAnswer | PingAnswer,
            ),
            **_COMMON_RESPONSES,
        },
        openapi_extra=_JSON_BODY,
        tags=["webhooks"],
    )
    async def woocommerce(
        store: StoreName,
        request: Request,
        x_wc_webhook_signature: Annotated[
            str | None, Header(description="Base64 HMAC-SHA256 of the raw body.")
        ] = None,
        x_wc_webhook_topic: Annotated[
            str | None, Header(description="The event, e.g. order.created.")
        ] = None,
        x_wc_webhook_delivery_id: Annotated[
            str | None, Header(description="Id of this delivery.")
        ] = None,
        x_wc_webhook_id: Annotated[
            str | None,
            Header(description="Id of the webhook (used when the delivery id is absent)."),
        ] = None,
    ) -> JSONResponse:
        try:
            shop = intake.shop("woocommerce", store)
            media = _media_type(request)
            if not x_wc_webhook_topic or (
                not x_wc_webhook_signature and media == "application/x-www-form-urlencoded"
            ):
                body = await intake.read_body(request)  # bounded like any body, then dropped
                intake.count("ping")
                log.info(
                    "intake woocommerce/%s: ping (%d bytes) from %s; nothing stored",
                    shop.name,
                    len(body),
                    _client(request),
                )
                return JSONResponse({"ping": True})
            if media != "application/json":
                raise _Refused(415, "expected application/json")
            body = await intake.read_body(request)
            intake.verify(shop, body, x_wc_webhook_signature, request)
            if x_wc_webhook_topic not in WOOCOMMERCE_TOPICS:
                return intake.ignored(shop, x_wc_webhook_topic)
            return await run_in_threadpool(
                intake.store,
                shop,
                body,
                x_wc_webhook_topic,
                x_wc_webhook_delivery_id or x_wc_webhook_id,
            )
        except _Refused as exc:
            return intake.refused(exc, "woocommerce", request)


def _health_route(app: FastAPI, intake: _Intake) -> None:
    @app.get(
        "/health",
        summary="Is the intake able to store deliveries?",
        description="Runs `SELECT 1` on the store: 200 `ok` when it answers, 503 `unavailable` when it does not.",
        response_model=None,
        responses={
            200: _doc("The store answers.", HealthAnswer),
            503: _doc("The store does not answer.", HealthAnswer),
        },
        tags=["operations"],
    )
    async def health() -> JSONResponse:
        if await run_in_threadpool(intake.health):
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status_code=503)


def _openapi_without_422(app: FastAPI) -> None:
    """The schema without FastAPI's generic 422: path and header parameters are plain
    strings, so it never happens (the forms' own 422, a message per field, stays)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            for path, item in schema.get("paths", {}).items():
                if path.startswith("/intake/forms/"):
                    continue  # forms do answer 422, with a message per field
                for operation in item.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

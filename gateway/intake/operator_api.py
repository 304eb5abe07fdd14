"""The operators' HTTP API: the exception queue and a person's decisions, over HTTP.

Mounted on the intake app only when configured (``intake.operator_api: {token_env: NAME}``);
every request carries ``Authorization: Bearer <token>``, the token read from the environment
variable NAME at start-up and compared in constant time (``hmac.compare_digest``).

    GET  /api/exceptions                 held and quarantined orders, oldest first
                                         (?partner=, ?reason= prefix, ?limit=)
    GET  /api/orders/{id}                one order: state, reasons, rule findings, history
    POST /api/orders/{id}/approve        {"by": NAME}
    POST /api/orders/{id}/reject         {"by": NAME, "reason": TEXT}
    POST /api/orders/{id}/edit           {"by": NAME, "set": {"lines[1].quantity": "10", ...}}
    POST /api/orders/{id}/release        {"by": NAME, "override": false}
    POST /api/orders/{id}/assign         {"by": NAME, "to": PERSON, "team": null}
    POST /api/orders/{id}/shipment       {"by": NAME, "carrier": "UPS", "tracking": ["1Z..."],
                                          "service": null, "lines": {"SKU": QTY}, "ship_date": null}
    POST /api/orders/{id}/invoice        {"by": NAME, "number": "INV-1", "date": null, "tax": null,
                                          "freight": null, "total": null, "currency": null, "lines": {}}

The last two (`gateway.fulfilment`) also take a PO number as `{id}`: the order becomes
shipped / invoiced and the partner gets its 856/DESADV or 810/INVOIC where it wants one.

    GET  /api/dead-letters               dead deliveries of orders with their attempts, oldest
                                         first (?connector=, ?partner=, ?error= substring,
                                         ?since=, ?until= ISO 8601, ?order= id prefix, ?po=, ?part=
                                         a split order's part, ?limit=)
    POST /api/dead-letters/{id}/replay   {"by": NAME}
    POST /api/dead-letters/{id}/discard  {"by": NAME, "reason": TEXT}
    POST /api/dead-letters/{id}/edit     {"by": NAME, "set": {"lines[1].sku": "A-1", ...}}
    POST /api/dead-letters/replay        {"by": NAME, "connector": ..., "partner": ..., "error": ...,
                                         "since": ..., "until": ..., "order": ..., "po": ...,
                                         "part": ..., "dry_run": false}: every dead letter the filter matches

`{id}` is an order id or its first characters (at least 6), as `gateway exceptions` shows
them; for a dead letter it is its number, as `gateway dead-letters` shows it. Each action calls the same core function as the CLI (`Review.approve` / `reject`,
`ExceptionQueue.edit` / `release`, `Notifier.assign`): the order's history records who did it and when, and
the partner's 855/ORDRSP follows the decision. Errors are JSON, ``{"error": what went
wrong and what to do}``:

    401  no or a wrong bearer token
    400  the body is not what the action needs (the message names the field)
    404  no order (or no dead letter) has that id
    409  the order is not in a state the action applies to (e.g. approving a rejected order)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from gateway.errors import GatewayError
from gateway.intake.config import OperatorApiConfig

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["OperatorApiConfig", "mount_operator_api"]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(
        min_length=1, max_length=100, description="Who decides (recorded in the order's history)."
    )


class Approve(_Action):
    """Send a held order on to its connectors."""


class Reject(_Action):
    """Refuse a held order for good."""

    reason: str = Field(
        min_length=1,
        max_length=2000,
        description="Why it is refused (recorded; the partner may be told).",
    )


class Edit(_Action):
    """Correct fields of a held or refused order; the correction is a new version."""

    set: dict[str, str] = Field(
        min_length=1,
        description="PATH -> VALUE, paths of the canonical order (`gateway schema`), e.g. "
        '{"lines[2].quantity": "10", "ship_to.postal_code": "30301"}.',
    )


class Release(_Action):
    """Check a refused order again after its cause was fixed."""

    override: bool = Field(
        False, description="Accept it even though the check that refused it still fails."
    )


class Assign(_Action):
    """Give a waiting order to a person, and to a team when given."""

    to: str = Field(min_length=1, max_length=100, description="The person who takes the order.")
    team: str | None = Field(None, max_length=63, description="Move it to this team too (a name from exceptions.teams).")


class DeadDiscard(_Action):
    """Give up on a dead letter for good: never sent; the order's state says so."""

    reason: str = Field(min_length=1, max_length=2000, description="Why it never goes (recorded).")


class DeadReplayFilter(_Action):
    """Replay every dead letter a filter matches (at least one field besides `by`)."""

    connector: str | None = Field(None, max_length=100, description="Only deliveries to this connector.")
    partner: str | None = Field(None, max_length=100, description="Only orders of this partner.")
    error: str | None = Field(None, max_length=200, description="Only deliveries whose last error contains this text.")
    since: dt.datetime | None = Field(None, description="Only deliveries that died at or after this time (UTC unless it says).")
    until: dt.datetime | None = Field(None, description="Only deliveries that died before this time.")
    order: str | None = Field(None, min_length=6, max_length=64, description="Only this order's (id or first 6+ characters).")
    po: str | None = Field(None, max_length=100, description="Only orders with this PO number.")
    part: int | None = Field(None, ge=0, description="Only this part of split orders (0: whole-order deliveries).")
    dry_run: bool = Field(False, description="Only list what matches; queue nothing.")


DeadId = Annotated[int, Path(ge=1, description="Dead-letter id, as `gateway dead-letters` shows it.")]

class ShipmentBody(_Action):
    """A shipment of the order (gateway.fulfilment.Shipment)."""

    carrier: str = Field(min_length=1, max_length=60, description="The carrier (a SCAC such as UPSN, or a name).")
    tracking: list[str] = Field(default_factory=list, max_length=100, description="Tracking numbers, one per package.")
    service: str | None = Field(None, max_length=60, description="The service level (GROUND, 2DAY, ...).")
    lines: dict[str, Decimal] = Field(default_factory=dict, description="SKU -> quantity shipped; empty: every line in full.")
    ship_date: dt.date | None = Field(None, description="Ship date (default: today).")


class InvoiceBody(_Action):
    """An invoice of the order (gateway.fulfilment.Invoice)."""

    number: str = Field(min_length=1, max_length=60, description="The invoice number.")
    date: dt.date | None = Field(None, description="Invoice date (default: today).")
    tax: Decimal | None = Field(None, description="Tax amount.")
    freight: Decimal | None = Field(None, description="Freight charged.")
    total: Decimal | None = Field(None, description="Invoice total (default: lines + tax + freight).")
    currency: str | None = Field(None, min_length=3, max_length=3, description="ISO 4217 code (default: the order's).")
    lines: dict[str, Decimal] = Field(default_factory=dict, description="SKU -> quantity invoiced; empty: every line in full.")


OrderId = Annotated[
    str,
    Path(min_length=6, max_length=64, description="Order id or its first characters (at least 6)."),
]


def mount_operator_api(app: FastAPI, gateway: Gateway, config: OperatorApiConfig) -> None:
    """Add the /api routes to `app` (ConfigError when the token is not set)."""
    token = config.token()
    app.include_router(_router(gateway, token))

    async def invalid(request: Request, exc: Exception) -> Any:
        if not request.url.path.startswith("/api/") or not isinstance(exc, RequestValidationError):
            return await request_validation_exception_handler(request, exc)  # type: ignore[arg-type]
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return _error(
            400, f"the request body is not what this action needs: {problems} (see /docs)"
        )

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(_Unauthorized, _unauthorized)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _refused(exc: GatewayError) -> JSONResponse:
    text = str(exc)
    if text.startswith("no order has an id") or text.startswith("give at least"):
        return _error(404, f"{text} (over HTTP: GET /api/exceptions lists the orders waiting)")
    if text.startswith("no dead letter"):
        return _error(404, f"{text} (over HTTP: GET /api/dead-letters)")
    return _error(409, text)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or a wrong bearer token."},
    400: {"description": "The body is not what the action needs; `error` names the field."},
    404: {"description": "No order has that id."},
    409: {
        "description": "The order is not in a state the action applies to; `error` says what to do instead."
    },
}


def _router(gateway: Gateway, token: bytes) -> APIRouter:
    def authorized(
        authorization: Annotated[str | None, Header(description="Bearer <token>")] = None,
    ) -> None:
        given = (authorization or "").removeprefix("Bearer ").strip().encode()
        if not hmac.compare_digest(given, token):
            raise _Unauthorized

    router = APIRouter(
        prefix="/api", tags=["operators"], dependencies=[Depends(authorized)], responses=_RESPONSES
    )
    pipeline = gateway.pipeline

    @router.get("/exceptions", summary="Orders waiting for a person or refused, oldest first")
    async def exceptions(
        partner: Annotated[
            str | None, Query(max_length=100, description="Only this partner's orders.")
        ] = None,
        reason: Annotated[
            str | None,
            Query(max_length=60, description="Only reasons starting with this (e.g. VALIDATION)."),
        ] = None,
        team: Annotated[
            str | None, Query(max_length=63, description="Only orders assigned to this team.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        rows = await run_in_threadpool(
            pipeline.exceptions.waiting, limit=limit, partner=partner, reason=reason, team=team
        )
        return JSONResponse({"orders": [_plain(r) for r in rows]})

    @router.get(
        "/orders/{order_id}", summary="One order with its reasons, rule findings and history"
    )
    async def order(order_id: OrderId) -> JSONResponse:
        from gateway.store.assignments import for_order as assignment_of
        from gateway.store.findings import for_order
        from gateway.store.queries import order_detail

        def read() -> dict[str, Any]:
            detail = order_detail(gateway.store, order_id)
            decided, findings = for_order(gateway.store, detail.order["id"])
            keep = (
                "id",
                "po_number",
                "partner",
                "channel",
                "state",
                "reason",
                "error",
                "version",
                "supersedes",
                "created_at",
                "updated_at",
                "data",
            )
            return {
                "order": _plain({k: detail.order.get(k) for k in keep}),
                "versions": [
                    _plain({k: v.get(k) for k in ("id", "version", "state", "purpose")})
                    for v in detail.versions
                ],
                "decision": _plain(decided) if decided else None,
                "assignment": _plain(assigned) if (assigned := assignment_of(gateway.store, detail.order["id"])) else None,
                "findings": [_plain(f) for f in findings],
                # One per connector, or per connector and part of a split order (gateway.parts).
                "deliveries": [_plain(dict(d)) for d in detail.deliveries],
                "history": [_plain(dict(h)) for h in detail.history],
            }

        try:
            return JSONResponse(await run_in_threadpool(read))
        except GatewayError as exc:
            return _refused(exc)

    @router.post("/orders/{order_id}/approve", summary="Approve a held order: it is sent on")
    async def approve(order_id: OrderId, body: Approve) -> JSONResponse:
        return await _act(
            lambda: {"id": pipeline.approve(order_id, by=body.by), "state": "validated"}
        )

    @router.post("/orders/{order_id}/reject", summary="Reject a held order: it is never sent")
    async def reject(order_id: OrderId, body: Reject) -> JSONResponse:
        return await _act(
            lambda: {
                "id": pipeline.reject(order_id, body.reason, by=body.by),
                "state": "quarantined",
            }
        )

    @router.post(
        "/orders/{order_id}/edit", summary="Correct a held or refused order as a new version"
    )
    async def edit(order_id: OrderId, body: Edit) -> JSONResponse:
        def run() -> dict[str, Any]:
            done = pipeline.exceptions.edit(order_id, list(body.set.items()), by=body.by)
            return {
                "id": done.order_id,
                "version": done.version,
                "state": done.state,
                "reason": done.reason,
                "error": done.error,
                "changes": done.changes,
            }

        return await _act(run)

    @router.post(
        "/orders/{order_id}/release",
        summary="Check a refused order again (after its cause was fixed)",
    )
    async def release(order_id: OrderId, body: Release) -> JSONResponse:
        def run() -> dict[str, Any]:
            row = pipeline.exceptions.release(order_id, by=body.by, override=body.override)
            return {
                "id": row["id"],
                "state": row["state"],
                "reason": row["reason"],
                "error": row["error"],
            }

        return await _act(run)

    @router.post("/orders/{order_id}/assign", summary="Give a waiting order to a person (and a team)")
    async def assign(order_id: OrderId, body: Assign) -> JSONResponse:
        return await _act(lambda: gateway.notifier.assign(order_id, to=body.to, by=body.by, team=body.team))

    @router.post("/orders/{order_id}/shipment", summary="Record a shipment: the order is shipped, the partner gets its 856/DESADV")
    async def shipment(order_id: OrderId, body: ShipmentBody) -> JSONResponse:
        from gateway.fulfilment import Fulfilment, Shipment, ShippedLine

        fact = Shipment(
            carrier=body.carrier, tracking=tuple(body.tracking), service=body.service,
            lines=tuple(ShippedLine(k, v) for k, v in body.lines.items()), ship_date=body.ship_date,
        )
        return await _act(lambda: _recorded(Fulfilment(gateway.store, gateway.config).record_shipment(order_id, fact, by=body.by)))

    @router.post("/orders/{order_id}/invoice", summary="Record an invoice: the order is invoiced, the partner gets its 810/INVOIC")
    async def invoice(order_id: OrderId, body: InvoiceBody) -> JSONResponse:
        from gateway.fulfilment import Fulfilment, Invoice, ShippedLine

        fact = Invoice(
            number=body.number, date=body.date, tax=body.tax, freight=body.freight, total=body.total, currency=body.currency,
            lines=tuple(ShippedLine(k, v) for k, v in body.lines.items()),
        )
        return await _act(lambda: _recorded(Fulfilment(gateway.store, gateway.config).record_invoice(order_id, fact, by=body.by)))

    _dead_letter_routes(router, gateway)
    return router


def _recorded(done: Any) -> dict[str, Any]:
    return {"id": done.order_id, "po_number": done.po_number, "state": done.state, "documents": done.documents, "repeat": done.repeat}


def _dead_letter_routes(router: APIRouter, gateway: Gateway) -> None:
    """The dead-letter actions (gateway.store.dead_letters, gateway.processing.dead_letters),
    the same functions `gateway dead-letters` and `gateway replay` call."""
    from gateway.processing.dead_letters import DeadLetters
    from gateway.store import dead_letters as repo

    dead = DeadLetters(gateway.store, gateway.pipeline.exceptions)

    def listed(rows: list[repo.DeadLetter], context: dict[int, list[repo.Attempt]]) -> list[dict[str, Any]]:
        return [
            _plain({**dataclasses.asdict(r), "attempt_log": [_plain(dataclasses.asdict(a)) for a in context.get(r.outbox_id, [])]})
            for r in rows
        ]

    @router.get("/dead-letters", summary="Dead deliveries of orders with their attempts, oldest first")
    async def dead_letters(
        connector: Annotated[str | None, Query(max_length=100, description="Only deliveries to this connector.")] = None,
        partner: Annotated[str | None, Query(max_length=100, description="Only orders of this partner.")] = None,
        error: Annotated[str | None, Query(max_length=200, description="Only last errors containing this text.")] = None,
        since: Annotated[dt.datetime | None, Query(description="Died at or after (ISO 8601).")] = None,
        until: Annotated[dt.datetime | None, Query(description="Died before (ISO 8601).")] = None,
        order: Annotated[str | None, Query(min_length=6, max_length=64, description="Order id or its first characters.")] = None,
        po: Annotated[str | None, Query(max_length=100, description="PO number.")] = None,
        part: Annotated[int | None, Query(ge=0, description="A split order's part (0: whole-order deliveries).")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        which = repo.DeadFilter(connector, partner, error, _aware(since), _aware(until), order, po, part)

        def read() -> dict[str, Any]:
            rows = repo.list_dead(gateway.store, which, limit=limit)
            return {"dead_letters": listed(rows, repo.attempts_of(gateway.store, [r.outbox_id for r in rows]))}

        return await _act(read)

    @router.post("/dead-letters/replay", summary="Replay every dead letter a filter matches")
    async def replay_matching(body: DeadReplayFilter) -> JSONResponse:
        which = repo.DeadFilter(body.connector, body.partner, body.error, _aware(body.since), _aware(body.until), body.order, body.po, body.part)
        if which.is_empty():
            return _error(400, "give a filter (connector, partner, error, since, until, order or po); `gateway replay --all` replays everything")

        def run() -> dict[str, Any]:
            ids = [r.outbox_id for r in repo.list_dead(gateway.store, which)]
            queued = 0 if body.dry_run else repo.replay(gateway.store, ids, by=body.by)
            return {"matched": ids, "queued": queued}

        return await _act(run)

    @router.post("/dead-letters/{dead_id}/replay", summary="Queue one dead letter again")
    async def replay_one(dead_id: DeadId, body: Approve) -> JSONResponse:
        def run() -> dict[str, Any]:
            order_id = dead.order_of(dead_id)
            return {"id": dead_id, "order_id": order_id, "queued": repo.replay(gateway.store, [dead_id], by=body.by)}

        return await _act(run)

    @router.post("/dead-letters/{dead_id}/discard", summary="Discard a dead letter: it is never sent")
    async def discard_one(dead_id: DeadId, body: DeadDiscard) -> JSONResponse:
        def run() -> dict[str, Any]:
            order_id = dead.order_of(dead_id)
            return {"id": dead_id, "order_id": order_id, "discarded": repo.discard(gateway.store, [dead_id], reason=body.reason, by=body.by)}

        return await _act(run)

    @router.post("/dead-letters/{dead_id}/edit", summary="Correct a dead letter's order and send the new version where it died")
    async def edit_one(dead_id: DeadId, body: Edit) -> JSONResponse:
        def run() -> dict[str, Any]:
            done = dead.edit(dead_id, list(body.set.items()), by=body.by)
            return dataclasses.asdict(done)

        return await _act(run)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """A time as given over HTTP: UTC unless it says otherwise."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


async def _act(run: Any) -> JSONResponse:
    try:
        return JSONResponse(await run_in_threadpool(run))
    except GatewayError as exc:
        return _refused(exc)


class _Unauthorized(Exception):
    pass


async def _unauthorized(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {
            "error": "send Authorization: Bearer <token> (the value of the environment variable that intake.operator_api.token_env names)"
        },
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}

"""`GET /metrics`: the gateway's state for Prometheus (text exposition format 0.0.4).

Every figure is counted by the database on each scrape (one connection, a handful of
GROUP BY queries), so any node answers for the whole store and nothing drifts between nodes:

    gateway_messages{state}                        stored messages by state
    gateway_orders{state}                          orders by state
    gateway_outbox{kind,connector,state}           deliveries and documents by state
    gateway_outbox_oldest_due_seconds              how long the oldest due delivery has waited
    gateway_exceptions{state,reason}               held and quarantined orders by reason code
    gateway_documents_overdue                      documents sent and not acknowledged by the partner in time
    gateway_intake_requests_total{outcome}         this node's intake answers since it started
    gateway_up                                     1 when the store answered, else 0 (then 503)

Alert on `gateway_outbox_oldest_due_seconds` (work is not leaving), on
`gateway_outbox{state="dead"}` and `gateway_exceptions` growing, on `gateway_documents_overdue > 0`
(a partner did not acknowledge what we sent within its acks.expect_within_minutes), and on `gateway_up == 0`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

__all__ = ["exposition", "health_router", "metrics_router"]

log = logging.getLogger(__name__)

_HELP = {
    "gateway_messages": "Stored messages by state.",
    "gateway_orders": "Orders by state.",
    "gateway_outbox": "Outbox rows (order deliveries and documents) by kind, connector and state.",
    "gateway_outbox_oldest_due_seconds": "Seconds the oldest due outbox row has waited.",
    "gateway_exceptions": "Held and quarantined orders by state and reason code.",
    "gateway_documents_overdue": "Documents sent and not acknowledged by the partner within its acks.expect_within_minutes.",
    "gateway_intake_requests_total": "Intake answers of this node since it started, by outcome.",
    "gateway_up": "1 when the store answered the scrape.",
}
_COUNTERS = {"gateway_intake_requests_total"}


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, samples: Iterable[tuple[dict[str, Any], float]]) -> list[str]:
    lines = [f"# HELP {name} {_HELP[name]}", f"# TYPE {name} {'counter' if name in _COUNTERS else 'gauge'}"]
    for labels, value in samples:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")
    return lines


def exposition(snapshot: dict[str, Any] | None, requests: dict[str, int]) -> str:
    """The text a scrape gets: the store's snapshot (None: the store did not answer)."""
    lines: list[str] = []
    if snapshot is not None:
        lines += _family("gateway_messages", (({"state": s}, n) for s, n in sorted(snapshot["messages"].items())))
        lines += _family("gateway_orders", (({"state": s}, n) for s, n in sorted(snapshot["orders"].items())))
        lines += _family(
            "gateway_outbox", (({"kind": k, "connector": c, "state": s}, n) for k, c, s, n in sorted(snapshot["outbox"]))
        )
        lines += _family("gateway_outbox_oldest_due_seconds", [({}, round(snapshot["oldest_due_seconds"], 3))])
        lines += _family("gateway_exceptions", (({"state": s, "reason": r or "none"}, n) for s, r, n in sorted(snapshot["exceptions"])))
        lines += _family("gateway_documents_overdue", [({}, snapshot.get("documents_overdue", 0))])
    lines += _family("gateway_intake_requests_total", (({"outcome": k}, n) for k, n in sorted(requests.items())))
    lines += _family("gateway_up", [({}, 1 if snapshot is not None else 0)])
    return "\n".join(lines) + "\n"


def metrics_router(gateway: Any, requests: Any) -> APIRouter:
    """`requests()` returns this node's intake counters (outcome -> count)."""
    router = APIRouter()

    def snapshot() -> dict[str, Any] | None:
        from gateway.store.documents import count_overdue
        from gateway.store.queries import metrics_snapshot

        try:
            with gateway.store.engine.connect() as conn:
                snap = metrics_snapshot(conn, gateway.store.db_now(conn))
                snap["documents_overdue"] = count_overdue(conn, getattr(gateway, "ack_limits", {}))
                return snap
        except Exception as exc:  # a scrape reports the store down, it never fails with a trace
            log.error("metrics: the store does not answer: %s", exc)
            return None

    @router.get(
        "/metrics",
        summary="The gateway's state for Prometheus",
        description=__doc__,
        response_class=PlainTextResponse,
        tags=["operations"],
        responses={503: {"description": "The store does not answer (gateway_up 0)."}},
    )
    async def metrics() -> PlainTextResponse:
        snap = await run_in_threadpool(snapshot)
        return PlainTextResponse(
            exposition(snap, dict(requests())), status_code=200 if snap is not None else 503,
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    return router


def health_router(gateway: Any) -> APIRouter:
    """`/healthz` (liveness) and `/readyz` (readiness) for an orchestrator.

    /healthz answers 200 while the process serves HTTP at all: restart it only when this fails.
    /readyz answers 200 when the store answers and its schema is the one this gateway needs
    (`gateway db upgrade` done), else 503 with the reason: take the node out of service, do
    not restart it.
    """
    router = APIRouter()
    head: list[str] = []

    def readiness() -> str | None:
        from gateway.store.nodes import ping
        from gateway.store.schema import current_revision, head_revision

        problem = ping(gateway.store)
        if problem is not None:
            log.error("readyz: the store does not answer: %s", problem)
            return "the store does not answer"
        if not head:
            head.append(head_revision())
        try:
            found = current_revision(gateway.store)
        except Exception as exc:  # a probe reports, it never fails with a trace
            log.error("readyz: cannot read the schema revision: %s", exc)
            return "cannot read the schema revision"
        if found != head[0]:
            return f"the store's schema is at {found or 'nothing'}, this gateway needs {head[0]}: run `gateway db upgrade`"
        return None

    @router.get("/healthz", summary="Is the process alive?", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Can this node do work: store answering, schema up to date?",
        tags=["operations"],
        responses={503: {"description": "Not ready; `reason` says why."}},
    )
    async def readyz() -> JSONResponse:
        reason = await run_in_threadpool(readiness)
        if reason is None:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)

    return router

"""`GET /metrics`: the gateway's state for Prometheus (text exposition format 0.0.4).

Every figure is counted by the database on each scrape (one connection, a handful of
GROUP BY queries), so any node answers for the whole store and nothing drifts between nodes:

    gateway_messages{state}                        stored messages by state
    gateway_orders{state}                          orders by state
    gateway_outbox{kind,connector,state}           deliveries and documents by state
    gateway_outbox_oldest_due_seconds              how long the oldest due delivery has waited
    gateway_exceptions{state,reason}               held and quarantined orders by reason code
    gateway_documents_overdue                      documents sent and not acknowledged by the partner in time
    gateway_orders_by_partner{channel,partner,state}  orders by channel, partner (configured ones; else "other") and state
    gateway_outbox_depth                           deliveries and documents waiting to be sent (pending or in flight)
    gateway_outbox_oldest_seconds                  age of the oldest of them
    gateway_dead_letters{kind}                     dead outbox rows by kind (order, 855, notice, ...)
    gateway_source_last_message_age_seconds{source}  since a source last delivered a message (or was first watched)
    gateway_source_poll_errors{source}             a source's failed polls in a row (0 after a good one)
    gateway_source_silent{source}                  1 while a source in alerts.sources is alerted as silent
    gateway_alerts_pending{kind}                   alerts held back by a team's rate limit
    gateway_stage_latency_seconds{stage,quantile}  receipt -> order and order -> sent, over the recent 500
    gateway_intake_requests_total{outcome}         this node's intake answers since it started
    gateway_connector_breaker_open{connector}      1 while the connector's circuit breaker is open (or probing), else 0
    gateway_up                                     1 when the store answered, else 0 (then 503)

Alert on `gateway_outbox_oldest_due_seconds` (work is not leaving), on
`gateway_outbox{state="dead"}` and `gateway_exceptions` growing, on `gateway_documents_overdue > 0`
(a partner did not acknowledge what we sent within its acks.expect_within_minutes), and on `gateway_up == 0`.
deploy/prometheus/alerts.yml holds such rules and deploy/grafana/gateway-dashboard.json a dashboard.
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
    "gateway_orders_by_partner": "Orders by channel, partner (a configured partner or shop, else other) and state.",
    "gateway_outbox_depth": "Outbox rows waiting to be sent (pending or in flight).",
    "gateway_outbox_oldest_seconds": "Seconds since the oldest outbox row waiting to be sent was queued.",
    "gateway_dead_letters": "Dead outbox rows (deliveries and documents that gave up) by kind.",
    "gateway_source_last_message_age_seconds": "Seconds since the source last delivered a message (or was first watched).",
    "gateway_source_poll_errors": "The source's failed polls in a row.",
    "gateway_source_silent": "1 while the source is alerted as silent (alerts.sources).",
    "gateway_alerts_pending": "Alerts not sent yet (held back by a team's rate limit), by kind.",
    "gateway_stage_latency_seconds": "Seconds from a message's receipt to its order (receive_to_order) and from the order to its delivery (order_to_sent), over the recent 500.",
    "gateway_intake_requests_total": "Intake answers of this node since it started, by outcome.",
    "gateway_connector_breaker_open": "1 while the connector's circuit breaker is open or probing (no deliveries sent to it), else 0.",
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
        lines += _alerting(snapshot.get("alerting"))
        lines += _family("gateway_connector_breaker_open", (({"connector": c}, v) for c, v in sorted(snapshot.get("breakers", {}).items())))
    lines += _family("gateway_intake_requests_total", (({"outcome": k}, n) for k, n in sorted(requests.items())))
    lines += _family("gateway_up", [({}, 1 if snapshot is not None else 0)])
    return "\n".join(lines) + "\n"


def _alerting(snap: dict[str, Any] | None) -> list[str]:
    """The families for alerting (gateway.store.alerts.metrics_snapshot)."""
    if snap is None:
        return []
    lines = _family("gateway_orders_by_partner", (({"channel": c, "partner": p, "state": s}, n) for c, p, s, n in snap["orders_by"]))
    lines += _family("gateway_outbox_depth", [({}, snap["outbox_depth"])])
    lines += _family("gateway_outbox_oldest_seconds", [({}, round(snap["outbox_oldest_seconds"], 3))])
    lines += _family("gateway_dead_letters", (({"kind": k}, n) for k, n in sorted(snap["dead_letters"].items())))
    lines += _family("gateway_source_last_message_age_seconds", (({"source": k}, round(v, 3)) for k, v in sorted(snap["source_age"].items())))
    lines += _family("gateway_source_poll_errors", (({"source": k}, n) for k, n in sorted(snap["poll_errors"].items())))
    lines += _family("gateway_source_silent", (({"source": k}, 1 if k in snap["silent"] else 0) for k in sorted(snap["source_age"])))
    lines += _family("gateway_alerts_pending", (({"kind": k}, n) for k, n in sorted(snap["alerts_pending"].items())))
    lines += _family(
        "gateway_stage_latency_seconds",
        (({"stage": st, "quantile": q}, round(v, 3)) for st, qs in sorted(snap.get("stage_latency", {}).items()) for q, v in sorted(qs.items())),
    )
    return lines


def _alerting_snapshot(gateway: Any, conn: Any, now: Any) -> dict[str, Any]:
    from gateway.store.alerts import metrics_snapshot as alerting

    cfg = gateway.config
    shops = cfg.intake.stores if cfg.intake is not None else []
    partners = {p.name for p in cfg.partners} | {s.name for s in shops}
    sources = {s.name for s in cfg.sources} | set(cfg.alerts.sources)
    return alerting(conn, now, partners, sources)


def _breakers_snapshot(gateway: Any, conn: Any) -> dict[str, int]:
    """Configured connector -> 1 while its breaker blocks deliveries (gateway.store.breakers)."""
    from gateway.store.breakers import states

    found = states(gateway.store, conn)
    return {c.name: int(c.name in found and found[c.name].blocks) for c in gateway.config.connectors if c.breaker is not None}


def metrics_router(gateway: Any, requests: Any) -> APIRouter:
    """`requests()` returns this node's intake counters (outcome -> count)."""
    router = APIRouter()

    def snapshot() -> dict[str, Any] | None:
        from gateway.store.documents import count_overdue
        from gateway.store.queries import metrics_snapshot

        try:
            with gateway.store.engine.connect() as conn:
                now = gateway.store.db_now(conn)
                snap = metrics_snapshot(conn, now)
                snap["documents_overdue"] = count_overdue(conn, getattr(gateway, "ack_limits", {}))
                snap["alerting"] = _alerting_snapshot(gateway, conn, now)
                snap["breakers"] = _breakers_snapshot(gateway, conn)
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

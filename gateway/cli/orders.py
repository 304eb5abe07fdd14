"""Looking at orders, messages and documents (dead letters and replays: gateway.cli.deadletters)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gateway.states import MessageState, OrderState

if TYPE_CHECKING:
    pass
from gateway.cli.common import (
    ConfigOpt,
    _gateway,
    app,
    out,
)
from gateway.cli.partners import _print_sources

# -- looking at orders ------------------------------------------------------------------------

# Order states whose deliveries may be partly sent (`step_progress` tells which step waits).
_OPEN = (OrderState.VALIDATED, OrderState.DEAD)


@app.command()
def orders(
    config: ConfigOpt = None,
    state: Annotated[OrderState | None, typer.Option("--state", "-s", help="Only orders in this state.", case_sensitive=False)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per order, for scripts.")] = False,
    partner: Annotated[str | None, typer.Option("--partner", "-p", help="Only this partner's orders.")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="Only orders from this channel (x12, edifact, cxml, csv, shopify, ...).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only orders read from this UTC date or ISO time on.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Only orders read up to this UTC date (inclusive) or ISO time (exclusive).")] = None,
) -> None:
    """List recent orders with their state."""
    from gateway.cli.report import parse_when

    filters = {"partner": partner, "channel": channel, "since": parse_when(since), "until": parse_when(until, end=True)}
    gw = _gateway(config, existing=True)
    try:
        _orders_table(gw, state=state.value if state else None, limit=limit, as_json=as_json, filters=filters)
    finally:
        gw.close()


def _sources(gw: Any, detail: Any) -> Any:
    """The shown order's sources, stored or read again from its message (gateway.provenance)."""
    from gateway.provenance import sources_of
    from gateway.store.console_queries import message_body

    o, msg = detail.order, detail.message
    body = None if o["provenance"] else message_body(gw.store, msg["id"])
    return sources_of(o, msg, body, gw.partners)


def _json_value(v: Any) -> Any:
    """What json.dumps cannot write itself: times in ISO 8601, bytes as text, rows as dicts."""
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).decode("utf-8", "replace")
    if hasattr(v, "_asdict"):
        return v._asdict()
    if hasattr(v, "keys"):
        return dict(v)
    return str(v)


def _json_lines(rows: Any) -> None:
    """Dataclass rows as JSON Lines (times in ISO 8601)."""
    import dataclasses

    for r in rows:
        sys.stdout.write(json.dumps(dataclasses.asdict(r), default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)) + "\n")


def _orders_table(gw: Any, *, state: str | None, limit: int, as_json: bool = False, filters: dict[str, Any] | None = None) -> None:
    import dataclasses

    from gateway.store.outbox import step_progress
    from gateway.store.queries import list_orders

    rows = list_orders(gw.store, state=state, limit=limit, **(filters or {}))
    # An order whose deliveries are partly sent says so, and which step waits (issue 11).
    partial = step_progress(gw.store, [r.id for r in rows if r.state in _OPEN], gw.config.steps())
    if as_json:
        for r in rows:
            item = dataclasses.asdict(r)
            if r.id in partial:
                item["progress"] = partial[r.id].describe()
            sys.stdout.write(json.dumps(item, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)) + "\n")
        return
    table = Table(title=f"{len(rows)} order(s)" + (f" in state {state}" if state else ""))
    for col in ("id", "po number", "partner", "lines", "state", "reason", "from"):
        table.add_column(col)
    for r in rows:
        shown, why = r.state, r.reason or ""
        if r.id in partial:
            shown, why = f"{r.state} (partly sent)", partial[r.id].describe()
        table.add_row(r.id[:8], r.po_number or "-", r.partner or "-", str(r.line_count), shown, why, r.display_name or "")
    out.print(table)


@app.command()
def messages(
    config: ConfigOpt = None,
    state: Annotated[MessageState | None, typer.Option("--state", "-s", help="Only messages in this state.", case_sensitive=False)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per message, for scripts.")] = False,
) -> None:
    """List received files and messages: what came in, what it became, and why one was refused."""
    from gateway.store.queries import list_messages

    gw = _gateway(config, existing=True)
    try:
        rows = list_messages(gw.store, state=state.value if state else None, limit=limit)
    finally:
        gw.close()
    if as_json:
        _json_lines(rows)
        return
    table = Table(title=f"{len(rows)} message(s)" + (f" in state {state}" if state else ""))
    for col in ("id", "received", "source", "name", "bytes", "state", "orders", "rejected", "reason / warnings"):
        table.add_column(col)
    for r in rows:
        note = f"{r.reason}: {r.error}" if r.reason else "; ".join(r.warnings[:2])
        table.add_row(
            r.id[:8], str(r.received_at)[:19], r.source, r.display_name or "", str(r.size),
            r.state, str(r.order_count), str(r.rejected_count), note[:100],
        )
    out.print(table)


@app.command()
def show(
    order: Annotated[str, typer.Argument(help="Order id (or its first characters) or PO number.")],
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print everything shown as one JSON object: the canonical order under \"data\", state, deliveries, acknowledgements and history.")] = False,
    sources: Annotated[bool, typer.Option("--sources", help="Also list every value with where it came from (and how sure the reading was); with --json under \"sources\".")] = False,
) -> None:
    """Show one order: status, canonical content, deliveries and full history."""
    from gateway.store.assignments import for_order as assignment_of
    from gateway.store.findings import for_order
    from gateway.store.outbox import step_progress
    from gateway.store.queries import order_detail

    gw = _gateway(config, existing=True)
    try:
        detail = order_detail(gw.store, order)
        decided, findings = for_order(gw.store, detail.order["id"])
        assigned = assignment_of(gw.store, detail.order["id"])
        partial = step_progress(gw.store, [detail.order["id"]], gw.config.steps()).get(detail.order["id"])
        found = _sources(gw, detail) if sources and detail.order["data"] else None
    finally:
        gw.close()
    o, versions, msg = detail.order, detail.versions, detail.message
    deliveries, acks, history = detail.deliveries, detail.acks, detail.history
    if as_json:
        whole = {
            **{k: o[k] for k in ("id", "po_number", "partner", "channel", "version", "state", "reason", "error", "position", "created_at", "updated_at", "data")},
            "versions": [{k: v[k] for k in ("id", "version", "purpose", "state")} for v in versions],
            "message": {k: msg[k] for k in ("id", "source", "display_name", "received_at", "state")},
            "deliveries": deliveries, "acknowledgements": acks, "history": history,
            "rules": {"decision": decided, "findings": findings}, "assigned": assigned,
        }
        if found is not None:
            whole["sources"], whole["sources_note"] = found.values, found.note
        sys.stdout.write(json.dumps(whole, indent=2, default=_json_value) + "\n")
        return
    out.print(f"[bold]Order {o['id']}[/bold]  PO {o['po_number'] or '-'}  version {o['version']}  state [bold]{o['state']}[/bold]")
    if len(versions) > 1:
        listed = ", ".join(f"v{v['version']} {v['id'][:8]} {v['purpose']} {v['state']}" for v in versions)
        out.print(f"  versions: {listed}", markup=False)
    if partial is not None and o["state"] in _OPEN:
        out.print(f"  {partial.describe()}", markup=False)
    if o["reason"]:
        out.print(f"  {o['reason']}: {o['error']}", markup=False)
    if assigned is not None and (assigned["team"] or assigned["assignee"]):
        whom = f"team {assigned['team'] or '-'}" + (f", {assigned['assignee']} (by {assigned['assigned_by']})" if assigned["assignee"] else "")
        out.print(f"  assigned to {whom}", markup=False)
    out.print(f"  from message {msg['id'][:8]} ({msg['display_name']}, source {msg['source']}) at {o['position']}", markup=False)
    for w in msg["warnings"] or []:
        out.print(f"  warning: {w}", markup=False)
    if o["data"]:
        d = o["data"]
        out.print(f"  partner {d.get('partner') or '-'}, ordered {d.get('order_date') or '-'}, currency {d.get('currency') or '-'}, {len(d['lines'])} line(s)", markup=False)
        lines = Table(show_edge=False)
        for col in ("#", "qty", "uom", "price", "sku", "buyer part", "gtin", "description"):
            lines.add_column(col)
        for ln in d["lines"]:
            lines.add_row(*(str(ln.get(k) or "") for k in ("line_number", "quantity", "uom", "unit_price", "sku", "buyer_part_number", "gtin", "description")))
        out.print(lines)
        if found is not None:
            _print_sources(d, found.values, note=found.note)
    if decided is not None:
        who = f" (then {decided['outcome']} by {decided['decided_by']})" if decided["decided_by"] else ""
        ft = Table(title=f"rules: {len(findings)} finding(s){who}", show_edge=False)
        for col in ("outcome", "reason", "line", "rule", "what"):
            ft.add_column(col, overflow="fold")
        for fd in findings:
            ft.add_row(fd["outcome"], fd["code"], fd["line"] or "", fd["rule"], fd["message"])
        out.print(ft)
    if deliveries:
        dt_ = Table(title="deliveries", show_edge=False)
        split = any(d["part_label"] for d in deliveries)  # a part column only for a split order
        for col in ("connector", *(("part",) if split else ()), "state", "attempts", "last status", "last error", "reference"):
            dt_.add_column(col)
        for d in deliveries:
            ref = (d["receipt"] or {}).get("reference") if d["receipt"] else None
            part = (d["part_label"] or "whole order",) if split else ()
            dt_.add_row(d["connector"], *part, d["state"], str(d["attempts"]), str(d["last_status"] or ""), (d["last_error"] or "")[:60], ref or "")
        out.print(dt_)
    if acks:
        at = Table(title="acknowledgements", show_edge=False)
        for col in ("id", "kind", "channel", "state", "attempts", "last error", "partner's ack"):
            at.add_column(col)
        for a in acks:
            kind = "confirmation e-mail" if a["kind"] == "MAILREPLY" else f"{a['kind']} {a['control_number'] or ''}".strip()
            at.add_row(
                f"ack:{a['id']}", kind, a["channel"] or "-", a["state"], str(a["attempts"]), (a["error"] or "")[:60], _partner_ack(a)
            )
        out.print(at)
    ht = Table(title="history", show_edge=False)
    for col in ("at", "event", "detail"):
        ht.add_column(col)
    for e in history:
        ht.add_row(str(e["at"])[:23], e["kind"], e["detail"] or "")
    out.print(ht)


def _partner_ack(a: Any) -> str:
    """The partner's acknowledgement of a document, as `show` and `documents` print it."""
    if a.get("partner_ack") or a.get("ack_status"):
        said = str(a.get("partner_ack") or a.get("ack_status")).replace("_", " ")
        return f"{said} ({a['ack_code']})" + (f": {a['ack_errors'][:60]}" if a.get("ack_errors") else "")
    if a.get("overdue") or a.get("overdue_at"):
        return "OVERDUE"
    return "-"


@app.command()
def documents(
    config: ConfigOpt = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only documents sent and not acknowledged within the partner's acks.expect_within_minutes.")] = False,
    partner: Annotated[str | None, typer.Option("--partner", help="Only the documents sent to this partner.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per document, for scripts.")] = False,
) -> None:
    """List the documents we sent partners (997, 855, CONTRL, ORDRSP, ...) with each partner's
    acknowledgement of them: accepted, accepted with errors, rejected, or overdue."""
    gw = _gateway(config, existing=True)
    try:
        rows = gw.documents(overdue=overdue, partner=partner, limit=limit)
    finally:
        gw.close()
    if as_json:
        for r in rows:
            sys.stdout.write(json.dumps(r, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)) + "\n")
        return
    table = Table(title=f"{len(rows)} {'overdue ' if overdue else ''}document(s)")
    for col in ("id", "kind", "partner", "order", "state", "sent", "partner's ack"):
        table.add_column(col)
    for r in rows:
        kind = "confirmation e-mail" if r["kind"] == "MAILREPLY" else f"{r['kind']} {r['control_number'] or ''}".strip()
        sent = str(r["updated_at"])[:19] if r["state"] == "sent" else ""
        table.add_row(f"ack:{r['id']}", kind, r["partner"] or "-", (r["order_id"] or "")[:8], r["state"], sent, _partner_ack(r))
    out.print(table)

"""The `gateway` command.

Every command reads the configuration from --config, else $GATEWAY_CONFIG, else
./config/gateway.yaml, else the embedded defaults (SQLite in ./var, inbox ./var/inbox, file
outbox ./var/outbox). Errors end with a one-line reason on stderr and a non-zero exit, never
a traceback (set GATEWAY_DEBUG=1 to see one).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gateway.errors import ConfigError, GatewayError, InputRejected
from gateway.states import MessageState, OrderState

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Order-entry integration gateway.")
config_app = typer.Typer(no_args_is_help=True, help="Check and explain the configuration.")
app.add_typer(config_app, name="config")
mapping_app = typer.Typer(no_args_is_help=True, help="Try mappings against sample files.")
app.add_typer(mapping_app, name="mapping")
data_app = typer.Typer(no_args_is_help=True, help="Master data: catalogue, prices, stock and customer accounts.")
app.add_typer(data_app, name="data")
rules_app = typer.Typer(no_args_is_help=True, help="Try the configured rules against sample files.")
app.add_typer(rules_app, name="rules")

# Piped output keeps whole table cells instead of rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Configuration file (YAML).", envvar="GATEWAY_CONFIG")]

EXAMPLES = Path(__file__).with_name("examples")


def _config_path(path: Path | None) -> Path | None:
    """The configuration file a command reads, or None for the embedded defaults."""
    if path is not None:
        return path
    default = Path("config/gateway.yaml")
    return default if default.exists() else None


def _config(path: Path | None, *, secrets_optional: bool = False) -> GatewayConfig:
    """The configuration; `secrets_optional` for commands that use no secret (translate)."""
    from gateway.config import default_config, load_config  # not for --help: keeps start-up fast

    found = _config_path(path)
    if found is not None:
        return load_config(found, secrets_optional=secrets_optional)
    return default_config(Path.cwd())


def _gateway(path: Path | None, *, existing: bool = False) -> Any:
    """The gateway; `existing=True` (commands that look at or act on stored work) opens only a
    store that exists and exits with a one-line reason otherwise, creating nothing."""
    from gateway.app import Gateway
    from gateway.store import Store

    cfg = _config(path)
    logging.basicConfig(level=cfg.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pyx12", "apscheduler.executors", "apscheduler.scheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL if noisy == "pyx12" else logging.WARNING)
    return Gateway(cfg, store=Store(cfg.store.url, create=not existing))


# -- translate / schema -----------------------------------------------------------------------


@app.command()
def translate(
    files: Annotated[list[Path], typer.Argument(help="Input files; '-' reads standard input.")],
    format: Annotated[str | None, typer.Option("--format", "-f", help="Input format (default: detected from the content).")] = None,
    partner: Annotated[str | None, typer.Option("--partner", "-p", help="Trading partner the input comes from.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Print the canonical orders in FILES as JSON Lines; problems go to stderr."""
    from gateway.formats.base import InterchangeClosed
    from gateway.translate import PartnerDirectory, Rejected, Translated
    from gateway.translate import translate as run

    cfg = _config(config, secrets_optional=True)
    partners = PartnerDirectory(cfg.partners, mappings_root=cfg.mappings)

    write = sys.stdout.write
    failed = 0
    for f in files:
        label = str(f)
        try:
            stream = sys.stdin.buffer if label == "-" else open(f, "rb")  # noqa: SIM115
        except OSError as exc:
            err.print(f"{label}: cannot read: {exc.strerror}", markup=False)
            failed += 1
            continue
        try:
            if label == "-":
                import io

                stream = io.BytesIO(stream.read())
            for ev in run(stream, name=Path(label).name, format=format, partner=partner, partners=partners):
                if isinstance(ev, Translated):
                    write(ev.order.model_dump_json())
                    write("\n")
                    if ev.review:
                        err.print(f"{label}: {ev.position}: PO {ev.order.po_number} would be held for review: {'; '.join(ev.review)}", markup=False)
                elif isinstance(ev, Rejected):
                    failed += 1
                    doc = f"{ev.doc_type or 'document'} {ev.control_number or ''}".strip()
                    err.print(f"{label}: {ev.position}: {doc} rejected ({ev.reason}): {ev.message}", markup=False)
                elif isinstance(ev, InterchangeClosed) and (problem := _interchange_problem(ev)):
                    failed += 1
                    err.print(f"{label}: {problem}", markup=False)
        except InputRejected as exc:
            failed += 1
            err.print(f"{label}: {exc.position or 'start'}: {exc.message} ({exc.reason})", markup=False)
        finally:
            stream.close()
    sys.stdout.flush()
    if failed:
        raise typer.Exit(1)


def _interchange_problem(ev: Any) -> str | None:
    """Why an interchange is refused as a whole (cut off, or holding nothing), else None."""
    env = ev.envelope
    what = f"interchange {env.interchange_control_number or '?'} from {env.sender_id or '?'}"
    trailer = "IEA" if env.standard == "x12" else "UNZ"
    if not ev.complete:
        return f"{what} is cut off (no {trailer} or group trailer): nothing from it is accepted (TRUNCATED)"
    if not ev.document_count:
        return f"{what} holds no transaction set or message (NO_ORDERS)"
    return None


@app.command()
def schema() -> None:
    """Print the JSON Schema of the canonical order."""
    from gateway.model import order_json_schema

    sys.stdout.write(json.dumps(order_json_schema(), indent=2) + "\n")


# -- ingest / run / demo ----------------------------------------------------------------------


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Files to store and process.")],
    config: ConfigOpt = None,
    format: Annotated[str | None, typer.Option("--format", "-f")] = None,
    partner: Annotated[str | None, typer.Option("--partner", "-p")] = None,
) -> None:
    """Store FILES and turn them into orders now (they are dispatched by `gateway run`)."""
    from rich.progress import Progress

    from gateway.connector import RawMessage

    gw = _gateway(config)
    totals = {"orders": 0, "quarantined": 0, "duplicates": 0, "rejected": 0}
    started = time.perf_counter()
    try:
        with Progress(console=err, transient=True, disable=len(files) < 3) as progress:
            task = progress.add_task("ingesting", total=len(files))
            for f in files:
                try:
                    body = f.read_bytes()
                except OSError as exc:
                    err.print(f"{f}: cannot read: {exc.strerror}", markup=False)
                    totals["rejected"] += 1
                    continue
                raw = RawMessage(body=body, source="cli", source_ref=str(f.resolve()), display_name=f.name)
                mid, dup, st = gw.ingest(raw, format=format, partner=partner)
                if dup:
                    totals["duplicates"] += 1
                    err.print(f"{f}: already received as message {mid[:8]}; nothing new", markup=False)
                totals["orders"] += st.orders
                totals["quarantined"] += st.quarantined
                totals["rejected"] += st.rejected_messages
                progress.advance(task)
    finally:
        gw.close()
    elapsed = time.perf_counter() - started
    err.print(
        f"{len(files)} file(s): {totals['orders']} orders accepted, {totals['quarantined']} quarantined, "
        f"{totals['duplicates']} duplicate file(s), {totals['rejected']} file(s) refused in {elapsed:.2f}s",
        markup=False,
    )
    if totals["rejected"] or totals["quarantined"]:
        raise typer.Exit(1)


@app.command()
def run(
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Work until nothing is left to do, then exit.")] = False,
    seconds: Annotated[float | None, typer.Option("--for", help="Stop after this many seconds.")] = None,
) -> None:
    """Run the gateway: poll sources, make orders, deliver them. Stops cleanly on SIGTERM."""
    gw = _gateway(config)
    if once:
        try:
            gw.run_until_idle(seconds or 60.0)
        finally:
            gw.close()
        return
    from gateway import configstamp
    from gateway.app import Gateway
    from gateway.service import run_service

    def loaded(running: Any) -> None:
        configstamp.record_loaded(running.store, configstamp.fingerprint(_config_path(config), running.config))

    run_service(gw, max_seconds=seconds, reload=lambda: Gateway(_config(config)), loaded=loaded)


@app.command()
def demo(
    config: ConfigOpt = None,
) -> None:
    """Drop the bundled example orders into the inbox and watch them flow to the outbox."""
    gw = _gateway(config)
    inbox = next((Path(s.path) for s in gw.config.sources if s.type == "folder"), None)
    if inbox is None:
        raise ConfigError("the demo needs a folder source in the configuration")
    inbox.mkdir(parents=True, exist_ok=True)
    examples = sorted([*EXAMPLES.glob("*.edi"), *EXAMPLES.glob("*.eml")])
    for ex in examples:
        shutil.copyfile(ex, inbox / ex.name)
    err.print(f"copied {len(examples)} example file(s) into {inbox}; running until they are delivered ...", markup=False)
    try:
        gw.run_until_idle(60.0)
        _orders_table(gw, state=None, limit=50)
        outbox_dirs = [c.path for c in gw.config.connectors if getattr(c, "type", "") == "file"]
        for d in outbox_dirs:
            files = sorted(Path(d).glob("*.json"))
            out.print(f"\n{len(files)} order file(s) in {d}")
    finally:
        gw.close()


# -- looking at orders ------------------------------------------------------------------------


@app.command()
def orders(
    config: ConfigOpt = None,
    state: Annotated[OrderState | None, typer.Option("--state", "-s", help="Only orders in this state.", case_sensitive=False)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per order, for scripts.")] = False,
) -> None:
    """List recent orders with their state."""
    gw = _gateway(config, existing=True)
    try:
        _orders_table(gw, state=state.value if state else None, limit=limit, as_json=as_json)
    finally:
        gw.close()


def _json_lines(rows: Any) -> None:
    """Dataclass rows as JSON Lines (times in ISO 8601)."""
    import dataclasses

    for r in rows:
        sys.stdout.write(json.dumps(dataclasses.asdict(r), default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)) + "\n")


def _orders_table(gw: Any, *, state: str | None, limit: int, as_json: bool = False) -> None:
    from gateway.store.queries import list_orders

    rows = list_orders(gw.store, state=state, limit=limit)
    if as_json:
        _json_lines(rows)
        return
    table = Table(title=f"{len(rows)} order(s)" + (f" in state {state}" if state else ""))
    for col in ("id", "po number", "partner", "lines", "state", "reason", "from"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.id[:8], r.po_number or "-", r.partner or "-", str(r.line_count), r.state, r.reason or "", r.display_name or "")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the canonical order as JSON only.")] = False,
    sources: Annotated[bool, typer.Option("--sources", help="Also list every value with where it came from (and how sure the reading was).")] = False,
) -> None:
    """Show one order: status, canonical content, deliveries and full history."""
    from gateway.store.assignments import for_order as assignment_of
    from gateway.store.findings import for_order
    from gateway.store.queries import order_detail

    gw = _gateway(config, existing=True)
    try:
        detail = order_detail(gw.store, order)
        decided, findings = for_order(gw.store, detail.order["id"])
        assigned = assignment_of(gw.store, detail.order["id"])
    finally:
        gw.close()
    o, versions, msg = detail.order, detail.versions, detail.message
    deliveries, acks, history = detail.deliveries, detail.acks, detail.history
    if as_json:
        sys.stdout.write(json.dumps(o["data"], indent=2) + "\n")
        return
    out.print(f"[bold]Order {o['id']}[/bold]  PO {o['po_number'] or '-'}  version {o['version']}  state [bold]{o['state']}[/bold]")
    if len(versions) > 1:
        listed = ", ".join(f"v{v['version']} {v['id'][:8]} {v['purpose']} {v['state']}" for v in versions)
        out.print(f"  versions: {listed}", markup=False)
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
        if sources:
            _print_sources(d, o["provenance"] or {})
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
        for col in ("connector", "state", "attempts", "last status", "last error", "reference"):
            dt_.add_column(col)
        for d in deliveries:
            ref = (d["receipt"] or {}).get("reference") if d["receipt"] else None
            dt_.add_row(d["connector"], d["state"], str(d["attempts"]), str(d["last_status"] or ""), (d["last_error"] or "")[:60], ref or "")
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


@app.command("dead-letters")
def dead_letters(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per dead letter (documents with \"kind\"), for scripts.")] = False,
) -> None:
    """List deliveries that gave up, with their last error (orders, then acknowledgements)."""
    from gateway.store.dead_letters import list_dead, list_dead_documents

    gw = _gateway(config, existing=True)
    try:
        rows = list_dead(gw.store)
        acks = list_dead_documents(gw.store)
    finally:
        gw.close()
    if as_json:
        _json_lines([*rows, *acks])
        return
    table = Table(title=f"{len(rows)} dead letter(s)")
    for col in ("id", "order", "po number", "connector", "attempts", "last status", "last error"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.outbox_id), r.order_id[:8], r.po_number or "-", r.connector, str(r.attempts), str(r.last_status or ""), (r.last_error or "")[:80])
    out.print(table)
    if acks:
        at = Table(title=f"{len(acks)} acknowledgement(s) not delivered (replay them as ack:<id>)")
        for col in ("id", "kind", "partner", "channel", "message", "attempts", "last error"):
            at.add_column(col)
        for a in acks:
            kind = "confirmation e-mail" if a.kind == "MAILREPLY" else f"{a.kind} {a.control_number or ''}".strip()
            at.add_row(f"ack:{a.outbox_id}", kind, a.partner or "-", a.channel, (a.message_id or "")[:8], str(a.attempts), (a.last_error or "")[:80])
        out.print(at)


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


@app.command()
def replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead-letter ids (see `gateway dead-letters`): 12 for a delivery, ack:12 for an acknowledgement.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter (deliveries and acknowledgements).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Send dead letters again (after fixing what made them fail)."""
    from gateway.store.dead_letters import list_dead, list_dead_documents
    from gateway.store.dead_letters import replay as do_replay

    if not ids and not all_:
        raise GatewayError("name the dead letters to replay, or pass --all")
    outbox_ids: list[int] = []
    ack_ids: list[int] = []
    for i in ids or []:
        kind, _, num = i.lower().rpartition(":")
        if kind not in ("", "ack") or not num.isdigit():
            raise GatewayError(f"{i!r} is not a dead-letter id: give a number (a delivery) or ack:<number> (an acknowledgement)")
        (ack_ids if kind == "ack" else outbox_ids).append(int(num))
    gw = _gateway(config, existing=True)
    try:
        if not all_:
            # Say which id is wrong instead of "0 queued" (issue 14 #15); nothing is queued then.
            dead = {r.outbox_id for r in list_dead(gw.store)} if outbox_ids else set()
            dead_acks = {r.outbox_id for r in list_dead_documents(gw.store)} if ack_ids else set()
            unknown = [str(i) for i in sorted(set(outbox_ids) - dead)]
            unknown += [f"ack:{i}" for i in sorted(set(ack_ids) - dead_acks)]
            if unknown:
                raise GatewayError(
                    f"no dead letter with id {', '.join(unknown)}; nothing queued "
                    "(`gateway dead-letters` lists them)"
                )
        # Orders and documents are rows of one outbox: one replay queues both.
        n = do_replay(gw.store, "all" if all_ else [*outbox_ids, *ack_ids]) if all_ or outbox_ids or ack_ids else 0
    finally:
        gw.close()
    err.print(f"{n} delivery(ies) queued again; `gateway run` sends them", markup=False)
    if ids and n < len(ids):
        raise typer.Exit(1)


# -- review by a person -------------------------------------------------------------------------


@app.command()
def review(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 100,
) -> None:
    """List the orders held for a person, with what to check (approve or reject each)."""
    gw = _gateway(config, existing=True)
    try:
        rows = gw.pipeline.held_for_review(limit)
    finally:
        gw.close()
    table = Table(title=f"{len(rows)} order(s) held for review")
    for col in ("id", "received", "partner", "po number", "from", "why"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["id"][:8], f"{r['created_at']:%Y-%m-%d %H:%M}", r["partner"] or "-", r["po_number"] or "-", r["position"] or "", f"{r['reason']}: {r['error']}")
    out.print(table)
    if rows:
        err.print("`gateway show ID` shows an order with where each value came from; `gateway approve ID` sends it on, `gateway reject ID --reason ...` refuses it.", markup=False)


@app.command()
def approve(
    order: Annotated[str, typer.Argument(help="Id (or its first characters) of an order held for review.")],
    by: Annotated[str, typer.Option("--by", help="Who approves (recorded in the history).")] = "",
    config: ConfigOpt = None,
) -> None:
    """Send an order held for review on to its connectors."""
    gw = _gateway(config, existing=True)
    try:
        oid = gw.pipeline.approve(order, by=by)
    finally:
        gw.close()
    err.print(f"order {oid[:8]} approved and queued; `gateway run` sends it", markup=False)


@app.command()
def reject(
    order: Annotated[str, typer.Argument(help="Id (or its first characters) of an order held for review.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why it is refused (recorded in the history).")] = "",
    by: Annotated[str, typer.Option("--by", help="Who rejects (recorded in the history).")] = "",
    config: ConfigOpt = None,
) -> None:
    """Refuse an order held for review; it is never sent."""
    gw = _gateway(config, existing=True)
    try:
        oid = gw.pipeline.reject(order, reason, by=by)
    finally:
        gw.close()
    err.print(f"order {oid[:8]} rejected", markup=False)


@app.command()
def exceptions(
    config: ConfigOpt = None,
    partner: Annotated[str | None, typer.Option("--partner", help="Only this partner's orders.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Only reasons starting with this (e.g. VALIDATION, DUPLICATE_PO).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Only orders assigned to this team (exceptions.teams).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per order, for scripts.")] = False,
) -> None:
    """List every order held for a person or refused (the exception queue), with why and whose it is."""
    gw = _gateway(config, existing=True)
    try:
        rows = gw.pipeline.exceptions.waiting(limit=limit, partner=partner, reason=reason, team=team)
    finally:
        gw.close()
    if as_json:
        for r in rows:
            sys.stdout.write(json.dumps({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in r.items()}) + "\n")
        return
    table = Table(title=f"{len(rows)} order(s) waiting for a person or refused")
    for col in ("id", "received", "state", "partner", "po number", "v", "team", "why"):
        table.add_column(col, overflow="fold")
    for r in rows:
        whose = (r["team"] or "-") + (f" ({r['assignee']})" if r["assignee"] else "")
        table.add_row(
            r["id"][:8], f"{r['created_at']:%Y-%m-%d %H:%M}", r["state"], r["partner"] or "-", r["po_number"] or "-",
            str(r["version"]), whose, f"{r['reason']}: {r['error']}",
        )
    out.print(table)
    if rows:
        err.print(
            "`gateway show ID` shows an order; `gateway edit ID --set PATH=VALUE --by NAME` corrects it as a new version, "
            "`gateway release ID --by NAME` checks a refused one again, `gateway approve`/`reject` decide a held one.",
            markup=False,
        )


@app.command()
def assign(
    order: Annotated[str, typer.Argument(help="Id (or its first characters) of a held or refused order (see `gateway exceptions`).")],
    to: Annotated[str, typer.Option("--to", help="The person who takes the order.")] = "",
    by: Annotated[str, typer.Option("--by", help="Who assigns it (required: recorded in the history).")] = "",
    team: Annotated[str | None, typer.Option("--team", help="Move it to this team too (a name from exceptions.teams).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Give a waiting order to a person (and a team); recorded in its history."""
    gw = _gateway(config, existing=True)
    try:
        done = gw.notifier.assign(order, to=to, by=by, team=team)
    finally:
        gw.close()
    err.print(f"order {done['id'][:8]} (PO {done['po_number']}) assigned to {done['assignee']}" + (f" of team {done['team']}" if done["team"] else ""), markup=False)


@app.command()
def edit(
    order: Annotated[str, typer.Argument(help="Id (or its first characters) of a held or refused order (see `gateway exceptions`).")],
    assignments: Annotated[list[str], typer.Option("--set", help="PATH=VALUE, e.g. lines[2].quantity=10 or ship_to.postal_code=30301; repeat for more.")],
    by: Annotated[str, typer.Option("--by", help="Who corrects it (required: recorded in the history).")] = "",
    config: ConfigOpt = None,
) -> None:
    """Correct a held or refused order: the correction is a new version, checked again and sent on if it passes."""
    from gateway.processing.exception_queue import parse_assignments

    pairs = parse_assignments(assignments)
    gw = _gateway(config, existing=True)
    try:
        done = gw.pipeline.exceptions.edit(order, pairs, by=by)
    finally:
        gw.close()
    for change in done.changes:
        err.print(f"  {change}", markup=False)
    if done.state == "validated":
        err.print(f"order {done.order_id[:8]} (version {done.version}) accepted and queued; `gateway run` sends it", markup=False)
    else:
        err.print(f"order {done.order_id[:8]} (version {done.version}) is {done.state}: {done.reason}: {done.error}", markup=False)
        raise typer.Exit(1)


@app.command()
def release(
    order: Annotated[str, typer.Argument(help="Id (or its first characters) of a refused order (see `gateway exceptions`).")],
    by: Annotated[str, typer.Option("--by", help="Who releases it (required: recorded in the history).")] = "",
    override: Annotated[bool, typer.Option("--override", help="Accept it even though the check that refused it still fails.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Check a refused order again after its cause was fixed (a SKU added, a partner configured), and send it on if it passes."""
    gw = _gateway(config, existing=True)
    try:
        row = gw.pipeline.exceptions.release(order, by=by, override=override)
    finally:
        gw.close()
    if row["state"] == "validated":
        err.print(f"order {row['id'][:8]} released and queued; `gateway run` sends it", markup=False)
    else:
        err.print(f"order {row['id'][:8]} released and is {row['state']}: {row['reason']}: {row['error']}", markup=False)


@app.command("replay-archive")
def replay_archive(
    since: Annotated[str, typer.Option("--since", help="Messages received from this date (2026-11-01) or time (2026-11-01T09:30, UTC).")],
    config: ConfigOpt = None,
    show_all: Annotated[bool, typer.Option("--all", help="List every order, not only those decided or read differently now.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="At most this many messages.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per order, for scripts.")] = False,
) -> None:
    """Read archived messages again with the current mappings and rules; print what would be decided differently.

    Go-live safety for a mapping or rules change: nothing is stored or sent."""
    import datetime as dt

    from gateway.app import RulesSetup
    from gateway.replay_archive import replay_archive as replay
    from gateway.store import Store
    from gateway.translate import PartnerDirectory

    try:
        start = dt.datetime.fromisoformat(since.strip())
    except ValueError:
        raise GatewayError(f"--since {since!r} is not a date: give 2026-11-01 or 2026-11-01T09:30 (UTC)") from None
    start = start.replace(tzinfo=dt.UTC) if start.tzinfo is None else start.astimezone(dt.UTC)
    cfg = _config(config, secrets_optional=True)
    setup = RulesSetup(cfg)
    store = Store(cfg.store.url, create=False)
    directory = PartnerDirectory(cfg.partners, mappings_root=cfg.mappings)

    counts = {"orders": 0, "decision": 0, "content": 0}
    changed: list[Any] = []
    try:
        with store.engine.connect() as conn:

            def engine_for(history: Any) -> Any:
                from gateway.rules import RulesEngine

                return RulesEngine(setup.rules, setup.masterdata(conn), history) if cfg.rules else None

            for r in replay(conn, directory, engine_for, start, limit=limit):
                counts["orders"] += 1
                counts["decision"] += r.decision_changed
                counts["content"] += bool(r.changes)
                if as_json:
                    sys.stdout.write(json.dumps(r.as_dict()) + "\n")
                elif r.changed or show_all:
                    changed.append(r)
    finally:
        store.dispose()
    if not as_json:
        table = Table(title=f"{len(changed)} of {counts['orders']} order(s) since {start:%Y-%m-%d %H:%M} {'listed' if show_all else 'read or decided differently now'}")
        for col in ("received", "file", "po number", "then", "now", "what differs"):
            table.add_column(col, overflow="fold")
        for r in changed:
            then = r.then + (f" {r.then_reason}" if r.then_reason else "")
            now = r.now + (f" {r.now_reason}" if r.now_reason else "")
            table.add_row(f"{r.received_at:%Y-%m-%d %H:%M}", f"{r.name} {r.position}", r.po_number or "-", then, now, "; ".join(r.changes[:6]))
        out.print(table)
    err.print(
        f"{counts['orders']} order(s) read again: {counts['decision']} decided differently now, {counts['content']} read differently; nothing was stored or sent",
        markup=False,
    )


@app.command()
def reprocess(
    message: Annotated[str, typer.Argument(help="Id (or its first characters) of a refused message (see `gateway messages`).")],
    by: Annotated[str, typer.Option("--by", help="Who asks (recorded in the history).")] = "",
    accept_reused_control: Annotated[
        bool,
        typer.Option("--accept-reused-control", help="Read interchanges refused as CONTROL_NUMBER_REUSED as new (after checking with the partner)."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Queue it even though a running gateway has an older configuration.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Read a refused message again with the current configuration (a sender added, a template fixed)."""
    from gateway import configstamp

    gw = _gateway(config, existing=True)
    try:
        # issue 14 #8: the running service does the work; with an older configuration it
        # would read the message as before. Refuse until it is reloaded.
        stale = configstamp.stale_nodes(gw.store, configstamp.fingerprint(_config_path(config), gw.config))
        if stale and not force:
            pids = " ".join(str(node.pid) for node in stale)
            raise GatewayError(
                f"the running gateway ({', '.join(f'pid {n.pid} on {n.host}' for n in stale)}) loaded an older "
                f"configuration and would read the message with it; reload it first (kill -HUP {pids}), "
                "then reprocess again (or pass --force)"
            )
        mid, n = gw.pipeline.reprocess(message, by=by, accept_reused_control=accept_reused_control)
    finally:
        gw.close()
    if accept_reused_control:
        err.print(f"message {mid[:8]}: {n} interchange(s) with a reused control number will be read as new; `gateway run` processes it", markup=False)
        return
    what = f"{n} refused document(s)" if n else "the message"
    err.print(f"message {mid[:8]}: {what} will be read again; `gateway run` processes it", markup=False)


# -- partners and mappings ----------------------------------------------------------------------


@app.command()
def partners(config: ConfigOpt = None) -> None:
    """List the configured trading partners, their ids, mappings and acknowledgements."""
    from gateway.partners import MAPPINGS

    cfg = _config(config)
    table = Table(title=f"{len(cfg.partners)} partner(s)")
    for col in ("name", "ids", "connectors", "mapping files", "acknowledgements"):
        table.add_column(col)
    for p in cfg.partners:
        ids = [f"x12 {i}" for i in p.x12_ids] + [f"edifact {i}" for i in p.edifact_ids]
        ids += [f"cxml {i}" for i in p.cxml_ids] + [f"ubl {i}" for i in p.ubl_ids]
        folder = (cfg.mappings or MAPPINGS) / p.name
        files = sorted(f.name for f in folder.glob("*.yaml")) if folder.is_dir() else []
        acks = []
        if p.acks.functional:
            acks.append("997/999/CONTRL")
        if p.acks.order_response:
            acks.append("855/ORDRSP")
        acks.append(f"TA1 {p.acks.ta1}")
        where = f" -> {p.acks.outbound}" if p.acks.outbound else " (no outbound folder)"
        table.add_row(p.name, "\n".join(ids) or "-", ", ".join(p.connectors) if p.connectors is not None else "all",
                      "\n".join(files) or "standard", ", ".join(acks) + where)
    out.print(table)


@mapping_app.command("test")
def mapping_test(
    partner: Annotated[str, typer.Argument(help="Partner name (see `gateway partners`).")],
    file: Annotated[Path, typer.Argument(help="A sample file from that partner.")],
    config: ConfigOpt = None,
    format: Annotated[str | None, typer.Option("--format", "-f")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print order and provenance as JSON Lines.")] = False,
) -> None:
    """Map FILE as PARTNER would be mapped; show each field and where it came from."""
    from gateway.translate import PartnerDirectory, Rejected, Translated
    from gateway.translate import translate as run

    cfg = _config(config, secrets_optional=True)
    directory = PartnerDirectory(cfg.partners, mappings_root=cfg.mappings)
    if partner not in directory.names():
        import difflib

        hint = difflib.get_close_matches(partner, directory.names(), n=1)
        raise GatewayError(f"no partner named {partner!r}" + (f"; did you mean {hint[0]!r}?" if hint else "; `gateway partners` lists them"))
    failed = 0
    try:
        stream = open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise GatewayError(f"{file}: cannot read: {exc.strerror}") from exc
    with stream:
        try:
            for ev in run(stream, name=file.name, format=format, partner=partner, partners=directory, trace=True):
                if isinstance(ev, Rejected):
                    failed += 1
                    err.print(f"{file}: {ev.position}: rejected ({ev.reason}): {ev.message}", markup=False)
                elif isinstance(ev, Translated):
                    if as_json:
                        sys.stdout.write(json.dumps({"order": ev.order.model_dump(mode="json"), "provenance": ev.provenance}) + "\n")
                        continue
                    _print_traced(ev)
        except InputRejected as exc:
            raise GatewayError(f"{file}: {exc.position or 'start'}: {exc.message} ({exc.reason})") from exc
    if failed:
        raise typer.Exit(1)


def _print_traced(ev: Any) -> None:
    _print_sources(ev.order.model_dump(mode="json"), ev.provenance, title=f"PO {ev.order.po_number} ({ev.position})")


def _print_sources(data: dict[str, Any], provenance: dict[str, str], *, title: str = "where each value came from") -> None:
    table = Table(title=title, show_edge=False)
    for col in ("field", "value", "from"):
        table.add_column(col, overflow="fold")
    for path, value in _leaves(data):
        if value in (None, [], {}):
            continue
        table.add_row(path, str(value)[:60], provenance.get(path) or _nearest(provenance, path))
    out.print(table)
    if not provenance:
        out.print("  (no sources recorded: processing.provenance is off, or the order predates it)", markup=False)


def _leaves(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        items: list[tuple[str, Any]] = []
        for k, v in data.items():
            items += _leaves(v, f"{prefix}.{k}" if prefix else k)
        return items
    if isinstance(data, list) and data and isinstance(data[0], (dict, list)):
        items = []
        for i, v in enumerate(data):
            items += _leaves(v, f"{prefix}[{i}]")
        return items
    return [(prefix, data)]


def _nearest(provenance: dict[str, str], path: str) -> str:
    """Provenance of the closest recorded ancestor (a party or line records its segment)."""
    while path:
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            break
        path = path[:cut]
        if path in provenance:
            return provenance[path]
    return ""


# -- master data ------------------------------------------------------------------------------

KindArg = Annotated[str, typer.Argument(help="items, xrefs, prices, stock or accounts.")]


def _kind(kind: str) -> str:
    from gateway.masterdata.model import KINDS

    if kind not in KINDS:
        raise ConfigError(f"unknown master data kind {kind!r}; one of {', '.join(KINDS)}")
    return kind


def _data_store(config: Path | None, *, existing: bool = False) -> Any:
    from gateway.store import Store

    return Store(_config(config).store.url, create=not existing)


@data_app.command("import")
def data_import(
    kind: KindArg,
    file: Annotated[Path, typer.Argument(help="A CSV (UTF-8, comma, semicolon or tab) or XLSX file with a header row.")],
    mapping: Annotated[str | None, typer.Option("--mapping", "-m", help="Column mapping: a name under mappings/masterdata/ or a .yaml file (default: KIND).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Remove the rows of KIND the file does not have (reserved stock is kept at 0 on hand).")] = False,
    encoding: Annotated[str, typer.Option("--encoding", help="Text encoding of a CSV file (cp1252, latin-1, ...).")] = "utf-8",
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Store the good rows and report the bad ones, exit 0 (default: store nothing if any row is bad, exit 1).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Load master data of KIND from FILE; every bad cell is reported with its row and column."""
    from gateway.masterdata.importer import ImportRefused, import_file, load_mapping
    from gateway.store.masterdata import unknown_skus

    kind = _kind(kind)
    cfg = _config(config)
    chosen = load_mapping(kind, mapping, roots=[cfg.mappings] if cfg.mappings else [])
    from gateway.store import Store

    store = Store(cfg.store.url)
    try:
        report = import_file(store, kind, file, mapping=chosen, replace=replace, skip_bad=skip_bad, encoding=encoding)
        unknown, first = unknown_skus(store, kind, report.file) if report.committed else (0, [])
    except ImportRefused as exc:
        err.print(f"{exc}", markup=False)
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    if unknown:
        more = ", ..." if unknown > len(first) else ""
        err.print(
            f"{report.file}: warning: {unknown} SKU(s) are not in the catalogue: {', '.join(first)}{more} "
            "(import the items, or check these rows: orders for them will be held)",
            markup=False,
        )
    for p in report.problems:
        err.print(f"{report.file}: {p}", markup=False)
    if report.bad_rows > len(report.problems):
        err.print(f"{report.file}: ... {report.bad_rows - len(report.problems)} more bad row(s) not shown", markup=False)
    if report.ignored_columns:
        err.print(f"{report.file}: columns not in the mapping, ignored: {', '.join(report.ignored_columns)}", markup=False)
    rate = report.rows / report.seconds if report.seconds else 0.0
    if report.bad_rows and not skip_bad:
        err.print(
            f"{report.file}: {report.bad_rows} of {report.rows} row(s) are bad: nothing was stored. "
            "Fix them and import again (or use --skip-bad to store the good rows).",
            markup=False,
        )
        raise typer.Exit(1)
    removed = f", {report.removed} removed (--replace)" if replace else ""
    skipped = f", {report.bad_rows} bad row(s) skipped" if report.bad_rows else ""
    out.print(
        f"{kind}: {report.stored} stored from {report.file} ({report.rows} row(s) in {report.seconds:.2f} s, "
        f"{rate:,.0f} rows/s{removed}{skipped}; mapping {report.mapping})",
        markup=False,
    )


@data_app.command("pull")
def data_pull(
    kind: Annotated[str, typer.Argument(help="What to pull: stock (on-hand quantities per warehouse).")],
    source: Annotated[str, typer.Option("--from", help="A configured connector that offers it (e.g. a Tryton ERP).")],
    replace: Annotated[bool, typer.Option("--replace", help="Remove stock rows the system no longer lists (reserved stock is kept at 0 on hand).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Refresh master data from a connector's system (run it from cron to keep stock current)."""
    from gateway import plugins
    from gateway.masterdata.importer import pull_stock

    if kind != "stock":
        raise GatewayError(f"cannot pull {kind!r}: only stock comes from a connector (gateway data import loads the rest from files)")
    cfg = _config(config)
    found = next((c for c in cfg.connectors if c.name == source), None)
    if found is None:
        names = ", ".join(c.name for c in cfg.connectors) or "none"
        raise GatewayError(f"no connector is named {source!r} (configured: {names})")
    connector = plugins.build("target", found)
    try:
        if not connector.capabilities.stock:
            raise GatewayError(f"connector {source!r} ({found.type}) does not offer stock levels")
        started = time.perf_counter()
        rows = connector.stock_levels()
    finally:
        close = getattr(connector, "close", None)
        if close is not None:
            close()
    store = _data_store(config)
    try:
        written, removed = pull_stock(store, rows, source=f"erp:{source}", replace=replace)
    finally:
        store.dispose()
    gone = f", {removed} removed" if replace else ""
    err.print(f"stock: {written} row(s) from {source} in {time.perf_counter() - started:.2f} s{gone}", markup=False)


@data_app.command("list")
def data_list(
    kind: KindArg,
    sku: Annotated[str | None, typer.Option("--sku", help="Only this SKU (accounts: this account code).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per row (values as text).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Show stored master data of KIND (with --sku: every field of that SKU's rows)."""
    from gateway.store.masterdata import list_rows

    kind = _kind(kind)
    store = _data_store(config, existing=True)
    try:
        columns, rows, total = list_rows(store, kind, sku=sku, limit=limit)
    finally:
        store.dispose()
    title = f"{kind}: {len(rows)} of {total} row(s)" + (f" for {sku}" if sku else "")
    if as_json:
        sys.stdout.write("".join(json.dumps(dict(zip(columns, r, strict=True))) + "\n" for r in rows))
    elif sku:  # one SKU's rows: field by field, nothing cut off
        out.print(title, markup=False)
        for r in rows:
            out.print("", markup=False)
            for col, value in zip(columns, r, strict=True):
                out.print(f"  {col.replace('_', ' '):<15} {value}", markup=False)
    else:
        table = Table(title=title)
        for col in columns:
            table.add_column(col.replace("_", " "))
        for r in rows:
            table.add_row(*r)
        out.print(table)
    if sku and not rows:
        raise typer.Exit(1)


@data_app.command("reservations")
def data_reservations(
    order: Annotated[str | None, typer.Option("--order", help="Only what this order holds (its id).")] = None,
    sku: Annotated[str | None, typer.Option("--sku", help="Only this SKU.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    config: ConfigOpt = None,
) -> None:
    """Stock held for accepted orders, newest first."""
    from gateway.store.masterdata import list_reservations

    store = _data_store(config, existing=True)
    try:
        held = list_reservations(store, order_id=order, sku=sku, limit=limit)
    finally:
        store.dispose()
    table = Table(title=f"{len(held)} reservation(s)" + (f" of order {order}" if order else "") + (f" of {sku}" if sku else ""))
    for col in ("order", "line", "sku", "warehouse", "quantity", "since (UTC)"):
        table.add_column(col)
    for r, since in held:
        table.add_row(r.order_id, r.line, r.sku, r.warehouse, str(r.quantity), str(since)[:19] if since else "")
    out.print(table)


@data_app.command("status")
def data_status(config: ConfigOpt = None) -> None:
    """Rows and last update per kind and source: is a price list stale?"""
    from gateway.store.masterdata import data_status as status

    store = _data_store(config, existing=True)
    try:
        lines = status(store)
    finally:
        store.dispose()
    table = Table(title="master data")
    for col in ("kind", "source", "rows", "last update (UTC)"):
        table.add_column(col)
    for s in lines:
        table.add_row(s.kind, s.source or "-", str(s.rows), str(s.updated_at)[:19] if s.updated_at else "-")
    out.print(table)


# -- configuration ----------------------------------------------------------------------------


@rules_app.command("test")
def rules_test(
    files: Annotated[list[Path], typer.Argument(help="Input files (any format the gateway reads).")],
    config: ConfigOpt = None,
    format: Annotated[str | None, typer.Option("--format", "-f", help="Input format (default: detected from the content).")] = None,
    partner: Annotated[str | None, typer.Option("--partner", "-p", help="Trading partner the input comes from.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per order: outcome, reason codes, findings with their lines.")] = False,
) -> None:
    """Run FILES through mapping, validation and the configured rules; print each decision.

    Stores nothing and sends nothing. Exit 1 when a file cannot be read or mapped."""
    from gateway.app import RulesSetup

    cfg = _config(config, secrets_optional=True)
    if not cfg.rules:
        err.print("no rules are configured (rules: in the configuration); every order would be accepted as validated", markup=False)
    setup, store = RulesSetup(cfg), None
    if cfg.rules and (cfg.masterdata is None or cfg.masterdata.folder is None):
        from gateway.rules.registry import rule_class

        if any(rule_class(r.type).needs_masterdata for r in cfg.rules):
            from gateway.store import Store

            store = Store(cfg.store.url, create=False)  # read only: the master data imported there
    reading = store.engine.connect() if store is not None else None
    try:
        engine = setup.engine(reading)
        _rules_test_run(files, engine, format=format, partner=partner, as_json=as_json, cfg=cfg)
    finally:
        if reading is not None:
            reading.close()
        if store is not None:
            store.dispose()


def _rules_test_run(files: list[Path], engine: Any, *, format: str | None, partner: str | None, as_json: bool, cfg: Any) -> None:
    from gateway.rules import Decision, Finding, Outcome
    from gateway.translate import PartnerDirectory, Rejected, Translated
    from gateway.translate import translate as run
    from gateway.validation import validate

    directory = PartnerDirectory(cfg.partners, mappings_root=cfg.mappings)
    found: list[tuple[str, Any]] = []
    failed = 0
    for f in files:
        try:
            stream = open(f, "rb")  # noqa: SIM115
        except OSError as exc:
            err.print(f"{f}: cannot read: {exc.strerror}", markup=False)
            failed += 1
            continue
        with stream:
            try:
                for ev in run(stream, name=f.name, format=format, partner=partner, partners=directory):
                    if isinstance(ev, Translated):
                        found.append((str(f), ev))
                    elif isinstance(ev, Rejected):
                        failed += 1
                        err.print(f"{f}: {ev.position}: rejected before the rules ({ev.reason}): {ev.message}", markup=False)
            except InputRejected as exc:
                failed += 1
                err.print(f"{f}: {exc.position or 'start'}: {exc.message} ({exc.reason})", markup=False)
    # Validation first, as processing does: an order it refuses never reaches the rules.
    valid = [(name, ev) for name, ev in found if not validate(ev.order)]
    decisions = iter(engine.decide([ev.order for _, ev in valid]))
    results: list[tuple[str, Any, Decision]] = []
    for name, ev in found:
        problems = validate(ev.order)
        if problems:
            decision = Decision.of(Finding("validation", Outcome.REJECT, p.reason, p.message) for p in problems)
        else:
            decision = next(decisions)
        results.append((name, ev, decision))
    if as_json:
        for name, ev, decision in results:
            record = {
                "file": name, "position": ev.position, "po_number": ev.order.po_number, "channel": ev.order.channel.value,
                "partner": ev.order.partner, "outcome": decision.outcome.value, "reason": decision.reason, "codes": decision.codes(),
                "account": decision.account, "findings": [fd.as_dict() for fd in decision.findings],
            }
            sys.stdout.write(json.dumps(record) + "\n")
    else:
        table = Table(title=f"{len(results)} order(s)", show_edge=False)
        for col in ("file", "po number", "outcome", "reasons", "line", "what the rules say"):
            table.add_column(col, overflow="fold")
        for name, ev, decision in results:
            first = True
            for fd in decision.findings or (None,):
                table.add_row(
                    Path(name).name if first else "", ev.order.po_number if first else "", decision.outcome.value.upper() if first else "",
                    f"{fd.code} ({fd.outcome.value})" if fd else "", (fd.line or "") if fd else "", fd.message if fd else "",
                )
                first = False
        out.print(table)
        counts = {o: sum(1 for *_, d in results if d.outcome is o) for o in Outcome}
        out.print(f"accept {counts[Outcome.ACCEPT]}, hold {counts[Outcome.HOLD]}, reject {counts[Outcome.REJECT]}", markup=False)
    sys.stdout.flush()
    if failed:
        raise typer.Exit(1)


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate the configuration and report every problem with its place."""
    cfg = _config(config)
    from gateway.app import check_connectors
    from gateway.redact import redact_url

    problems = check_connectors(cfg)
    if problems:
        raise ConfigError(problems)
    if cfg.rules or cfg.masterdata is not None:
        from gateway.app import RulesSetup

        RulesSetup(cfg).engine()  # the master-data folder is read: a bad row is reported now
    out.print(
        f"configuration OK: {len(cfg.sources)} source(s), {len(cfg.connectors)} connector(s), "
        f"{len(cfg.partners)} partner(s), {len(cfg.rules)} rule(s), store {redact_url(cfg.store.url)}",
        markup=False,
    )


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the configuration file."""
    from gateway.config import config_schema as full_schema

    sys.stdout.write(json.dumps(full_schema(), indent=2) + "\n")


def main() -> None:
    try:
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except ConfigError as exc:
        for p in exc.problems:
            err.print(f"config: {p}", markup=False)
        sys.exit(2)
    except GatewayError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except Exception as exc:  # the last line of defence: never a traceback for a user
        # Usage errors from the command-line parser (typer vendors its own click).
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        if os.environ.get("GATEWAY_DEBUG"):
            raise
        err.print(f"internal error: {type(exc).__name__}: {exc} (set GATEWAY_DEBUG=1 for details)", markup=False)
        sys.exit(3)


if __name__ == "__main__":
    main()

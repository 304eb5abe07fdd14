"""Decisions by a person: review, approve, reject, the exception queue, edits, releases, reprocessing."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gateway.errors import GatewayError

if TYPE_CHECKING:
    pass
from gateway.cli.common import (
    ConfigOpt,
    _config,
    _config_path,
    _gateway,
    app,
    err,
    out,
)

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
    report_edit(done, "accepted and queued")


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


def report_edit(done: Any, queued: str) -> None:
    """What an edit changed and where the new version stands (`gateway edit`, `gateway
    dead-letters edit`); exit 1 when the correction is still held or refused."""
    for change in done.changes:
        err.print(f"  {change}", markup=False)
    if done.state == "validated":
        err.print(f"order {done.order_id[:8]} (version {done.version}) {queued}; `gateway run` sends it", markup=False)
    else:
        err.print(f"order {done.order_id[:8]} (version {done.version}) is {done.state}: {done.reason}: {done.error}", markup=False)
        raise typer.Exit(1)

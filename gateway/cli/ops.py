"""Operating the gateway: `status`, `db upgrade`, `db current` and `purge`."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from gateway.cli.common import ConfigOpt, _config, _open_store, app, err, out
from gateway.errors import GatewayError
from gateway.redact import redact_url

db_app = typer.Typer(no_args_is_help=True, help="The store's schema: upgrade it as an explicit deployment step.")
app.add_typer(db_app, name="db")


def _store(config: Any) -> Any:
    """The store of an existing installation (never created here), without the gateway."""
    from gateway.store import Store

    return _open_store(Store, _config(config), create=False)


@app.command()
def status(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts and monitoring.")] = False,
) -> None:
    """Backlog per stage, throughput over the last 5 and 60 minutes, and the oldest waiting item."""
    import dataclasses

    from gateway.store.reports import duration
    from gateway.store.status import status as read_status

    store = _store(config)
    try:
        now = read_status(store)
    finally:
        store.dispose()
    if as_json:
        sys.stdout.write(json.dumps(dataclasses.asdict(now), default=lambda v: v.isoformat()) + "\n")
        return
    table = Table(title=f"backlog at {now.at:%Y-%m-%d %H:%M:%S} UTC")
    for col in ("stage", "waiting", "oldest since", "oldest waited"):
        table.add_column(col)
    for s in now.stages:
        since = f"{s.oldest_since:%Y-%m-%d %H:%M:%S}" if s.oldest_since else "-"
        table.add_row(s.name, str(s.waiting), since, duration(s.oldest_age_seconds))
    out.print(table)
    tp = Table(title="throughput")
    for col in ("last", "messages received", "orders dispatched", "documents sent"):
        tp.add_column(col)
    for t in now.throughput:
        tp.add_row(f"{t.minutes} min", str(t.messages_received), str(t.orders_dispatched), str(t.documents_sent))
    out.print(tp)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Create the store or bring its schema to this gateway's version (safe to run again;
    nodes started together on PostgreSQL wait for each other)."""
    from gateway.store import Store
    from gateway.store.schema import current_revision, head_revision

    cfg = _config(config)
    store = Store(cfg.store.url, migrate=False)
    try:
        before = current_revision(store)
        store.migrate()
        after = current_revision(store)
    finally:
        store.dispose()
    where = redact_url(cfg.store.url)
    if before == after:
        err.print(f"{where}: schema already at {after} (this gateway's {head_revision()})", markup=False)
    else:
        err.print(f"{where}: schema upgraded from {before or 'nothing'} to {after}", markup=False)


@db_app.command("current")
def db_current(config: ConfigOpt = None) -> None:
    """Print the store's schema revision and this gateway's; exit 1 when they differ."""
    from gateway.store import Store
    from gateway.store.schema import current_revision, head_revision

    cfg = _config(config)
    store = Store(cfg.store.url, migrate=False, create=False)
    try:
        found, head = current_revision(store), head_revision()
    finally:
        store.dispose()
    out.print(f"store {found or '-'}, gateway {head}", markup=False)
    if found != head:
        err.print("the schema is behind: run `gateway db upgrade`", markup=False)
        raise typer.Exit(1)


@app.command()
def purge(
    config: ConfigOpt = None,
    older_than: Annotated[
        int | None, typer.Option("--older-than", min=1, help="Days after receipt; default: retention.raw_body_days.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be removed; remove nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
) -> None:
    """Remove the raw bodies of finished messages older than the retention policy. Digests,
    metadata, canonical orders, deliveries and history are kept (README "Retention")."""
    from gateway.provenance import keep_sources
    from gateway.store.retention import purge_bodies
    from gateway.translate import PartnerDirectory

    cfg = _config(config)
    days = older_than or cfg.retention.raw_body_days
    if days is None:
        raise GatewayError("no retention policy: pass --older-than DAYS or set retention.raw_body_days")
    policy = f"older than {days} days" + ("" if older_than else " (retention.raw_body_days)")
    store = _store(config)
    partners = PartnerDirectory(cfg.partners, mappings_root=cfg.mappings)
    try:
        # An X12 or EDIFACT order's sources are read from its body when asked: kept before it goes.
        done = purge_bodies(store, days, dry_run=dry_run, policy=policy, keep=lambda ids: keep_sources(store, ids, partners))
    finally:
        store.dispose()
    if as_json:
        sys.stdout.write(
            json.dumps({"cutoff": done.cutoff.isoformat(), "messages": done.messages, "bytes": done.bytes, "dry_run": done.dry_run}) + "\n"
        )
        return
    verb = "would remove" if dry_run else "removed"
    err.print(
        f"{verb} the raw bodies of {done.messages} message(s), {done.bytes} bytes, received before "
        f"{done.cutoff:%Y-%m-%d %H:%M} UTC ({policy})",
        markup=False,
    )

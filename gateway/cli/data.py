"""Master data: catalogue, prices, stock and customer accounts."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gateway.errors import ConfigError, GatewayError

if TYPE_CHECKING:
    pass
from gateway.cli.common import (
    ConfigOpt,
    _config,
    data_app,
    err,
    out,
)

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


@data_app.command("push")
def data_push(
    kind: Annotated[str, typer.Argument(help="What to push: stock (available quantities, to a shop).")],
    shop: Annotated[str, typer.Option("--to", help="A shop configured under stock_push:.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be sent.")] = False,
    everything: Annotated[bool, typer.Option("--all", help="Send every level, not only what changed since the shop last confirmed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The report as one JSON object.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Tell a shop our available stock (on hand less reserved) for the SKUs whose level changed."""
    from gateway.shop_stock import push_stock

    if kind != "stock":
        raise GatewayError(f"cannot push {kind!r}: only stock goes to the shops")
    cfg = _config(config)
    found = next((s for s in cfg.stock_push if s.name == shop), None)
    if found is None:
        names = ", ".join(s.name for s in cfg.stock_push) or "none"
        raise GatewayError(f"no shop is named {shop!r} under stock_push: (configured: {names})")
    store = _data_store(config, existing=True)
    started = time.perf_counter()
    try:
        report = push_stock(store, found, dry_run=dry_run, everything=everything)
    finally:
        store.dispose()
    seconds = time.perf_counter() - started
    if as_json:
        sys.stdout.write(json.dumps({
            "shop": shop, "changed": report.changed, "sent": len(report.sent), "not_in_shop": report.not_in_shop,
            "failed": [{"sku": k, "why": w} for k, w in report.failed], "stopped": report.stopped,
            "calls": report.calls, "seconds": round(seconds, 2), "dry_run": dry_run,
        }) + "\n")  # fmt: skip
    else:
        verb = "would be sent" if dry_run else f"sent in {report.calls} call(s), {seconds:.1f} s"
        err.print(f"stock to {shop}: {report.changed} level(s) changed, {len(report.sent)} {verb}", markup=False)
        if report.not_in_shop:
            more = f" and {len(report.not_in_shop) - 10} more" if len(report.not_in_shop) > 10 else ""
            err.print(f"not in the shop (skipped): {', '.join(report.not_in_shop[:10])}{more}", markup=False)
        for sku, why in report.failed[:20]:
            err.print(f"{sku}: {why}", markup=False)
        if report.stopped:
            err.print(f"stopped early: {report.stopped}; the rest goes with the next push", markup=False)
    if report.failed or report.stopped:
        raise typer.Exit(1)


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

"""`gateway connectors`: each connector's circuit breaker and limits; `gateway config verify`:
check the connectors' credentials against their systems."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gateway.cli.common import ConfigOpt, _config, _gateway, app, config_app, err, out
from gateway.connector import Connector
from gateway.errors import ConfigError, DeliveryError, TransientError


@app.command()
def connectors(config: ConfigOpt = None) -> None:
    """Each connector: its circuit breaker (closed, open, half_open: probing), the transient
    failures in a row counted by every node, when a probe may go, and its rate limit."""
    from gateway.store.breakers import states

    gw = _gateway(config, existing=True)
    try:
        found = states(gw.store)
        table = Table(title=f"{len(gw.config.connectors)} connector(s)")
        for col in ("connector", "type", "breaker", "failures in a row", "opened", "next probe", "opens after", "rate limit"):
            table.add_column(col)
        for c in gw.config.connectors:
            b = found.get(c.name)
            state = "off" if c.breaker is None else b.state if b is not None else "closed"
            table.add_row(
                c.name, c.type, state, str(b.failures if b is not None else 0),
                _when(b.opened_at if b is not None and b.blocks else None), _when(b.retry_at if b is not None and b.blocks else None),
                f"{c.breaker.failures} failures, {c.breaker.open_seconds:g} s" if c.breaker else "-",
                f"{c.rate_per_second:g}/s" if c.rate_per_second else "-",
            )
    finally:
        gw.close()
    out.print(table)


def _when(value: object) -> str:
    return str(value)[:19] if value is not None else "-"


@config_app.command("verify")
def config_verify(
    names: Annotated[list[str] | None, typer.Argument(help="Connector names (default: every connector that can be verified).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Log in to each connector's system and check its permissions, writing nothing there.

    Odoo: login and the right to create sales orders; ERPNext: the user the key belongs to and
    read access to Sales Orders; HubSpot: the token and a unique-valued key property. Exit 1
    when one fails."""
    from connectors.targets.rest import Verifiable
    from gateway.plugins import build

    cfg = _config(config)
    chosen = [c for c in cfg.connectors if not names or c.name in names]
    unknown = sorted(set(names or []) - {c.name for c in cfg.connectors})
    if unknown:
        raise ConfigError(f"no connector named {', '.join(unknown)} in the configuration")
    failed = checked = 0
    for item in chosen:
        connector: Connector = build("target", item)
        try:
            if not isinstance(connector, Verifiable):
                if names:
                    err.print(f"{item.name}: the {item.type} connector cannot be verified", markup=False)
                continue
            checked += 1
            try:
                out.print(f"{item.name}: ok: {connector.verify()}", markup=False)
            except (DeliveryError, ConfigError) as exc:
                failed += 1
                kind = "unreachable (transient)" if isinstance(exc, TransientError) else "failed"
                err.print(f"{item.name}: {kind}: {exc}", markup=False)
        finally:
            connector.close()
    if not checked:
        err.print("no connector that can be verified (odoo, erpnext, hubspot)", markup=False)
    if failed:
        raise typer.Exit(1)

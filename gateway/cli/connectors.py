"""`gateway config verify`: check the connectors' credentials against their systems."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli.common import ConfigOpt, _config, config_app, err, out
from gateway.connector import Connector
from gateway.errors import ConfigError, DeliveryError, TransientError


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

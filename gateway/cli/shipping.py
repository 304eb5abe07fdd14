"""Asking shipping services about orders they took (`Capabilities.shipments`)."""

from __future__ import annotations

from typing import Annotated, cast

import typer
from rich.table import Table

from gateway.cli.common import ConfigOpt, _gateway, app, out
from gateway.errors import GatewayError


@app.command()
def shipped(
    order: Annotated[str, typer.Argument(help="Order id (or its first characters) or PO number.")],
    config: ConfigOpt = None,
    record: Annotated[bool, typer.Option("--record", help="Record what shipped on the order (shipped, tracking in its history, 856/DESADV).")] = False,
) -> None:
    """Ask each shipping connector that took ORDER whether it shipped it, with tracking numbers.

    With --record, each shipment found is recorded as `gateway ship` would (the same tracking
    number twice is recorded once); the service does this itself for connectors with
    poll_status_minutes."""
    from gateway import plugins
    from gateway.connector import ShipmentFound, StatusSource
    from gateway.fulfilment import Fulfilment
    from gateway.store.queries import order_detail
    from gateway.tracking import record_found

    gw = _gateway(config, existing=True)
    try:
        detail = order_detail(gw.store, order)
        configured = {c.name: c for c in gw.config.connectors}
        table = Table(title=f"order {detail.order['id'][:8]} PO {detail.order['po_number'] or '-'}")
        for col in ("connector", "reference", "shipped", "carrier", "service", "tracking"):
            table.add_column(col)
        asked = 0
        recorded: list[str] = []
        state = str(detail.order["state"])
        for d in detail.deliveries:
            cfg = configured.get(d["connector"])
            reference = (d["receipt"] or {}).get("reference")
            if cfg is None or d["state"] != "sent" or not reference:
                continue
            connector = plugins.build("target", cfg)
            try:
                if not connector.capabilities.shipments:
                    continue
                asked += 1
                found = cast("StatusSource", connector).status(str(reference))
            finally:
                connector.close()
            if record and found.shipped:
                for done in record_found(Fulfilment(gw.store, gw.config), detail.order["id"], d["connector"], found, state):
                    state = done.state
                    recorded.append(f"recorded: order {done.order_id[:8]} is {done.state}" + (f"; {', '.join(done.documents)}" if done.documents else ""))
            if not found.shipped:
                table.add_row(d["connector"], str(reference), "not yet", "", "", "")
            for s in (found.shipments or (ShipmentFound(),)) if found.shipped else ():
                table.add_row(d["connector"], str(reference), str(s.ship_date or "yes"), s.carrier or "", s.service or "", s.tracking or "")
    finally:
        gw.close()
    if not asked:
        raise GatewayError(f"order {order} was not sent to a connector that can say whether it shipped (shipstation)")
    out.print(table)
    for line in recorded:
        out.print(line, markup=False)
    if record and not recorded:
        out.print("nothing new to record", markup=False)

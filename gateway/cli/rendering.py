"""`gateway mapping render CONNECTOR ORDER`: the exact request a connector would send for a
stored order, so an integrator can check a payload mapping before go-live. Nothing is sent
and nothing is resolved: the connector's `render` (gateway.connector.Renderer) shares its
code with `send`; secrets are masked."""

from __future__ import annotations

import difflib
import json
import sys
from typing import Annotated, Any

import typer

from gateway.cli.common import ConfigOpt, _config, err, mapping_app
from gateway.errors import GatewayError


def _no_dns(host: str, port: int) -> list[str]:
    """Render builds the connector without looking its host up (no network I/O)."""
    return []


def _connector(cfg: Any, name: str) -> Any:
    from gateway import plugins

    by_name = {c.name: c for c in cfg.connectors}
    item = by_name.get(name)
    if item is None:
        near = difflib.get_close_matches(name, list(by_name), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else f" (configured: {', '.join(sorted(by_name)) or 'none'})"
        raise GatewayError(f"no connector named {name!r}{hint}")
    cls = plugins.plugin_class("target", item.type)
    connector = cls(item, resolver=_no_dns) if item.type == "http_json" else cls(item)
    if not connector.capabilities.renders:
        connector.close()
        raise GatewayError(f"connector {name!r} (type {item.type}) cannot show its request: only http_json and tryton render")
    return connector


@mapping_app.command("render")
def render(
    connector: Annotated[str, typer.Argument(help="Connector name (from the configuration's connectors).")],
    order: Annotated[str, typer.Argument(help="Order id (or its first characters) or PO number.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: method, url, headers, body (text), placeholders.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Print the exact request CONNECTOR would send for a stored ORDER (method, URL, headers with secrets masked, body); nothing is sent."""
    from gateway.store import Store
    from gateway.store.rendering import delivery_for

    cfg = _config(config)
    target = _connector(cfg, connector)
    store = Store(cfg.store.url, create=False)
    try:
        rendered = target.render(delivery_for(store, order, connector))
    finally:
        store.dispose()
        target.close()
    body = rendered.body.decode("utf-8", "replace") if rendered.body is not None else None
    if as_json:
        sys.stdout.write(json.dumps({"method": rendered.method, "url": rendered.url, "headers": rendered.headers, "body": body,
                                     "placeholders": rendered.placeholders, "note": rendered.note}) + "\n")
        return
    lines = [f"{rendered.method} {rendered.url}", *(f"{k}: {v}" for k, v in rendered.headers.items()), ""]
    sys.stdout.write("\n".join(lines) + "\n" + (body or "") + ("\n" if body else ""))
    if rendered.note:
        err.print(f"note: {rendered.note}", markup=False)
    for placeholder, meaning in rendered.placeholders.items():
        err.print(f"  {placeholder}: {meaning}", markup=False)

"""Partners and mappings."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gateway.errors import GatewayError, InputRejected

if TYPE_CHECKING:
    pass
from gateway.cli.common import (
    ConfigOpt,
    _config,
    app,
    err,
    mapping_app,
    out,
)

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


def _print_sources(data: dict[str, Any], provenance: dict[str, str], *, title: str = "where each value came from", note: str | None = None) -> None:
    table = Table(title=title, show_edge=False)
    for col in ("field", "value", "from"):
        table.add_column(col, overflow="fold")
    for path, value in _leaves(data):
        if value in (None, [], {}):
            continue
        table.add_row(path, str(value)[:60], provenance.get(path) or _nearest(provenance, path))
    out.print(table)
    if note is not None:
        out.print(f"  ({note})", markup=False)
    elif not provenance:
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

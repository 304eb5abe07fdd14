"""Doing the work: ingest files, run the service, the demo."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.errors import ConfigError

if TYPE_CHECKING:
    pass
from gateway.cli.common import (
    EXAMPLES,
    ConfigOpt,
    _config,
    _config_path,
    _gateway,
    app,
    err,
    out,
)
from gateway.cli.orders import _orders_table

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
    """Run the gateway: poll sources, make orders, deliver them. Stops cleanly on SIGTERM.

    With --once, each connector with poll_status_minutes is first asked once what became of
    the orders it took (shipments, invoices); the documents that earns are sent in the run."""
    gw = _gateway(config)
    if once:
        from gateway.tracking import poll_configured

        try:
            poll_configured(gw.store, gw.config)
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
    from gateway.cli.users import console_address

    if (address := console_address(gw.config)) is not None:
        out.print(f"\nweb console: {address} (`gateway users add NAME --role admin`, then `gateway run`)", markup=False)

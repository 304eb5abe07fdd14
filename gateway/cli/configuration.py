"""Rules and configuration checks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gateway.errors import ConfigError, InputRejected

if TYPE_CHECKING:
    pass
from gateway.cli.common import (
    ConfigOpt,
    _config,
    config_app,
    err,
    out,
    rules_app,
)

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

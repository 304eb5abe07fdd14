"""`gateway report ...`: volumes, touchless rate, exceptions, cycle time and dead-letter age.

The figures come from `gateway.store.reports` (definitions there and in the README); this
module only parses the period and prints a table, JSON Lines or a spreadsheet-safe CSV file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gateway.cli.common import ConfigOpt, _config, _open_store, app, err, out
from gateway.errors import GatewayError

report_app = typer.Typer(no_args_is_help=True, help="Reports: volumes, touchless rate, exceptions, cycle time, dead-letter age.")
app.add_typer(report_app, name="report")

SinceOpt = Annotated[str | None, typer.Option("--since", help="From this UTC date or ISO time on (inclusive).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Up to this UTC date (inclusive: the whole day) or ISO time (exclusive).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per row, for scripts.")]
CsvOpt = Annotated[Path | None, typer.Option("--csv", help="Also write the rows to this CSV file (safe to open in a spreadsheet).", dir_okay=False)]


def parse_when(value: str | None, *, end: bool = False) -> dt.datetime | None:
    """A --since/--until value as aware UTC: a date is its day's start (for `end`, the next
    day's start, so the day is included); a time without a zone is UTC."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            return start + dt.timedelta(days=1) if end else start
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise GatewayError(f"{value!r} is not a date (2026-12-01) or an ISO time (2026-12-01T08:00:00Z)") from None
    return when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _emit(
    config: Path | None,
    since: str | None,
    until: str | None,
    as_json: bool,
    csv: Path | None,
    query: Callable[..., list[Any]],
    row_type: Any,
    title: str,
    columns: dict[str, Callable[[Any], str]],
) -> None:
    """Run one report and print it as asked."""
    start, stop = parse_when(since), parse_when(until, end=True)
    if start and stop and stop <= start:
        raise GatewayError("--until is not after --since: the period is empty")
    from gateway.store import Store

    store = _open_store(Store, _config(config), create=False)  # the store only: no sources or connectors
    try:
        rows = query(store, start, stop)
    finally:
        store.dispose()
    if csv is not None:
        from gateway.csvexport import write_csv

        n = write_csv(csv, row_type, rows)
        err.print(f"{n} row(s) written to {csv}", markup=False)
    if as_json:
        from gateway.cli.orders import _json_lines

        _json_lines(rows)
        return
    if csv is not None:
        return
    span = f" from {start:%Y-%m-%d %H:%M}" if start else ""
    span += f" until {stop:%Y-%m-%d %H:%M}" if stop else ""
    table = Table(title=f"{title}{span} (UTC)")
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(*(fmt(r) for fmt in columns.values()))
    out.print(table)


@report_app.command()
def volumes(config: ConfigOpt = None, since: SinceOpt = None, until: UntilOpt = None, as_json: JsonOpt = False, csv: CsvOpt = None) -> None:
    """Orders read per UTC day, channel and partner."""
    from gateway.store.reports import VolumeRow
    from gateway.store.reports import volumes as query

    _emit(config, since, until, as_json, csv, query, VolumeRow, "orders per day", {
        "day": lambda r: r.day.isoformat(), "channel": lambda r: r.channel,
        "partner": lambda r: r.partner or "-", "orders": lambda r: str(r.orders),
    })


@report_app.command()
def touchless(config: ConfigOpt = None, since: SinceOpt = None, until: UntilOpt = None, as_json: JsonOpt = False, csv: CsvOpt = None) -> None:
    """Orders dispatched with no person's action, per channel ("*": all)."""
    from gateway.store.reports import Touchless
    from gateway.store.reports import touchless as query

    _emit(config, since, until, as_json, csv, query, Touchless, "touchless rate", {
        "channel": lambda r: r.channel, "orders": lambda r: str(r.orders), "dispatched": lambda r: str(r.dispatched),
        "touchless": lambda r: str(r.touchless), "rate": lambda r: _percent(r.rate),
    })


@report_app.command()
def exceptions(config: ConfigOpt = None, since: SinceOpt = None, until: UntilOpt = None, as_json: JsonOpt = False, csv: CsvOpt = None) -> None:
    """Orders held or refused, by reason ("*": any reason), as a share of the orders read."""
    from gateway.store.reports import ExceptionRate
    from gateway.store.reports import exceptions as query

    _emit(config, since, until, as_json, csv, query, ExceptionRate, "exception rate", {
        "reason": lambda r: r.reason, "orders": lambda r: str(r.orders), "rate": lambda r: _percent(r.rate),
    })


@report_app.command("cycle-time")
def cycle_time(config: ConfigOpt = None, since: SinceOpt = None, until: UntilOpt = None, as_json: JsonOpt = False, csv: CsvOpt = None) -> None:
    """Receipt of the message to dispatch of the order: p50, p95 and max per channel."""
    from gateway.store.reports import CycleTime, duration
    from gateway.store.reports import cycle_time as query

    _emit(config, since, until, as_json, csv, query, CycleTime, "cycle time, receipt to dispatch", {
        "channel": lambda r: r.channel, "orders": lambda r: str(r.orders), "p50": lambda r: duration(r.p50_seconds),
        "p95": lambda r: duration(r.p95_seconds), "max": lambda r: duration(r.max_seconds),
    })


@report_app.command("dead-letter-age")
def dead_letter_age(config: ConfigOpt = None, since: SinceOpt = None, until: UntilOpt = None, as_json: JsonOpt = False, csv: CsvOpt = None) -> None:
    """Dead letters per kind and connector, and how long they have waited since giving up."""
    from gateway.store.reports import DeadLetterAge, duration
    from gateway.store.reports import dead_letter_age as query

    _emit(config, since, until, as_json, csv, query, DeadLetterAge, "dead letters", {
        "kind": lambda r: r.kind, "connector": lambda r: r.connector, "count": lambda r: str(r.count),
        "dead since": lambda r: f"{r.oldest_dead_since:%Y-%m-%d %H:%M}", "oldest": lambda r: duration(r.oldest_age_seconds),
        "median": lambda r: duration(r.median_age_seconds),
    })


__all__ = ["parse_when", "report_app"]

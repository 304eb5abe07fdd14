"""The console's reports page: the `gateway report` figures (gateway.store.reports) as charts,
tables and spreadsheet-safe CSV downloads (gateway.csvexport), for a period of UTC days.

    period = Period.parse({"since": "2026-11-01", "until": "2026-11-30"}, today)
    sections(store, period, partner="acme")   -> one Section per report: chart, table
    csv_text(store, "volumes", period, partner=None) -> the report's rows as CSV

Nothing here formats a number differently from the CLI: the same queries, the same fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from gateway.console.charts import bar_chart, line_chart
from gateway.csvexport import write_rows
from gateway.store import reports as rq
from gateway.store.db import Store

__all__ = ["DEFAULT_DAYS", "REPORTS", "Period", "Section", "csv_text", "sections"]

DEFAULT_DAYS = 30
MAX_DAYS = 3660


@dataclass(frozen=True, slots=True)
class Period:
    """UTC days `since` to `until`, both included."""

    since: dt.date
    until: dt.date

    @classmethod
    def parse(cls, given: Mapping[str, str], today: dt.date, problems: list[str] | None = None) -> Period:
        """The period a form asks for; the last DEFAULT_DAYS days up to `today` when it asks
        for none or for something that is not a period (said in `problems`)."""
        problems = problems if problems is not None else []
        until = _day(given.get("until"), "until", problems) or today
        since = _day(given.get("since"), "since", problems) or until - dt.timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            problems.append("'since' is after 'until': showing the last 30 days up to 'until'")
            since = until - dt.timedelta(days=DEFAULT_DAYS - 1)
        if (until - since).days >= MAX_DAYS:
            problems.append(f"at most {MAX_DAYS} days at once")
            since = until - dt.timedelta(days=MAX_DAYS - 1)
        return cls(since, until)

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.since, dt.time(), tzinfo=dt.UTC)

    @property
    def stop(self) -> dt.datetime:
        """The first instant after the period (queries take `until` exclusive)."""
        return dt.datetime.combine(self.until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    def days(self) -> list[dt.date]:
        return [self.since + dt.timedelta(days=i) for i in range((self.until - self.since).days + 1)]


def _day(value: str | None, name: str, problems: list[str]) -> dt.date | None:
    if not value or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        problems.append(f"{name}: {value[:20]!r} is not a date (YYYY-MM-DD)")
        return None


def _scale(values: list[float]) -> tuple[float, str]:
    """A divisor and unit so the largest of `values` (seconds) reads well on an axis."""
    top = max(values, default=0.0)
    if top < 120:
        return 1.0, "s"
    if top < 7200:
        return 60.0, "m"
    if top < 172800:
        return 3600.0, "h"
    return 86400.0, "d"


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


@dataclass(frozen=True, slots=True)
class Section:
    """One report on the page: its chart, its table and where its CSV is."""

    name: str
    title: str
    chart: Markup
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass(frozen=True, slots=True)
class _Report:
    title: str
    query: Callable[[Store, dt.datetime | None, dt.datetime | None], list[Any]]
    row_type: Any


#: The reports the page shows and offers as CSV, by the name in their URL.
REPORTS: dict[str, _Report] = {
    "volumes": _Report("Orders per day by channel", rq.volumes, rq.VolumeRow),
    "touchless": _Report("Touchless rate per channel", rq.touchless, rq.Touchless),
    "exceptions": _Report("Exception rate by reason", rq.exceptions, rq.ExceptionRate),
    "cycle-time": _Report("Cycle time, receipt to dispatch", rq.cycle_time, rq.CycleTime),
    "dead-letter-age": _Report("Dead-letter age per connector", rq.dead_letter_age, rq.DeadLetterAge),
}


def _rows(store: Store, name: str, period: Period, partner: str | None) -> list[Any]:
    rows = REPORTS[name].query(store, period.start, period.stop)
    if name == "volumes" and partner:
        rows = [r for r in rows if r.partner == partner]
    return rows


def csv_text(store: Store, name: str, period: Period, partner: str | None = None) -> str:
    """Report `name`'s rows as CSV, one column per field, every cell safe for a spreadsheet."""
    report = REPORTS[name]
    fields = [f.name for f in dataclasses.fields(report.row_type)]
    out = io.StringIO()
    write_rows(out, fields, ([getattr(r, f) for f in fields] for r in _rows(store, name, period, partner)))
    return out.getvalue()


def partners_of(rows: list[rq.VolumeRow]) -> list[str]:
    return sorted({r.partner for r in rows if r.partner})


def sections(store: Store, period: Period, partner: str | None = None) -> tuple[list[Section], list[str]]:
    """Every report of the period as a Section, and the partners that sent orders in it."""
    everyone = rq.volumes(store, period.start, period.stop)
    volumes = [r for r in everyone if not partner or r.partner == partner]
    return [
        _volumes(volumes, period, partner),
        _touchless(_rows(store, "touchless", period, None)),
        _exceptions(_rows(store, "exceptions", period, None)),
        _cycle(_rows(store, "cycle-time", period, None)),
        _dead(_rows(store, "dead-letter-age", period, None)),
    ], partners_of(everyone)


def _volumes(rows: list[rq.VolumeRow], period: Period, partner: str | None) -> Section:
    days = period.days()
    if len(days) > 120:  # too many bars to read: only the days that had orders
        days = sorted({r.day for r in rows})
    index = {d: i for i, d in enumerate(days)}
    channels = sorted({r.channel for r in rows})
    series = {c: [0.0] * len(days) for c in channels}
    for r in rows:
        if r.day in index:
            series[r.channel][index[r.day]] += r.orders
    title = REPORTS["volumes"].title + (f" (partner {partner})" if partner else "")
    total = sum(r.orders for r in rows)
    return Section(
        "volumes", title,
        bar_chart(title, [d.isoformat() for d in days], series, stacked=True),
        ["day", "channel", "partner", "orders"],
        [[r.day.isoformat(), r.channel, r.partner or "-", str(r.orders)] for r in rows],
        note=f"{total} order(s) read",
    )


def _touchless(rows: list[rq.Touchless]) -> Section:
    shown = [r for r in rows if r.orders]
    chart = bar_chart(
        REPORTS["touchless"].title, [("all" if r.channel == "*" else r.channel) for r in shown],
        {"touchless %": [round(r.rate * 100, 1) for r in shown]}, unit="%",
    )
    return Section(
        "touchless", REPORTS["touchless"].title, chart, ["channel", "orders", "dispatched", "touchless", "rate"],
        [[r.channel, str(r.orders), str(r.dispatched), str(r.touchless), _percent(r.rate)] for r in rows],
    )


def _exceptions(rows: list[rq.ExceptionRate]) -> Section:
    reasons = [r for r in rows if r.reason != "*"]
    chart = bar_chart(
        REPORTS["exceptions"].title, [r.reason for r in reasons], {"% of orders": [round(r.rate * 100, 1) for r in reasons]}, unit="%",
    )
    return Section(
        "exceptions", REPORTS["exceptions"].title, chart, ["reason", "orders", "rate"],
        [[r.reason, str(r.orders), _percent(r.rate)] for r in rows],
    )


def _cycle(rows: list[rq.CycleTime]) -> Section:
    shown = [r for r in rows if r.orders]
    divisor, unit = _scale([r.p95_seconds or 0.0 for r in shown])
    chart = line_chart(
        REPORTS["cycle-time"].title, [("all" if r.channel == "*" else r.channel) for r in shown],
        {
            "p50": [None if r.p50_seconds is None else round(r.p50_seconds / divisor, 1) for r in shown],
            "p95": [None if r.p95_seconds is None else round(r.p95_seconds / divisor, 1) for r in shown],
        },
        unit=unit,
    )
    return Section(
        "cycle-time", REPORTS["cycle-time"].title, chart, ["channel", "orders", "p50", "p95", "max"],
        [[r.channel, str(r.orders), rq.duration(r.p50_seconds), rq.duration(r.p95_seconds), rq.duration(r.max_seconds)] for r in rows],
    )


def _dead(rows: list[rq.DeadLetterAge]) -> Section:
    divisor, unit = _scale([r.oldest_age_seconds for r in rows])
    names = [f"{r.connector} ({r.kind})" for r in rows]
    chart = bar_chart(
        REPORTS["dead-letter-age"].title, names,
        {
            "oldest": [round(r.oldest_age_seconds / divisor, 1) for r in rows],
            "median": [round(r.median_age_seconds / divisor, 1) for r in rows],
        },
        unit=unit,
    )
    return Section(
        "dead-letter-age", REPORTS["dead-letter-age"].title, chart, ["kind", "connector", "count", "dead since", "oldest", "median"],
        [
            [r.kind, r.connector, str(r.count), f"{r.oldest_dead_since:%Y-%m-%d %H:%M}", rq.duration(r.oldest_age_seconds), rq.duration(r.median_age_seconds)]
            for r in rows
        ],
    )

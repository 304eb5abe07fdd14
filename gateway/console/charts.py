"""Bar and line charts as inline SVG, drawn on the server: no JavaScript, nothing fetched.

    bar_chart("Orders per day", ["2026-12-01", ...], {"x12": [3, 5], "cxml": [1, 0]}, stacked=True)
    line_chart("Cycle time", ["x12", "cxml"], {"p50": [12.0, 30.0], "p95": [40.0, 95.0]}, unit="s")

Each returns Markup (safe to put in a Jinja template as is): every text that reaches the SVG
(titles, category and series names, which may come from partners' messages) is escaped
here. Colours are SVG attributes, not `style`, so the console's Content-Security-Policy
(no inline styles) holds. Every bar and point carries `data-series`, `data-category` and
`data-value` and a `<title>` tooltip, so people (and tests) read the exact number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup

__all__ = ["PALETTE", "bar_chart", "line_chart", "nice_top"]

#: Colours of the series in order (colour-blind safe, Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")

WIDTH, HEIGHT = 720, 290
LEFT, RIGHT, TOP, BOTTOM = 84, 12, 28, 94
MAX_CATEGORIES = 120  # beyond this the labels are unreadable; the table below has every row


def nice_top(value: float) -> float:
    """A round number at or above `value` for the top of the y axis (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _number(value: float, unit: str) -> str:
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text}{unit}"


def _frame(title: str, top: float, unit: str, categories: Sequence[str], kind: str) -> list[Markup]:
    """The SVG's opening, title, y axis with four gridlines and x labels."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        Markup('<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{}" viewBox="0 0 {} {}" role="img" aria-label="{}">').format(
            kind, WIDTH, HEIGHT, title
        ),
        Markup("<title>{}</title>").format(title),
        Markup('<text x="{}" y="16" font-size="13" font-weight="bold" fill="#1d1d1f">{}</text>').format(LEFT, title),
    ]
    for i in range(5):
        value = top * i / 4
        y = f"{TOP + plot_h - plot_h * i / 4:.1f}"
        parts.append(Markup('<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd" stroke-width="1"/>').format(LEFT, LEFT + plot_w, y, y))
        parts.append(
            Markup('<text class="y-label" x="{}" y="{:.1f}" font-size="11" text-anchor="end" fill="#555">{}</text>').format(
                LEFT - 6, float(y) + 4, _number(value, unit)
            )
        )
    step = plot_w / max(1, len(categories))
    every = max(1, math.ceil(len(categories) / 24))  # at most ~24 labels on the x axis
    for i, name in enumerate(categories):
        if i % every:
            continue
        x, y = f"{LEFT + step * (i + 0.5):.1f}", f"{TOP + plot_h + 12:.1f}"
        label = name if len(name) <= 14 else name[:13] + "…"
        parts.append(
            Markup(
                '<text class="x-label" x="{}" y="{}" font-size="11" text-anchor="end" fill="#333" transform="rotate(-35 {} {})">{}</text>'
            ).format(x, y, x, y, label)
        )
    parts.append(Markup('<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#333" stroke-width="1"/>').format(LEFT, LEFT + plot_w, TOP + plot_h, TOP + plot_h))
    return parts


def _legend(series: Sequence[str]) -> list[Markup]:
    parts = []
    x = max(LEFT, WIDTH - RIGHT - sum(24 + 7 * min(len(name), 24) for name in series))  # right-aligned, clear of the title
    for i, name in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(Markup('<rect x="{}" y="7" width="10" height="10" fill="{}"/>').format(x, colour))
        parts.append(Markup('<text class="legend" x="{}" y="16" font-size="11" fill="#333">{}</text>').format(x + 14, name[:24]))
        x += 24 + 7 * min(len(name), 24)
    return parts


def _checked(categories: Sequence[str], series: Mapping[str, Sequence[float]]) -> tuple[list[str], dict[str, list[float]]]:
    cats = [str(c) for c in categories][:MAX_CATEGORIES]
    values = {str(k): [max(0.0, float(v or 0)) for v in vs][: len(cats)] for k, vs in series.items()}
    for name, vs in values.items():
        if len(vs) != len(cats):
            raise ValueError(f"series {name!r} has {len(vs)} values for {len(cats)} categories")
    return cats, values


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    stacked: bool = False,
    unit: str = "",
) -> Markup:
    """Bars per category, one colour per series: stacked on each other or side by side."""
    cats, values = _checked(categories, series)
    if not cats or not values:
        return Markup('<p class="hint">No data in this period.</p>')
    totals = [sum(vs[i] for vs in values.values()) for i in range(len(cats))] if stacked else [
        max(vs[i] for vs in values.values()) for i in range(len(cats))
    ]
    top = nice_top(max(totals))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / len(cats)
    gap = step * 0.2
    width = (step - gap) if stacked else (step - gap) / len(values)
    parts = _frame(title, top, unit, cats, "bar")
    base = [0.0] * len(cats)
    for s, (name, vs) in enumerate(values.items()):
        colour = PALETTE[s % len(PALETTE)]
        for i, value in enumerate(vs):
            if value <= 0:
                continue
            h = plot_h * value / top
            x = LEFT + step * i + gap / 2 + (0 if stacked else width * s)
            y = TOP + plot_h - h - (plot_h * base[i] / top if stacked else 0)
            if stacked:
                base[i] += value
            parts.append(
                Markup(
                    '<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}" '
                    'data-series="{}" data-category="{}" data-value="{}"><title>{}, {}: {}</title></rect>'
                ).format(x, y, max(width, 1), h, colour, name, cats[i], _number(value, ""), name, cats[i], _number(value, unit))
            )
    parts += _legend(list(values))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def line_chart(title: str, categories: Sequence[str], series: Mapping[str, Sequence[float | None]], *, unit: str = "") -> Markup:
    """One line per series across the categories, a dot at each value (None: no dot, a gap)."""
    cats = [str(c) for c in categories][:MAX_CATEGORIES]
    known = {str(k): [None if v is None else max(0.0, float(v)) for v in vs][: len(cats)] for k, vs in series.items()}
    present = [v for vs in known.values() for v in vs if v is not None]
    if not cats or not present:
        return Markup('<p class="hint">No data in this period.</p>')
    top = nice_top(max(present))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / len(cats)
    parts = _frame(title, top, unit, cats, "line")
    for s, (name, vs) in enumerate(known.items()):
        colour = PALETTE[s % len(PALETTE)]
        points = [(LEFT + step * (i + 0.5), TOP + plot_h - plot_h * v / top, i, v) for i, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            parts.append(Markup('<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>').format(path, colour))
        for x, y, i, v in points:
            parts.append(
                Markup(
                    '<circle class="point" cx="{:.1f}" cy="{:.1f}" r="4" fill="{}" data-series="{}" data-category="{}" '
                    'data-value="{}"><title>{}, {}: {}</title></circle>'
                ).format(x, y, colour, name, cats[i], _number(v, ""), name, cats[i], _number(v, unit))
            )
    parts += _legend(list(known))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)

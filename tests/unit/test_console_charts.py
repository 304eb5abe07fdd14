"""The console's server-drawn charts and report period: text is escaped, numbers are exact,
stacked bars add up, an empty report says so (gateway.console.charts, gateway.console.reports)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from gateway.console.charts import bar_chart, line_chart, nice_top
from gateway.console.reports import Period


def test_bars_carry_their_exact_values_and_stack_per_category() -> None:
    svg = str(bar_chart("Orders", ["d1", "d2"], {"x12": [3, 0], "cxml": [2, 5]}, stacked=True))
    bars = re.findall(r'data-series="([^"]+)" data-category="([^"]+)" data-value="([^"]+)"', svg)
    assert bars == [("x12", "d1", "3"), ("cxml", "d1", "2"), ("cxml", "d2", "5")]  # no bar for a zero
    heights = [float(h) for h in re.findall(r'class="bar"[^>]* height="([\d.]+)"', svg)]
    assert heights[0] + heights[1] == pytest.approx(heights[2])  # 3 + 2 stacked as tall as 5
    assert ">5<" in svg and "<title>cxml, d2: 5</title>" in svg  # the y axis tops out at a round 5


def test_text_from_messages_is_escaped_in_every_place_it_appears() -> None:
    evil = '<script>alert(1)</script>"&'
    for svg in (
        str(bar_chart(evil, [evil], {evil: [1]})),
        str(line_chart(evil, [evil, "b"], {evil: [1.5, None]}, unit="s")),
    ):
        assert "<script>" not in svg and '</script>"&' not in svg
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&amp;" in svg


def test_lines_leave_gaps_and_an_empty_chart_says_there_is_no_data() -> None:
    svg = str(line_chart("Cycle", ["x12", "cxml"], {"p50": [12.0, None], "p95": [40.0, 95.0]}, unit="s"))
    assert svg.count('class="point"') == 3 and svg.count("<polyline") == 1
    assert "No data" in str(bar_chart("t", [], {})) and "No data" in str(line_chart("t", ["a"], {"p": [None]}))
    assert [nice_top(v) for v in (0, 0.3, 7, 112, 250)] == [1.0, 0.5, 10.0, 200.0, 250.0]


def test_the_period_defaults_to_the_last_30_days_and_reports_what_it_cannot_read() -> None:
    today = dt.date(2026, 12, 5)
    assert Period.parse({}, today) == Period(dt.date(2026, 11, 6), today)
    problems: list[str] = []
    p = Period.parse({"since": "2026-12-09", "until": "nonsense"}, today, problems)
    assert p == Period(dt.date(2026, 11, 6), today) and len(problems) == 2
    one = Period.parse({"since": "2026-12-01", "until": "2026-12-01"}, today)
    assert one.stop - one.start == dt.timedelta(days=1) and one.start.tzinfo is dt.UTC

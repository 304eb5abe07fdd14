"""Operations pieces on their own: the report and status queries on both databases, CSV cells
that cannot become formulas, and JSON log lines without personal data."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from pathlib import Path

from sqlalchemy import func, select, update

from gateway.csvexport import safe_cell, write_rows
from gateway.logs import JsonFormatter, Redact, log_context
from gateway.store import Store, reports
from gateway.store import tables as t
from gateway.store.retention import purge_bodies
from gateway.store.status import status
from tests.support.x12gen import file_with_orders


def test_reports_and_status_on_both_databases(store: Store, tmp_path: Path) -> None:
    from gateway.app import Gateway
    from gateway.config import load_config
    from gateway.connector import RawMessage

    cfg_file = tmp_path / "gateway.yaml"
    cfg_file.write_text(
        f"store:\n  url: {store.engine.url.render_as_string(hide_password=False)}\n"
        f"connectors:\n  - {{type: file, name: outbox, path: {tmp_path / 'out'}}}\n"
        "partners:\n  - {name: acme, x12_ids: ['ZZ:ACMERETAIL'], acks: {functional: false}}\n"
    )
    gw = Gateway(load_config(cfg_file), store=store)
    try:
        gw.ingest(RawMessage(body=file_with_orders([f"PO-{n}" for n in range(12)]), source="cli", source_ref="a.edi", display_name="a.edi"))
        gw.run_until_idle(30.0)
    finally:
        gw.close()
    volumes = reports.volumes(store)
    assert [(v.channel, v.partner, v.orders) for v in volumes] == [("x12", "acme", 12)]
    (x12, every) = reports.touchless(store)
    assert (x12.channel, every.channel, every.orders, every.touchless, every.rate) == ("x12", "*", 12, 12, 1.0)
    assert reports.exceptions(store) == [reports.ExceptionRate("*", 0, 0.0)]
    cycle = reports.cycle_time(store)[-1]
    assert cycle.orders == 12 and cycle.p50_seconds is not None and cycle.p95_seconds is not None
    assert reports.dead_letter_age(store) == []
    now = status(store)
    assert {s.name: s.waiting for s in now.stages}["orders"] == 0
    assert now.throughput[0].orders_dispatched == 12
    assert purge_bodies(store, 1, dry_run=True).messages == 0  # received just now
    with store.begin() as conn:
        conn.execute(update(t.messages).values(received_at=store.db_now() - dt.timedelta(days=40)))
    assert purge_bodies(store, 30, dry_run=True).messages == 1
    done = purge_bodies(store, 30, policy="test")
    assert (done.messages, done.dry_run) == (1, False) and done.bytes > 0
    assert purge_bodies(store, 30).messages == 0
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.message_bodies)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(t.orders)).scalar_one() == 12


def test_percentile_is_nearest_rank() -> None:
    assert reports.percentile([], 50) is None
    assert reports.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert reports.percentile([float(n) for n in range(1, 101)], 95) == 95.0


def test_csv_cells_never_start_a_formula() -> None:
    for risky in ("=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(risky) == "'" + risky
    assert (safe_cell("ACME"), safe_cell(-3), safe_cell(1.5), safe_cell(None)) == ("ACME", -3, 1.5, "")
    buf = io.StringIO()
    write_rows(buf, ["partner", "orders"], [["=cmd|' /C calc'!A0", 2]])
    assert list(csv.reader(io.StringIO(buf.getvalue()))) == [["partner", "orders"], ["'=cmd|' /C calc'!A0", "2"]]


def test_json_log_lines_carry_ids_and_no_personal_data() -> None:
    record = logging.LogRecord("gateway.x", logging.INFO, __file__, 1, "mail from %s via %s", ("jane.buyer@acme.example", "postgresql://gw:s3cret@db/gw"), None)
    with log_context(message_id="m-1", order_id=None):
        assert Redact().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "mail from ***@acme.example via postgresql://gw:***@db/gw"
    assert (line["level"], line["logger"], line["message_id"]) == ("INFO", "gateway.x", "m-1") and "order_id" not in line
    assert line["time"].endswith("Z")

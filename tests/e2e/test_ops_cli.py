"""Operations (issue 12): reports, status, purge, schema upgrades, JSON logs, --version.

One subprocess runs the service as an operator does (`gateway run --once` with JSON logs) over
20 files holding 200 purchase orders and an order e-mail; every other command then runs in
process through the real command tree (typer's CliRunner) on the store it left.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, update
from typer.testing import CliRunner

from gateway.cli import app
from gateway.store import tables as t
from gateway.store.schema import head_revision
from tests.e2e.helpers import ROOT, file_target, run_cli, write_config
from tests.support.x12gen import interchange, po

pytestmark = pytest.mark.slow

PARTNERS = """\
partners:
  - name: acme
    x12_ids: ["ZZ:ACMERETAIL"]
    email_senders: ["@acme-retail.example"]
    acks: {outbound: OUTBOUND}
"""


def _cli(*args: str) -> str:
    done = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.stdout


def _jsonl(*args: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in _cli(*args, "--json").splitlines()]


def test_operations_commands_on_a_day_of_orders(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, connectors=file_target("outbox", tmp_path / "outbox"), extra=PARTNERS.replace("OUTBOUND", str(tmp_path / "outbound")))
    inbox = tmp_path / "inbox"
    for f in range(20):
        pos = []
        for n in range(10):
            bad = f % 5 == 0 and n == 0  # 4 files hold one order refused for a zero quantity
            pos.append(po(f"PO-{f:02d}-{n}", [("0" if bad else "2", "9.99", f"SKU-{n}")], st=f"{n + 1:04d}"))
        (inbox / f"po{f:02d}.edi").write_text(interchange(pos, icn=f"{f + 1:09d}"))
    shutil.copyfile(ROOT / "gateway" / "examples" / "acme-order-mail.eml", inbox / "mail.eml")

    ran = run_cli("run", "--once", "--config", str(cfg), env={"GATEWAY_LOG_FORMAT": "json"}, timeout=240)
    assert ran.returncode == 0, ran.stderr[-3000:]
    logged = [json.loads(line) for line in ran.stderr.splitlines()]  # every line is one JSON object
    assert {"time", "level", "logger", "message"} <= set(logged[0])
    sent = [e for e in logged if e["message"].endswith("sent to outbox")]
    assert len(sent) == 197 and all(isinstance(e["order_id"], str) and isinstance(e["delivery_id"], int) for e in sent)
    read = [e for e in logged if e["logger"] == "gateway.processing.process"]
    assert len(read) == 21 and all(e["message_id"] in e["message"] for e in read)
    assert not re.search(r"jane\.buyer@|[A-Za-z0-9._-]+@acme-retail", ran.stderr), "an e-mail address was logged at INFO"

    c = ["--config", str(cfg)]
    # A few deliveries gave up (the cause: a full disk on the target, say).
    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.begin() as conn:
        dead_ids = conn.execute(select(t.outbox.c.id).order_by(t.outbox.c.id).limit(3)).scalars().all()
        conn.execute(update(t.outbox).where(t.outbox.c.id.in_(dead_ids)).values(state="dead"))

    status = json.loads(_cli("status", *c, "--json"))
    stages = {s["name"]: s for s in status["stages"]}
    assert stages["quarantined"]["waiting"] == 4 and stages["dead"]["waiting"] == 3 and stages["messages"]["waiting"] == 0
    assert stages["dead"]["oldest_age_seconds"] >= 0 and stages["orders"]["oldest_since"] is None
    assert {w["minutes"]: w["messages_received"] for w in status["throughput"]} == {5: 21, 60: 21}
    assert [(w["orders_dispatched"], w["documents_sent"]) for w in status["throughput"]] == [(197, 20), (197, 20)]
    assert "backlog" in _cli("status", *c)

    volumes = _jsonl("report", "volumes", *c)
    assert {(v["channel"], v["partner"], v["orders"]) for v in volumes} == {("x12", "acme", 200), ("csv", "acme", 1)}
    touchless = {r["channel"]: r for r in _jsonl("report", "touchless", *c)}
    assert (touchless["*"]["orders"], touchless["*"]["dispatched"], touchless["*"]["touchless"]) == (201, 197, 197)
    exceptions = {r["reason"]: r for r in _jsonl("report", "exceptions", *c)}
    assert exceptions["*"]["orders"] == 4 and sum(r["orders"] for k, r in exceptions.items() if k != "*") == 4
    cycle = {r["channel"]: r for r in _jsonl("report", "cycle-time", *c)}
    assert cycle["*"]["orders"] == 197 and 0 <= cycle["*"]["p50_seconds"] <= cycle["*"]["p95_seconds"] <= cycle["*"]["max_seconds"]
    dead = _jsonl("report", "dead-letter-age", *c)
    assert [(d["kind"], d["connector"], d["count"]) for d in dead] == [("order", "outbox", 3)]
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    assert _jsonl("report", "volumes", *c, "--since", tomorrow) == []
    _cli("report", "cycle-time", *c, "--csv", str(tmp_path / "cycle.csv"))
    with (tmp_path / "cycle.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["channel"], r["orders"]) for r in rows] == [("csv", "1"), ("x12", "196"), ("*", "197")]
    assert float(rows[-1]["p95_seconds"]) == cycle["*"]["p95_seconds"]
    assert len(_jsonl("orders", *c, "-n", "1000", "--channel", "x12", "--partner", "acme")) == 200
    assert [o["po_number"] for o in _jsonl("orders", *c, "--channel", "csv")] == ["4500012500"]
    assert _jsonl("orders", *c, "--partner", "nobody") == [] == _jsonl("orders", *c, "--since", tomorrow)
    assert len(_jsonl("orders", *c, "-n", "1000", "--until", tomorrow, "--state", "quarantined")) == 4
    bad = CliRunner().invoke(app, ["report", "volumes", *c, "--since", "yesterday"])
    assert bad.exit_code != 0

    # Retention: everything was received 40 days ago; only finished messages lose their bodies.
    with engine.begin() as conn:
        conn.execute(update(t.messages).values(received_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40)))
    planned = json.loads(_cli("purge", *c, "--older-than", "30", "--dry-run", "--json"))
    assert planned["dry_run"] is True and planned["messages"] > 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.message_bodies)).scalar_one() == 21
    done = json.loads(_cli("purge", *c, "--older-than", "30", "--json"))
    assert done["messages"] == planned["messages"]
    with engine.connect() as conn:
        kept = set(conn.execute(select(t.message_bodies.c.message_id)).scalars())
        refused = set(conn.execute(select(t.orders.c.message_id).where(t.orders.c.state == "quarantined")).scalars())
        with_dead = set(conn.execute(
            select(t.orders.c.message_id).join(t.outbox, t.outbox.c.order_id == t.orders.c.id).where(t.outbox.c.id.in_(dead_ids))
        ).scalars())
        assert kept == refused | with_dead and len(kept) == 21 - done["messages"]
        purged = conn.execute(select(func.count()).select_from(t.events).where(t.events.c.kind == "body_purged")).scalar_one()
        assert purged == done["messages"]
        assert conn.execute(select(func.count()).select_from(t.messages)).scalar_one() == 21  # digests and metadata stay
    assert json.loads(_cli("purge", *c, "--older-than", "30", "--json"))["messages"] == 0
    shown = json.loads(_cli("show", "PO-01-3", *c, "--json"))  # a purged order keeps all it had
    assert (shown["state"], shown["data"]["po_number"], shown["message"]["display_name"]) == ("dispatched", "PO-01-3", "po01.edi")
    assert [d["state"] for d in shown["deliveries"]] == ["sent"]
    assert {"received", "validated", "dispatched", "body_purged"} <= {e["kind"] for e in shown["history"]}

    assert re.fullmatch(r"gateway \S+\n", _cli("--version"))
    assert "complete " in _cli("--show-completion", "bash")  # shell completion is on


def test_db_upgrade_is_an_explicit_step_when_migrate_is_off(tmp_path: Path, store_url: str) -> None:
    """With `store.migrate: false` (a deployment that upgrades as its own step) a command that
    would create or migrate the store refuses and names `gateway db upgrade`; after it, runs."""
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"store:\n  url: {store_url}\n  migrate: false\n")
    example = str(ROOT / "gateway" / "examples" / "acme-po-4010.edi")
    refused = CliRunner().invoke(app, ["ingest", example, "--config", str(cfg)])
    assert refused.exit_code != 0 and "run `gateway db upgrade`" in str(refused.exception)
    assert CliRunner().invoke(app, ["db", "upgrade", "--config", str(cfg)]).stderr.count("upgraded from nothing to") == 1
    assert "already at" in CliRunner().invoke(app, ["db", "upgrade", "--config", str(cfg)]).stderr
    head = head_revision()
    assert _cli("db", "current", "--config", str(cfg)) == f"store {head}, gateway {head}\n"
    assert CliRunner().invoke(app, ["ingest", example, "--config", str(cfg)]).exit_code == 0
    assert "backlog" in _cli("status", "--config", str(cfg))

"""Issue 11, circuit breaker: 150 purchase orders through the real CLI (in process) to the fake
ERP on 127.0.0.1 while it answers 503 to everything. The breaker opens after 5 failures in a
row, so most orders are never tried (no attempts used, not dead), `gateway connectors` and
/metrics show it open; the ERP comes back, the probe closes it, every PO is delivered once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from gateway.app import Gateway
from gateway.cli import app
from gateway.config import load_config
from gateway.intake.metrics import _breakers_snapshot
from gateway.store import tables as t
from tests.support.fake_erp import FakeERP, Scripted
from tests.support.x12gen import interchange, po

N = 150


@pytest.fixture
def erp() -> Iterator[FakeERP]:
    with FakeERP() as server:
        yield server


def cli(*args: str) -> str:
    done = CliRunner().invoke(app, list(args), terminal_width=300)
    assert done.exit_code == 0, done.output
    return done.output


def test_breaker_stops_sends_to_a_failing_erp_and_resumes(tmp_path: Path, erp: FakeERP) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"""\
store: {{url: "sqlite:///{tmp_path / 'gateway.db'}"}}
connectors:
  - type: http_json
    name: erp
    url: {erp.url}
    allow_private_targets: true
    reference: id
    retry: {{max_attempts: 100, base_seconds: 0.01, cap_seconds: 0.05}}
    breaker: {{failures: 5, open_seconds: 0.5}}
"""
    )
    edi = tmp_path / "pos.edi"
    edi.write_text(interchange([po(f"PO{i:04d}", st=f"{i:04d}") for i in range(1, N + 1)]))
    cli("ingest", str(edi), "-c", str(cfg))

    erp.script(*[Scripted(503, {"error": "maintenance"})] * 100_000)  # down for as long as we look
    cli("run", "--once", "--for", "1.5", "-c", str(cfg))
    gw = Gateway(load_config(cfg))
    try:
        with gw.store.engine.connect() as conn:
            o = t.outbox
            untried = conn.execute(select(func.count()).where(o.c.attempts == 0, o.c.state == "pending")).scalar_one()
            attempts = conn.execute(select(func.sum(o.c.attempts))).scalar_one()
            dead = conn.execute(select(func.count()).where(o.c.state == "dead")).scalar_one()
            assert _breakers_snapshot(gw, conn) == {"erp": 1}
    finally:
        gw.close()
    # Without the breaker every order would have been tried many times by now (back-off <= 50 ms).
    assert untried > N // 2 and dead == 0
    assert attempts == len(erp.requests)  # each attempt reached the ERP once; none while it was open but probes
    shown = cli("connectors", "-c", str(cfg))
    assert " open " in shown or " half_open " in shown

    erp.clear_script()  # the ERP is back: the next probe closes the breaker and everything goes
    cli("run", "--once", "--for", "60", "-c", str(cfg))
    pos = sorted(o["body"]["po_number"] for o in erp.orders)
    assert pos == [f"PO{i:04d}" for i in range(1, N + 1)]  # every PO once
    listed = cli("orders", "-n", "500", "-c", str(cfg))
    assert listed.count("dispatched") == N
    assert " closed " in cli("connectors", "-c", str(cfg))
    gw = Gateway(load_config(cfg))
    try:
        with gw.store.engine.connect() as conn:
            history = conn.execute(select(t.events.c.detail).where(t.events.c.kind == "breaker").order_by(t.events.c.id)).scalars().all()
    finally:
        gw.close()
    assert history[0].startswith("breaker of erp opened after 5 transient failures in a row")
    assert history[-1] == "breaker of erp closed: the target answered again"

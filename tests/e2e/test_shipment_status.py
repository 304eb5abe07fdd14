"""Issue 11, status coming back: 100 purchase orders through the real CLI (in process) to
ShipStation (behind `responses`, tests/support/shipping_apis.py); a person ships 60 of them
there (one in two packages); the service's ``status:shipstation`` job records each shipment
(shipped, the tracking number in the order's history), a second poll records nothing again,
and `gateway shipped PO --record` records one order by hand, once. Orders invoiced before
they shipped (billed on order) are still asked about their shipment until it is recorded."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import responses
from sqlalchemy import select
from typer.testing import CliRunner

from gateway.app import Gateway
from gateway.cli import app
from gateway.config import load_config
from gateway.service import _poll_status
from gateway.store import tables as t
from tests.e2e.helpers import shipping_connector
from tests.support.shipping_apis import SHIPSTATION_URL, FakeShipStation
from tests.support.x12gen import interchange, po

N = 100
SHIPPED = 60
ENV = {"SS_KEY": "ss-key", "SS_SECRET": "ss-secret"}


def cli(*args: str) -> str:
    done = CliRunner().invoke(app, list(args), env=ENV, terminal_width=300)
    assert done.exit_code == 0, done.output
    return done.output


def test_shipments_come_back_from_shipstation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    shipping = shipping_connector("shipstation", "shipstation", SHIPSTATION_URL, poll_shipments_minutes="10")  # the old name, still read
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"""\
store: {{url: "sqlite:///{tmp_path / 'gateway.db'}"}}
connectors:
{shipping}"""
    )
    edi = tmp_path / "pos.edi"
    edi.write_text(interchange([po(f"PO{i:04d}", st=f"{i:04d}") for i in range(1, N + 1)]))
    cli("ingest", str(edi), "-c", str(cfg))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        ss = FakeShipStation(rsps)
        cli("run", "--once", "--for", "60", "-c", str(cfg))
        assert len(ss.orders) == N
        ids = {o["orderNumber"]: o["orderId"] for o in ss.orders.values()}
        for i in range(1, SHIPPED + 1):
            ss.ship(ids[f"PO{i:04d}"], f"1ZTRACK{i:04d}")
        ss.ship(ids["PO0001"], "1ZTRACK0001B")  # a second package of the same order

        gw = Gateway(load_config(cfg))
        try:
            _poll_status(gw, "shipstation")  # the service's job, as the scheduler runs it
            asked = len(ss.requests)
            _poll_status(gw, "shipstation")  # the next poll asks only the orders not shipped
            assert len(ss.requests) - asked == N - SHIPPED  # one GET /orders/{id} each, not shipped: no /shipments
            with gw.store.engine.connect() as conn:
                states = Counter(conn.execute(select(t.orders.c.state)).scalars())
                shipments = conn.execute(select(t.shipments.c.tracking)).scalars().all()
        finally:
            gw.close()
        assert states == {"shipped": SHIPPED, "dispatched": N - SHIPPED}
        assert sorted(shipments) == sorted([f"1ZTRACK{i:04d}" for i in range(1, SHIPPED + 1)] + ["1ZTRACK0001B"])
        history = cli("show", "PO0001", "-c", str(cfg))
        assert "1ZTRACK0001" in history and "1ZTRACK0001B" in history and "shipped" in history

        # By hand: an order shipped after the poll is recorded once, however often it is asked.
        ss.ship(ids[f"PO{N:04d}"], "1ZLATE")
        first = cli("shipped", f"PO{N:04d}", "--record", "-c", str(cfg))
        assert "1ZLATE" in first and "is shipped" in first
        assert "nothing new to record" in cli("shipped", f"PO{N:04d}", "--record", "-c", str(cfg))
        assert "nothing new to record" in cli("shipped", "PO0001", "--record", "-c", str(cfg))

        # Billed on order: 20 orders invoiced before anything shipped are still asked about
        # their shipment, recorded once it comes (they stay invoiced), then not asked again.
        billed = [f"PO{i:04d}" for i in range(SHIPPED + 1, SHIPPED + 21)]
        invoices = tmp_path / "invoices.csv"
        invoices.write_text("order,number\n" + "".join(f"{p},INV-{p}\n" for p in billed))
        cli("invoice", "--file", str(invoices), "-c", str(cfg))
        for p in billed:
            ss.ship(ids[p], f"1ZBILLED{p}")
        gw = Gateway(load_config(cfg))
        try:
            _poll_status(gw, "shipstation")
            asked = len(ss.requests)
            _poll_status(gw, "shipstation")  # only the orders still neither shipped nor invoiced
            assert len(ss.requests) - asked == N - SHIPPED - len(billed) - 1  # (PO0100 shipped by hand)
            with gw.store.engine.connect() as conn:
                rows = conn.execute(
                    select(t.orders.c.po_number, t.orders.c.state, t.shipments.c.tracking)
                    .join(t.shipments, t.shipments.c.order_id == t.orders.c.id)
                    .where(t.shipments.c.kind == "shipment", t.orders.c.po_number.in_(billed))
                ).all()
        finally:
            gw.close()
        assert sorted(rows) == [(p, "invoiced", f"1ZBILLED{p}") for p in billed]

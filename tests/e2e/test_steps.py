"""Issue 11: two steps that depend on each other, through the real CLI (in process).

150 purchase orders go to an ERP (a loopback fake) and then, `after: [erp]`, to a shipping
service that takes the ERP's order number in its payload (`steps.erp.reference`). The
shipping service fails for a while: first plain 503s (quick retries), then 503s asking for an
hour's pause (Retry-After), which parks every shipping delivery. Meanwhile each order shows
that it is partly sent and that shipping waits; the ERP was called once per PO and is never
called again. Then the hour passes (the test moves the due times), shipping answers, and
every order is dispatched with the ERP's number at the shipping service.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from gateway.cli import app
from gateway.store import Store
from gateway.store import tables as t
from tests.e2e.helpers import http_json, write_config
from tests.support.fake_erp import FakeERP, Scripted
from tests.support.x12gen import file_with_orders

N = 150


@pytest.fixture
def erp() -> Any:
    with FakeERP() as server:
        yield server


@pytest.fixture
def shipping() -> Any:
    with FakeERP() as server:
        yield server


def cli(*args: str) -> str:
    done = CliRunner().invoke(app, list(args), terminal_width=300)
    assert done.exit_code == 0, done.output
    return done.output


def test_shipping_after_erp_gets_the_erp_number_and_the_order_shows_the_partial_state(
    tmp_path: Path, erp: FakeERP, shipping: FakeERP
) -> None:
    payload = tmp_path / "shipping.jmespath"
    payload.write_text("# what the shipping service takes\n{po: po_number, erp_order: steps.erp.reference}\n")
    connectors = (
        http_json("erp", erp.url)
        + http_json("shipping", shipping.url, retry="{max_attempts: 400, base_seconds: 0.01, cap_seconds: 0.02}")
        + f"    after: [erp]\n    payload: {payload}\n"
    )
    cfg = str(write_config(tmp_path, connectors=connectors, service=False))
    pos = [f"PO{i:05d}" for i in range(1, N + 1)]
    edi = tmp_path / "pos.edi"
    edi.write_bytes(file_with_orders(pos))
    # Shipping fails for a while: quick 503s, then one 503 per delivery that parks it for an hour.
    shipping.script(*([503] * N), *([Scripted(503, headers={"Retry-After": "3600"})] * N))

    cli("ingest", str(edi), "--config", cfg)
    cli("run", "--once", "--for", "120", "--config", cfg)

    created = erp.orders
    assert len(created) == N and len({o["idempotency_key"] for o in created}) == N
    assert len(shipping.requests) == 2 * N and shipping.orders == []
    listed = [json.loads(line) for line in cli("orders", "--json", "-n", "500", "--config", cfg).splitlines()]
    assert len(listed) == N
    for row in listed:
        assert row["state"] == "validated"
        assert row["progress"].startswith("partly sent: erp done; shipping retrying after attempt"), row
    shown = cli("show", "PO00007", "--config", cfg)
    assert "partly sent: erp done; shipping retrying" in shown and "(partly sent)" in cli("orders", "--config", cfg)

    # An hour later: the parked deliveries are due, and the shipping service answers.
    store = Store(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        with store.begin() as conn:
            conn.execute(update(t.outbox).where(t.outbox.c.state == "pending").values(next_attempt_at=store.db_now(conn)))
    finally:
        store.dispose()
    cli("run", "--once", "--for", "120", "--config", cfg)

    assert len(erp.requests) == N  # the ERP step that succeeded was never sent again
    number = {o["body"]["po_number"]: o["id"] for o in created}
    shipped = {o["body"]["po"]: o["body"]["erp_order"] for o in shipping.orders}
    assert shipped == number
    listed = [json.loads(line) for line in cli("orders", "--json", "-n", "500", "--config", cfg).splitlines()]
    assert {row["state"] for row in listed} == {"dispatched"} and not any("progress" in row for row in listed)
    history = cli("show", "PO00007", "--config", cfg)
    assert f"after erp ({number['PO00007']})" in history

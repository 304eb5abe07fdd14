"""End to end into Odoo, ERPNext and HubSpot at once (issue 11): 150 X12 purchase orders dropped
in the inbox, the real CLI's `gateway run --once` (in process, so `responses` can stand in for
the three APIs), and every PO is one sales order in Odoo, one Sales Order in ERPNext and one
deal in HubSpot although answers get lost after each system committed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import responses
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from gateway.cli import app
from gateway.store import tables as t
from tests.e2e.helpers import write_config
from tests.support.fake_erpnext import ERPNEXT_URL, FakeERPNext
from tests.support.fake_hubspot import FakeHubSpot
from tests.support.fake_odoo import ODOO_URL, FakeOdoo
from tests.support.x12gen import interchange, po

FILES, PER_FILE = 15, 10
SKUS = [f"SKU-{i}" for i in range(1, 9)]
RETRY = "{max_attempts: 6, base_seconds: 0.01, cap_seconds: 0.05}"

ODOO = (
    f"  - type: odoo\n    name: odoo\n    url: {ODOO_URL}\n    database: prod\n    username: gateway\n"
    "    password_env: GW_ODOO_KEY\n    timeout: {connect: 2, read: 5, total: 20}\n"
    f"    retry: {RETRY}\n"
)
ERPNEXT = (
    f"  - type: erpnext\n    name: erpnext\n    url: {ERPNEXT_URL}\n"
    "    auth: {type: api_key, header: Authorization, prefix: 'token ', value_env: GW_ERPNEXT_TOKEN}\n"
    f"    retry: {RETRY}\n"
)
HUBSPOT = (  # OAuth2 client credentials: the token is rotated during the run and fetched again on its 401
    "  - type: hubspot\n    name: hubspot\n"
    "    auth: {type: oauth2_client_credentials, token_url: 'https://api.hubapi.com/oauth/v1/token',"
    " client_id: gateway, client_secret_env: GW_HUBSPOT_SECRET, scope: crm.objects.deals.write}\n"
    f"    retry: {RETRY}\n"
)


def test_150_orders_reach_each_system_once_despite_lost_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_ODOO_KEY", "odoo-key-1")
    monkeypatch.setenv("GW_ERPNEXT_TOKEN", "api-key-1:api-secret-1")
    monkeypatch.setenv("GW_HUBSPOT_SECRET", "client-secret-1")
    cfg = write_config(tmp_path, connectors=ODOO + ERPNEXT + HUBSPOT, service=False, poll=None, stable=0.0)
    rng = random.Random(11)
    expected: dict[str, list[tuple[str, float]]] = {}
    for f in range(FILES):
        txs = []
        for i in range(PER_FILE):
            number = f"PO-{f:02d}{i:02d}"
            lines = [(str(rng.randint(1, 40)), f"{rng.randint(100, 9999) / 100:.2f}", sku)
                     for sku in rng.sample(SKUS, rng.randint(1, 3))]
            expected[number] = [(sku, float(qty)) for qty, _, sku in lines]
            txs.append(po(number, lines, st=f"{i + 1:04d}"))
        (tmp_path / "inbox" / f"po-{f:02d}.edi").write_text(interchange(txs, icn=f"{f + 1:09d}", gcn=str(f + 1)))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        odoo = FakeOdoo(mock)
        for sku in SKUS:
            odoo.add("product.product", {"default_code": sku, "list_price": 1.0, "sale_ok": True})
        odoo.lose_every = 7  # every 7th sale.order create: committed in Odoo, the answer times out
        odoo.script = [503, 503]  # and Odoo is briefly unavailable at the start
        erp = FakeERPNext(mock)
        for sku in SKUS:
            erp.docs["Item"][sku] = {"name": sku, "item_code": sku, "disabled": 0, "is_sales_item": 1}
        erp.lose_every = 9
        crm = FakeHubSpot(mock)
        crm.lose_every = 11
        crm.script = [(429, "RATE_LIMITS")]
        crm.revoke_every = 200
        result = CliRunner().invoke(app, ["run", "--once", "--config", str(cfg)])
        assert result.exit_code == 0, result.output

    sales = odoo.orders()
    assert odoo.lost >= 20  # the retries really met committed-but-unanswered creates
    assert sorted(s["client_order_ref"] for s in sales) == sorted(expected)  # each PO exactly once
    for sale in sales:
        assert sorted(odoo.lines_of(sale)) == sorted(expected[sale["client_order_ref"]])
        assert sale["state"] == "sale"
    (customer,) = odoo.records["res.partner"].values()  # the ISA sender, created once
    assert customer["ref"] == "ACMERETAIL"
    assert erp.lost >= 15 and crm.lost >= 12
    assert crm.tokens_issued >= 3  # the first token, then one after each rotation (every 200 requests)
    assert sorted(o["po_no"] for o in erp.orders()) == sorted(expected)
    assert all(o["docstatus"] == 1 and o["customer"] == "ACMERETAIL" for o in erp.orders())
    assert sorted(d["dealname"] for d in crm.deals()) == sorted(f"PO {n}" for n in expected)
    for deal in crm.objects["deals"]:
        assert sorted(crm.lines_of(deal)) == sorted(expected[crm.objects["deals"][deal]["properties"]["dealname"][3:]])
    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as c:
        states = c.execute(select(t.orders.c.state)).scalars().all()
        references = c.execute(select(t.outbox.c.receipt).where(t.outbox.c.kind == "order")).scalars().all()
    engine.dispose()
    assert len(states) == FILES * PER_FILE and set(states) == {"dispatched"}
    made = [s["name"] for s in sales] + [o["name"] for o in erp.orders()] + list(crm.objects["deals"])
    assert sorted(r["reference"] for r in references) == sorted(made)


def test_stock_is_pulled_from_odoo_and_erpnext_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`gateway data pull stock --from odoo|erpnext`: 122 products in two Odoo warehouses and 150
    ERPNext Bins become master-data stock rows, each with its own source."""
    monkeypatch.setenv("GW_ODOO_KEY", "odoo-key-1")
    monkeypatch.setenv("GW_ERPNEXT_TOKEN", "api-key-1:api-secret-1")
    cfg = write_config(tmp_path, connectors=ODOO + ERPNEXT, service=False)
    runner = CliRunner()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        odoo, erp = FakeOdoo(mock), FakeERPNext(mock)
        main, east = (odoo.add("stock.warehouse", {"code": code, "name": f"{code} warehouse"}) for code in ("WH", "EAST"))
        for i in range(120):
            odoo.add("product.product", {"default_code": f"P-{i:03d}", "list_price": 1.0, "sale_ok": True})
            odoo.on_hand[(main, f"P-{i:03d}")] = float(i)
            odoo.on_hand[(east, f"P-{i:03d}")] = i / 4
        odoo.add("product.product", {"default_code": "SERVICE-1", "type": "service", "sale_ok": True})
        for i in range(150):
            erp.docs["Bin"][f"bin-{i}"] = {"name": f"bin-{i}", "item_code": f"E-{i % 75:03d}",
                                           "warehouse": ("Stores - AC", "Finished Goods - AC")[i // 75], "actual_qty": i * 1.5}
        for name in ("odoo", "erpnext"):
            pulled = runner.invoke(app, ["data", "pull", "stock", "--from", name, "--config", str(cfg)])
            assert pulled.exit_code == 0, pulled.output
            assert f"{244 if name == 'odoo' else 150} row(s) from {name}" in pulled.output
        # Odoo drops 20 products; a --replace pull removes their 40 rows and none of ERPNext's
        for product_id in [i for i, p in odoo.records["product.product"].items() if p["default_code"] in {f"P-{n:03d}" for n in range(20)}]:
            del odoo.records["product.product"][product_id]
        pulled = runner.invoke(app, ["data", "pull", "stock", "--from", "odoo", "--replace", "--config", str(cfg)])
        assert pulled.exit_code == 0 and "204 row(s) from odoo" in pulled.output and pulled.output.endswith(", 40 removed\n"), pulled.output

    engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as c:
        rows = c.execute(select(t.stock.c.sku, t.stock.c.warehouse, t.stock.c.on_hand, t.stock.c.source)).all()
    engine.dispose()
    by_source: dict[str, dict[tuple[str, str], float]] = {}
    for sku, warehouse, on_hand, source in rows:
        by_source.setdefault(source, {})[(sku, warehouse)] = float(on_hand)
    odoo_rows, erp_rows = by_source["erp:odoo"], by_source["erp:erpnext"]
    assert len(odoo_rows) == 204 and odoo_rows[("P-027", "WH")] == 27.0 and odoo_rows[("P-027", "EAST")] == 6.75
    assert ("P-007", "WH") not in odoo_rows
    assert ("SERVICE-1", "WH") not in odoo_rows and odoo_rows[("WID-1", "WH")] == 0.0
    assert len(erp_rows) == 150 and erp_rows[("E-001", "Finished Goods - AC")] == 76 * 1.5

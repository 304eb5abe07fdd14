"""Issue 11, shipping: 120 purchase orders through the real CLI (in process) to an ERP step
and then, `after: [erp]`, to ShipStation and EasyPost (behind `responses`, with the fakes of
tests/support/shipping_apis.py). The catalogue weights reach EasyPost's parcels through the
routing, the route's carrier and service choose the rate bought, both services carry the
ERP's reference, and faults of both (429 with X-Rate-Limit-Reset, 503s) cost no duplicate."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import responses
from typer.testing import CliRunner

from gateway.cli import app
from tests.e2e.helpers import shipping_connector
from tests.support.shipping_apis import EASYPOST_URL, SHIPSTATION_URL, FakeEasyPost, FakeShipStation
from tests.support.x12gen import interchange, po

N = 120
ENV = {"SS_KEY": "ss-key", "SS_SECRET": "ss-secret", "EP_KEY": "EZTK-e2e"}
QUICK = "{max_attempts: 20, base_seconds: 0.01, cap_seconds: 0.05}"


def cli(*args: str) -> str:
    done = CliRunner().invoke(app, list(args), env=ENV, terminal_width=300)
    assert done.exit_code == 0, done.output
    return done.output


def test_erp_then_shipstation_and_easypost_through_the_cli(tmp_path: Path) -> None:
    shipping = shipping_connector("shipstation", "shipstation", SHIPSTATION_URL, after=["erp"], retry=QUICK) + shipping_connector(
        "easypost", "labels", EASYPOST_URL, after=["erp"], retry=QUICK, rates="[{carrier: UPSN, service: GND, easypost_carrier: UPS, easypost_service: Ground}]"
    )
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"""\
store: {{url: "sqlite:///{tmp_path / 'gateway.db'}"}}
connectors:
  - {{type: file, name: erp, path: {tmp_path / 'erp'}}}
{shipping}rules:
  - type: stock
routing:
  regions: {{"*": [EAST]}}
  carriers: [{{carrier: UPSN, service: GND}}]
"""
    )
    (tmp_path / "items.csv").write_text("sku,description,gtin,base_uom,uoms,pack_size,discontinued,weight_kg\nSKU-1,Widget,,EA,,,false,0.25\n")
    (tmp_path / "stock.csv").write_text("sku,warehouse,on_hand,reorder_point\nSKU-1,EAST,1000000,\n")
    quantity = {f"PO{i:04d}": 1 + i % 5 for i in range(1, N + 1)}
    edi = tmp_path / "pos.edi"
    edi.write_text(interchange([po(n, [(str(q), "9.99", "SKU-1")], st=f"{i:04d}") for i, (n, q) in enumerate(quantity.items(), 1)]))

    cli("data", "import", "items", str(tmp_path / "items.csv"), "-c", str(cfg))
    cli("data", "import", "stock", str(tmp_path / "stock.csv"), "-c", str(cfg))
    cli("ingest", str(edi), "-c", str(cfg))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        shipstation, easypost = FakeShipStation(rsps), FakeEasyPost(rsps)
        shipstation.script(429, {"Message": "Too Many Requests"}, {"X-Rate-Limit-Reset": "1"}, times=5)
        easypost.script(503, {"error": {"code": "INTERNAL_SERVER_ERROR", "message": "try later", "errors": []}}, times=10)
        cli("run", "--once", "--for", "120", "-c", str(cfg))
        listed = cli("orders", "-n", "500", "-c", str(cfg))
        # A person ships PO0001 in ShipStation: `gateway shipped` finds the tracking number.
        first = next(o for o in shipstation.orders.values() if o["orderNumber"] == "PO0001")
        shipstation.ship(first["orderId"], "1ZTRACK0001")
        assert "1ZTRACK0001" in cli("shipped", "PO0001", "-c", str(cfg))
        assert "not yet" in cli("shipped", "PO0002", "-c", str(cfg))

    erp = {p.name.split("-", 1)[0]: p.name for p in (tmp_path / "erp").glob("*.json")}
    assert len(erp) == N
    assert listed.count("dispatched") == N and "partly sent" not in listed
    # ShipStation: one order per PO (orderKey upserts), the ERP's reference in customField1.
    assert len(shipstation.orders) == N and shipstation.changes == []
    assert {b["orderNumber"]: b["advancedOptions"]["customField1"] for b in shipstation.effects} == {
        n: f"erp: {ref}" for n, ref in erp.items()
    }
    assert {b["requestedShippingService"] for b in shipstation.effects} == {"UPSN GND"}
    # EasyPost: one label per PO, UPS Ground as routed, the parcel weighing the catalogue's 0.25 kg a unit.
    labels = {e["reference"]: e for e in easypost.effects}
    assert len(labels) == N == len(easypost.shipments)
    assert {(e["carrier"], e["service"]) for e in labels.values()} == {("UPS", "Ground")}
    weights = sorted(e["weight"] for e in labels.values())
    expected = sorted(float((Decimal("0.25") * q * Decimal("35.27396195")).quantize(Decimal("0.1"))) for q in quantity.values())
    assert weights == expected
    assert {e["note"] for e in labels.values()} == {f"erp: {ref}"[:35] for ref in erp.values()}
    assert shipstation.authorization[-1] is not None and easypost.authorization[-1] is not None

"""Issue 11, invoices coming back from the ERP on their own: 300 X12 purchase orders from two
partners through the real CLI's `gateway run --once` (in process, so `responses` stands in for
ERPNext, tests/support/fake_erpnext.py), into ERPNext as Sales Orders. ERPNext then bills 150 of
them (float amounts, as Frappe answers) and is briefly unavailable for one order.

    run --once #2   the status poll before the run records each invoice once: 149 orders
                    invoiced with ERPNext's number, total and tax rounded to cents; acme (which wants
                    invoices) gets an 810 for each of its orders in its folder, globex none; the
                    one order ERPNext could not answer about is asked again at the next poll
    run --once #3   that order is recorded; nothing else is recorded or sent again; the
                    invoiced orders are asked only about their delivery (billed on order)
    run --once #4   ERPNext delivered 30 of them: each gets its shipment (transporter, LR number)
                    and stays invoiced; then only the others are asked
    an overlapping poll that read the order list before the others recorded: every invoice is
    a repeat, nothing is recorded twice
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from connectors.targets.erpnext.config import ERPNextConfig
from connectors.targets.erpnext.connector import ERPNextConnector
from gateway.acks.readback import check_x12
from gateway.app import Gateway
from gateway.cli import app
from gateway.config import load_config
from gateway.fulfilment import Fulfilment
from gateway.store import tables as t
from gateway.tracking import record_found
from tests.e2e.helpers import write_config
from tests.support.fake_erpnext import ERPNEXT_URL, FakeERPNext
from tests.support.x12gen import interchange, po

FILES, PER_FILE = 30, 10  # 300 POs: files 0-23 from acme, 24-29 from globex
GLOBEX_FROM = 24
SKUS = [f"SKU-{i}" for i in range(1, 6)]
ERPNEXT = (
    f"  - type: erpnext\n    name: erpnext\n    url: {ERPNEXT_URL}\n"
    "    auth: {type: api_key, header: Authorization, prefix: 'token ', value_env: GW_ERPNEXT_TOKEN}\n"
    "    retry: {max_attempts: 4, base_seconds: 0.01, cap_seconds: 0.05}\n"
    "    poll_status_minutes: 30\n"
)


def run_once(cfg: Path) -> str:
    done = CliRunner().invoke(app, ["run", "--once", "--config", str(cfg)], terminal_width=300)
    assert done.exit_code == 0, done.output
    return done.output


def test_invoices_come_back_from_erpnext_once_each_and_reach_the_partner_that_wants_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GW_ERPNEXT_TOKEN", "api-key-1:api-secret-1")
    partners = (
        "partners:\n"
        f"  - name: acme\n    x12_ids: ['ZZ:ACMERETAIL']\n    acks: {{outbound: {tmp_path / 'out-acme'}, functional: false, invoice: true}}\n"
        f"  - name: globex\n    x12_ids: ['ZZ:GLOBEX']\n    acks: {{outbound: {tmp_path / 'out-globex'}, functional: false}}\n"
    )
    cfg = write_config(tmp_path, connectors=ERPNEXT, service=False, poll=None, stable=0.0, extra=partners)
    lines: dict[str, list[tuple[str, str, str]]] = {}
    for f in range(FILES):
        txs = []
        for i in range(PER_FILE):
            number = f"PO-{f:02d}{i:02d}"
            lines[number] = [(str(1 + (f + i) % 7), f"{1 + (f * i) % 40}.{(f + 3 * i) % 100:02d}", SKUS[(f + i) % 5]),
                             (str(1 + i % 3), "0.35", SKUS[(f + i + 1) % 5])]
            txs.append(po(number, lines[number], st=f"{i + 1:04d}"))
        sender = "GLOBEX" if f >= GLOBEX_FROM else "ACMERETAIL"
        (tmp_path / "inbox" / f"po-{f:02d}.edi").write_text(interchange(txs, icn=f"{f + 1:09d}", gcn=str(f + 1), sender=sender))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        erp = FakeERPNext(mock)
        for sku in SKUS:
            erp.docs["Item"][sku] = {"name": sku, "item_code": sku, "disabled": 0, "is_sales_item": 1}
        run_once(cfg)  # the orders reach ERPNext; nothing was sent before, so nothing is asked
        assert not any(path == "/api/resource/Sales Invoice" for _, path in erp.requests)
        orders = {o["po_no"]: o["name"] for o in erp.orders()}
        assert len(orders) == FILES * PER_FILE

        # ERPNext bills every other order, with the float amounts Frappe answers.
        billed = sorted(orders)[::2]
        expected: dict[str, tuple[str, Decimal, Decimal]] = {}
        for n, number in enumerate(billed):
            net = sum(int(q) * float(p) for q, p, _ in lines[number])
            tax = net * 0.0825
            total = net + tax
            name = erp.invoice(orders[number], total, tax)
            expected[number] = (name, Decimal(str(total)).quantize(Decimal("0.01")), Decimal(str(tax)).quantize(Decimal("0.01")))
        assert any(Decimal(str(erp.docs["Sales Invoice"][v[0]]["grand_total"])).as_tuple().exponent < -2 for v in expected.values())
        missed = billed[7]
        real = erp._route
        unavailable = [json.dumps([["name", "=", orders[missed]]])]  # once, for this order's lookup

        def busy(method: str, path: str, body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
            if method == "GET" and path == "/api/resource/Sales Order" and query.get("filters") in unavailable:
                unavailable.clear()
                return 0, (503, {}, "<html>busy</html>")
            return real(method, path, body, query)

        erp._route = busy  # type: ignore[method-assign]
        asked = len(erp.requests)
        run_once(cfg)
        # One Sales Order lookup per order sent, one Sales Invoice list per billed order answered.
        status_calls = [r for r in erp.requests[asked:] if r[0] == "GET"]
        assert len(status_calls) == FILES * PER_FILE + len(billed) - 1

        engine = create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")

        def recorded() -> dict[str, tuple[str, Decimal, Decimal]]:
            with engine.connect() as c:
                rows = c.execute(
                    select(t.orders.c.po_number, t.shipments.c.number, t.shipments.c.total, t.shipments.c.data)
                    .join(t.orders, t.orders.c.id == t.shipments.c.order_id).where(t.shipments.c.kind == "invoice")
                ).all()
            found: dict[str, tuple[str, Decimal, Decimal]] = {}
            for number, invoice, total, data in rows:
                assert number not in found, f"{number} invoiced twice"
                found[number] = (invoice, Decimal(str(total)).quantize(Decimal("0.01")), Decimal(data["tax"]))
            return found

        first = recorded()
        assert set(first) == set(billed) - {missed}  # the order ERPNext did not answer about waits
        assert first == {k: v for k, v in expected.items() if k != missed}

        run_once(cfg)  # the next poll: the missed order now; the others are not asked again
        assert recorded() == expected
        again = len(erp.requests)
        run_once(cfg)
        assert recorded() == expected
        # Every order is asked once more: those not billed about their invoice, the billed ones
        # (ERPNext bills on order here) about their delivery: a Sales Order lookup each, and for
        # a billed one its invoice list again (the ERP answers the whole status; each invoice is
        # a repeat); not delivered: no Delivery Note list.
        assert len(erp.requests) - again == FILES * PER_FILE + len(billed)
        assert not any(path == "/api/resource/Delivery Note" for _, path in erp.requests[again:])
        assert recorded() == expected

        # ERPNext delivers 30 of the billed orders: each gets its shipment (transporter and
        # transport receipt number) and stays invoiced; then it is no longer asked.
        delivered = billed[100:130]
        for number in delivered:
            erp.deliver(orders[number], lr_no=f"LR-{number}")
        run_once(cfg)
        with engine.connect() as c:
            shipped = c.execute(
                select(t.orders.c.po_number, t.orders.c.state, t.shipments.c.carrier, t.shipments.c.tracking)
                .join(t.orders, t.orders.c.id == t.shipments.c.order_id).where(t.shipments.c.kind == "shipment")
            ).all()
        assert sorted(shipped) == [(n, "invoiced", "DHL Express", f"LR-{n}") for n in delivered]
        again = len(erp.requests)
        run_once(cfg)
        assert len(erp.requests) - again == FILES * PER_FILE + len(billed) - 2 * len(delivered)

        # A poll that read the order list before the others recorded: every invoice a repeat.
        gw = Gateway(load_config(cfg))
        connector = ERPNextConnector(ERPNextConfig.model_validate(
            {"type": "erpnext", "name": "erpnext", "url": ERPNEXT_URL,
             "auth": {"type": "api_key", "header": "Authorization", "prefix": "token ", "value_env": "GW_ERPNEXT_TOKEN"}}))
        try:
            with engine.connect() as c:
                ids = dict(c.execute(select(t.orders.c.po_number, t.orders.c.id)).all())  # type: ignore[arg-type]
            fulfilment = Fulfilment(gw.store, gw.config)
            for number in billed[:40]:
                assert record_found(fulfilment, ids[number], "erpnext", connector.status(orders[number]), "dispatched") == []
        finally:
            connector.close()
            gw.close()
        assert recorded() == expected

    with engine.connect() as c:
        states = dict(c.execute(select(t.orders.c.po_number, t.orders.c.state)).all())  # type: ignore[arg-type]
        history = c.execute(select(t.events.c.detail).join(t.orders, t.orders.c.id == t.events.c.order_id)
                            .where(t.orders.c.po_number == billed[1], t.events.c.kind == "invoice")).scalars().all()
    engine.dispose()
    assert {n for n, s in states.items() if s == "invoiced"} == set(billed)
    assert {s for n, s in states.items() if n not in expected} == {"dispatched"}
    name, total, _ = expected[billed[1]]
    assert history == [f"invoiced: invoice {name}, total {total} USD (recorded by erpnext)"]

    # The 810s: one per billed acme order, none for globex (it wants no invoices), each read back.
    acme_billed = {n for n in billed if int(n[3:5]) < GLOBEX_FROM}
    files = sorted((tmp_path / "out-acme").glob("810-*"))
    assert len(files) == len(acme_billed) and not list((tmp_path / "out-globex").glob("810-*"))
    seen = {}
    for f in files:
        text = f.read_text()
        check_x12(text, "810")
        big = re.search(r"BIG\*\d{8}\*([^*~]+)\*\d*\*([^*~]+)", text)
        tds = re.search(r"TDS\*(\d+)", text)
        assert big and tds
        seen[big.group(2)] = (big.group(1), Decimal(tds.group(1)) / 100)
    assert seen == {n: (expected[n][0], expected[n][1]) for n in acme_billed}

"""Shipments, invoices and stock reports recorded on stored orders (gateway.fulfilment), on both
databases: the order's moves and history, the partner's documents with consecutive control
numbers, refusals that record nothing, the partner's 997 / CONTRL matched to what we sent, the
stock report's envelope and quantities, and the buyer's shipping e-mail."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, update

from gateway.acks.readback import check_edifact, check_x12
from gateway.config import GatewayConfig
from gateway.connector import Capabilities, RawMessage
from gateway.errors import GatewayError
from gateway.fulfilment import Fulfilment, Invoice, Shipment, ShippedLine
from gateway.partners import PartnerDirectory
from gateway.pipeline import Pipeline
from gateway.store import tables as t
from tests.e2e.helpers import ROOT
from tests.support.x12gen import interchange, po

CONFIG = GatewayConfig.model_validate(
    {
        "connectors": [{"type": "file", "name": "erp", "path": "/nonexistent"}],
        "partners": [
            {
                "name": "acme", "x12_ids": ["ZZ:ACMERETAIL"],
                "acks": {
                    "functional": False, "ship_notice": True, "invoice": True, "outbound": "/srv/acme/out",
                    "stock_report": {"every_minutes": 60, "skus": ["SKU-1", "SKU-2", "SKU-9"]},
                },
            },
            {"name": "quiet", "x12_ids": ["ZZ:QUIETCO"], "acks": {"functional": False}},
            {"name": "stocky", "edifact_ids": ["14:4000001000002"], "acks": {"functional": False, "edifact_id": "4000009000008:14", "outbound": "/srv/s"}},
            {"name": "eddy", "edifact_ids": ["14:5412345000013"], "acks": {"functional": False, "ship_notice": True, "invoice": True, "outbound": "/srv/eddy"}},
        ],
    }
)
LINES = [("2", "9.99", "SKU-1"), ("3", "5.00", "SKU-2")]


def pipeline(store):  # type: ignore[no-untyped-def]
    return Pipeline(store, connectors=["erp"], partners=PartnerDirectory(CONFIG.partners), capabilities={"erp": Capabilities(updates=True, cancels=True)})


def send(p: Pipeline, text: str, ref: str) -> None:
    r = p.receive(RawMessage(body=text.encode(), source="t", source_ref=ref, display_name=f"{ref}.edi"))
    p.process(r.message_id)


def dispatched(store, *pos: str) -> None:  # type: ignore[no-untyped-def]
    with store.begin() as c:
        c.execute(update(t.orders).where(t.orders.c.po_number.in_(pos)).values(state="dispatched"))


def order_row(store, po_number: str):  # type: ignore[no-untyped-def]
    with store.engine.connect() as c:
        return c.execute(select(t.orders).where(t.orders.c.po_number == po_number).order_by(t.orders.c.version.desc())).mappings().first()


def docs(store):  # type: ignore[no-untyped-def]
    with store.engine.connect() as c:
        return list(c.execute(select(t.outbox).where(t.outbox.c.kind != "order").order_by(t.outbox.c.id)).mappings())


def events(store, order_id: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with store.engine.connect() as c:
        return [(e.kind, e.detail) for e in c.execute(select(t.events).where(t.events.c.order_id == order_id).order_by(t.events.c.id))]


def test_ship_then_invoice_moves_the_order_records_history_and_queues_the_partners_documents(store) -> None:  # type: ignore[no-untyped-def]
    p = pipeline(store)
    send(p, interchange([po(f"PO-{i}", LINES, st=f"{i:04d}") for i in (1, 2, 3)]), "1")
    send(p, interchange([po("Q-1", LINES)], sender="QUIETCO", icn="000000002"), "2")
    dispatched(store, "PO-1", "PO-2", "Q-1")
    f = Fulfilment(store, CONFIG)

    done = f.record_shipment("PO-1", Shipment("UPSN", ("1Z999AA10123456784",), "GROUND", (ShippedLine("SKU-1", Decimal(1)),)), by="ann")
    assert done.state == "shipped" and done.documents == ["856 000000001 for acme (PO PO-1)"]
    again = f.record_shipment("PO-1", Shipment("UPSN", ("1Z999AA10123456791",)))  # the rest, later: still shipped
    assert again.state == "shipped" and again.documents[0].startswith("856 000000002 ")
    inv = f.record_invoice(done.order_id[:8], Invoice("INV-1", tax=Decimal("1.20")))
    assert inv.state == "invoiced" and inv.documents[0].startswith("810 000000003 ")
    assert f.record_invoice("PO-2", Invoice("INV-2")).state == "invoiced"  # invoiced without a ship notice
    # Reported again (a carrier hook, a connector's retry): one effect.
    assert f.record_shipment("PO-1", Shipment("UPSN", ("1Z999AA10123456791",))).repeat
    assert f.record_invoice("PO-2", Invoice("INV-2")).repeat
    assert f.record_shipment("Q-1", Shipment("FDEG")).documents == []  # this partner wants none

    history = events(store, done.order_id)
    assert any(k == "shipment" and "tracking 1Z999AA10123456784" in d and "recorded by ann" in d for k, d in history)
    assert any(k == "invoice" and "invoice INV-1, total 36.18" in d for k, d in history)  # 2*9.99 + 3*5 + 1.20
    rows = docs(store)
    assert [(r["kind"], r["control_number"], r["state"], r["connector"]) for r in rows] == [
        ("856", "000000001", "pending", "folder:/srv/acme/out"), ("856", "000000002", "pending", "folder:/srv/acme/out"),
        ("810", "000000003", "pending", "folder:/srv/acme/out"), ("810", "000000004", "pending", "folder:/srv/acme/out"),
    ]
    for r in rows:
        check_x12(r["body"].decode(), r["kind"])
    assert rows[0]["order_id"] == done.order_id and rows[0]["group_control_number"] == "1"

    # Refusals record nothing: an order not sent yet, an unknown item, an unknown order.
    with pytest.raises(GatewayError, match="is validated: only an order sent"):
        f.record_shipment("PO-3", Shipment("UPSN"))
    dispatched(store, "PO-3")
    with pytest.raises(GatewayError, match="no line with item 'NOPE'"):
        f.record_shipment("PO-3", Shipment("UPSN", lines=(ShippedLine("NOPE", Decimal(1)),)))
    with pytest.raises(GatewayError, match="no order has an id or PO number"):
        f.record_invoice("PO-404", Invoice("INV-9"))
    assert order_row(store, "PO-3")["state"] == "dispatched" and len(docs(store)) == 4

    # The partner's 997 is matched to our 856 and 810 by their GS06 (AK1 02).
    ack = [
        "ISA*00*          *00*          *ZZ*ACMERETAIL     *ZZ*WIDGETCO       *261127*1000*U*00401*000005001*0*P*>",
        "GS*FA*ACMERETAIL*WIDGETCO*20261127*1000*5001*X*004010", "ST*997*0001", "AK1*SH*1", "AK2*856*0001", "AK5*A", "AK9*A*1*1*1",
        "SE*6*0001", "ST*997*0002", "AK1*IN*3", "AK2*810*0001", "AK5*R*5", "AK9*R*1*1*0", "SE*6*0002", "GE*2*5001", "IEA*1*000005001",
    ]
    send(p, "~\n".join(ack) + "~\n", "ack")
    acked = [(r["kind"], r["control_number"], r["ack_status"], r["ack_code"]) for r in docs(store)]
    assert acked == [("856", "000000001", "accepted", "A"), ("856", "000000002", None, None), ("810", "000000003", "rejected", "R"), ("810", "000000004", None, None)]

    # A change to a shipped or invoiced order waits for a person.
    send(p, interchange([po("PO-1", [("9", "9.99", "SKU-1")], purpose="04")], icn="000000003"), "3")
    change = order_row(store, "PO-1")
    assert change["version"] == 2 and change["state"] == "held" and change["reason"] == "ALREADY_SHIPPED"
    # The version that shipped is still the one a later report about the PO is recorded on.
    late = f.record_shipment("PO-1", Shipment("UPSN", ("1Z999AA10123456808",)))
    assert late.order_id == done.order_id and late.state == "invoiced"


def test_edifact_orders_get_desadv_and_invoic_matched_by_the_partners_contrl(store) -> None:  # type: ignore[no-untyped-def]
    p = pipeline(store)
    send(p, (ROOT / "tests" / "fixtures" / "edifact" / "orders_full_d96a.edi").read_text(encoding="latin-1"), "e1")
    dispatched(store, "PO-4711")
    f = Fulfilment(store, CONFIG)
    assert f.record_shipment("PO-4711", Shipment("DHL", ("JD0123",))).documents == ["DESADV 1 for eddy (PO PO-4711)"]
    assert f.record_invoice("PO-4711", Invoice("INV-7", lines=(ShippedLine("ART-1", Decimal(12)),))).documents == ["INVOIC 2 for eddy (PO PO-4711)"]
    for row in docs(store):
        check_edifact(row["body"].decode(), row["kind"])
        assert row["body"].startswith(b"UNA:+,? '")  # the order's own syntax: decimal comma, its UNA
    contrl = [
        "UNA:+.? 'UNB+UNOC:3+5412345000013:14+8712345000004:14+261127:1000+77'",
        "UNH+1+CONTRL:D:3:UN'UCI+1+8712345000004:14+5412345000013:14+7'UNT+3+1'",
        "UNH+2+CONTRL:D:3:UN'UCI+2+8712345000004:14+5412345000013:14+4+13'UNT+3+2'UNZ+2+77'",
    ]
    send(p, "".join(contrl), "c1")
    assert [(r["kind"], r["ack_status"]) for r in docs(store)] == [("DESADV", "accepted"), ("INVOIC", "rejected")]


def test_stock_report_from_the_inventory_master_data(store) -> None:  # type: ignore[no-untyped-def]
    f = Fulfilment(store, CONFIG)
    with pytest.raises(GatewayError, match="no EDI order yet"):
        f.send_stock_report("acme")  # no order to take the envelope from, and no acks.x12_id
    with pytest.raises(GatewayError, match="no partner named 'nobody'"):
        f.send_stock_report("nobody")
    now = dt.datetime.now(dt.UTC)
    with store.begin() as c:
        c.execute(insert(t.stock), [
            {"sku": "SKU-1", "warehouse": "A", "on_hand": 10, "reserved": 3, "source": "t", "updated_at": now},
            {"sku": "SKU-1", "warehouse": "B", "on_hand": 5, "reserved": 0, "source": "t", "updated_at": now},
            {"sku": "SKU-2", "warehouse": "A", "on_hand": 1, "reserved": 1, "source": "t", "updated_at": now},
            {"sku": "OTHER", "warehouse": "A", "on_hand": 7, "reserved": 0, "source": "t", "updated_at": now},
        ])
    send(pipeline(store), interchange([po("PO-1", LINES)]), "1")
    said = f.send_stock_report("acme")
    assert said == "846 000000001 for acme (3 SKU(s))"
    # Before any order, the envelope is made from the configured ids (EDIFACT 'QQ:ID' / 'ID:QQ').
    assert f.send_stock_report("stocky") == "INVRPT 1 for stocky (3 SKU(s))"  # every SKU: SKU-1, SKU-2, OTHER
    row, invrpt = docs(store)
    check_edifact(invrpt["body"].decode(), "INVRPT")
    assert "UNB+UNOC:3+4000009000008:14+4000001000002:14+" in invrpt["body"].decode()
    body = row["body"].decode()
    check_x12(body, "846")
    assert "LIN**VP*SKU-1~QTY*33*12*EA~LIN**VP*SKU-2~QTY*33*0*EA~LIN**VP*SKU-9~QTY*33*0*EA~" in body
    assert "*ZZ*WIDGETCO       *ZZ*ACMERETAIL     *" in body and row["order_id"] is None


def test_the_buyer_gets_a_shipping_email_when_the_partner_wants_one(store) -> None:  # type: ignore[no-untyped-def]
    from email import policy
    from email.parser import BytesParser

    cfg = GatewayConfig.model_validate(
        {
            "connectors": [{"type": "file", "name": "erp", "path": "/nonexistent"}],
            "smtp": {"host": "127.0.0.1", "port": 2525, "tls": "none", "from_address": "Orders <orders@widgetco.example>"},
            "partners": [{"name": "acme", "x12_ids": ["ZZ:ACMERETAIL"], "acks": {"functional": False, "shipping_email": True}}],
        }
    )
    p = pipeline(store)
    send(p, interchange([po("PO-1", LINES, st="0001"), po("PO-2", LINES, st="0002")]), "1")
    dispatched(store, "PO-1", "PO-2")
    with store.begin() as c:
        row = c.execute(select(t.orders.c.id, t.orders.c.data).where(t.orders.c.po_number == "PO-1")).one()
        data = dict(row.data) if isinstance(row.data, dict) else json.loads(row.data)
        data["customer_email"] = "jane@buyer.example"
        c.execute(update(t.orders).where(t.orders.c.id == row.id).values(data=data))
        other = c.execute(select(t.orders.c.id, t.orders.c.data).where(t.orders.c.po_number == "PO-2")).one()
        data = dict(other.data) if isinstance(other.data, dict) else json.loads(other.data)
        data["customer_email"] = "x@y.example\r\nBcc: all@evil.example"  # never a recipient
        c.execute(update(t.orders).where(t.orders.c.id == other.id).values(data=data))
    f = Fulfilment(store, cfg)
    done = f.record_shipment("PO-1", Shipment("UPSN", ("1Z999AA10123456784",), "GROUND"))
    assert done.documents == ["shipping e-mail to jane@buyer.example (PO PO-1)"]
    assert f.record_shipment("PO-2", Shipment("UPSN")).documents == []
    (row,) = docs(store)
    assert (row["kind"], row["connector"], row["order_id"]) == ("MAILREPLY", "smtp", done.order_id)
    msg = BytesParser(policy=policy.default).parsebytes(row["body"])
    assert msg["To"] == "jane@buyer.example" and msg["Subject"] == "Your order PO-1 has shipped"
    text = msg.get_content()
    assert "with UPSN (GROUND)" in text and "  1Z999AA10123456784" in text and "  2 EA SKU-1" in text


def test_gateway_run_schedules_a_stock_report_per_partner_that_wants_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gateway.app import Gateway
    from gateway.service import schedule_stock_reports
    from gateway.store import Store

    store = Store(f"sqlite:///{tmp_path / 'g.db'}")  # the scheduling is the same on both databases

    class Sched:
        def __init__(self) -> None:
            self.jobs: list[tuple[object, dict[str, object]]] = []

        def add_job(self, fn: object, trigger: str, **kw: object) -> None:
            self.jobs.append((fn, {"trigger": trigger, **kw}))

    sched = Sched()
    assert schedule_stock_reports(sched, Gateway(CONFIG, store=store)) == ["stock-report:acme"]
    ((job, kw),) = sched.jobs
    assert kw == {"trigger": "interval", "minutes": 60.0, "id": "stock-report:acme", "name": "stock-report:acme"}
    send(pipeline(store), interchange([po("PO-1", LINES)]), "1")
    job()  # type: ignore[operator]
    assert [(r["kind"], r["partner"]) for r in docs(store)] == [("846", "acme")]
    store.dispose()

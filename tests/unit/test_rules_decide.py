"""The decide step inside processing: states, stored findings, and the 855/ORDRSP that follows."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from gateway.config import PartnerConfig
from gateway.connector import RawMessage
from gateway.masterdata.model import Item, Price
from gateway.partners import PartnerDirectory
from gateway.pipeline import Pipeline
from gateway.processing.decide import StoreHistory
from gateway.rules import InMemoryMasterData, RulesEngine, build_rules, validate_rule_configs
from gateway.store import tables as t
from tests.support.documents import send_documents
from tests.support.x12gen import interchange, po

EDIFACT = Path(__file__).resolve().parents[1] / "fixtures" / "edifact" / "orders_full_d96a.edi"


def edifact(icn: str, po_number: str) -> bytes:
    """The fixture ORDERS as a production interchange (a test one is held before the rules)."""
    body = EDIFACT.read_bytes().replace(b"ORDERS++1++1'", b"ORDERS++1'")
    return body.replace(b"IC0001", icn.encode()).replace(b"PO-4711", po_number.encode())


def pipeline(store, tmp_path, md, rules) -> Pipeline:
    partners = [
        PartnerConfig(name="acme", x12_ids=["ZZ:ACMERETAIL"], acks={"outbound": tmp_path / "out", "order_response": True, "functional": False}),
        PartnerConfig(name="buyer", edifact_ids=["5412345000013"], acks={"outbound": tmp_path / "out", "order_response": True, "functional": False}),
    ]
    configs = validate_rule_configs(rules)
    return Pipeline(
        store, connectors=["erp"], partners=PartnerDirectory(partners, mappings_root=tmp_path / "maps"),
        rules=lambda conn: RulesEngine(build_rules(configs), md, StoreHistory(conn)),
    )


def ingest(p: Pipeline, body: bytes, name: str) -> None:
    r = p.receive(RawMessage(body=body, source="t", source_ref=name, display_name=name))
    p.process(r.message_id)
    send_documents(p.store, p.partners.configs)


def acks_written(tmp_path: Path) -> list[str]:
    return [f.read_text() for f in sorted((tmp_path / "out").glob("*"))]


MD = InMemoryMasterData(
    items=[Item("SKU-1"), Item("SKU-2"), Item("A", gtin="5412345678908", base_uom="PCE"), Item("B", gtin="4000862141404", base_uom="KGM")],
    prices=[Price("SKU-1", Decimal("9.99"), "USD"), Price("SKU-2", Decimal("5.00"), "USD")],
)


def test_rejected_held_and_accepted_orders_in_one_file(store, tmp_path):
    p = pipeline(store, tmp_path, MD, [{"type": "catalogue"}, {"type": "price"}])
    body = interchange([
        po("PO-OK", [("2", "9.99", "SKU-1")], st="0001"),
        po("PO-BAD", [("2", "9.99", "SKU-1"), ("1", "1.00", "NOPE")], st="0002"),
        po("PO-PRICE", [("2", "7.00", "SKU-2")], st="0003"),
    ]).encode()
    ingest(p, body, "three.edi")
    with store.engine.connect() as c:
        states = {r.po_number: (r.state, r.reason) for r in c.execute(select(t.orders))}
        found = [(r.code, r.line, r.outcome) for r in c.execute(select(t.rule_findings).order_by(t.rule_findings.c.id))]
        queued = c.execute(select(t.outbox.c.order_id).where(t.outbox.c.kind == "order")).all()
    assert states == {"PO-OK": ("validated", None), "PO-BAD": ("quarantined", "UNKNOWN_SKU"), "PO-PRICE": ("held", "PRICE_OFF_LIST")}
    assert found == [("UNKNOWN_SKU", "2", "reject"), ("PRICE_OFF_LIST", "1", "hold")]
    assert len(queued) == 1
    texts = acks_written(tmp_path)
    baks = sorted(next(s for s in text.split("~") if s.strip().startswith("BAK")).strip().split("*")[2:4] for text in texts)
    assert baks == [["AT", "PO-OK"], ["RD", "PO-BAD"]]  # the held order is not answered while it waits
    bad = next(text for text in texts if "PO-BAD" in text)
    assert bad.count("ACK*IR") == 2

    held = next(r for r in p.held_for_review() if r["po_number"] == "PO-PRICE")
    p.approve(held["id"], by="dana")
    with store.engine.connect() as c:
        decision = c.execute(select(t.rule_decisions).where(t.rule_decisions.c.order_id == held["id"])).one()
        assert c.execute(select(t.orders.c.state).where(t.orders.c.id == held["id"])).scalar() == "validated"
    assert (decision.outcome, decision.decided_by) == ("accept", "dana")


def test_ordrsp_follows_the_decision(store, tmp_path):
    # Both GTINs are known: accepted. Without the catalogue they are unknown: the ORDRSP refuses.
    p = pipeline(store, tmp_path, MD, [{"type": "catalogue"}])
    ingest(p, edifact("IC0001", "PO-4711"), "orders.edi")
    ok = acks_written(tmp_path)
    assert len(ok) == 1 and ok[0].split("BGM+231")[1].split("'")[0] == "+PO-4711+29"
    assert "LIN+1+5" in ok[0] and "LIN+2+5" in ok[0]
    store2_md = InMemoryMasterData(items=[Item("A", gtin="5412345678908", base_uom="PCE")])
    p2 = pipeline(store, tmp_path / "second", store2_md, [{"type": "catalogue"}])
    ingest(p2, edifact("IC0002", "PO-4712"), "orders2.edi")
    refused = acks_written(tmp_path / "second")
    assert len(refused) == 1
    bgm = refused[0].split("BGM+231")[1].split("'")[0]
    assert bgm.endswith("+27")
    assert "LIN+1+7" in refused[0] and "LIN+2+7" in refused[0]


def test_same_content_decided_before_is_a_duplicate(store, tmp_path):
    p = pipeline(store, tmp_path, MD, [{"type": "duplicates"}])
    ingest(p, interchange([po("PO-A", [("3", "9.99", "SKU-1")])], icn="000000001").encode(), "a.edi")
    ingest(p, interchange([po("PO-B", [("3", "9.99", "SKU-1")])], icn="000000002").encode(), "b.edi")
    with store.engine.connect() as c:
        states = {r.po_number: (r.state, r.reason) for r in c.execute(select(t.orders))}
    assert states == {"PO-A": ("validated", None), "PO-B": ("held", "DUPLICATE_CONTENT")}


def test_a_correction_is_decided_by_the_rules_as_an_arriving_order(store, tmp_path):
    """An edit or release goes through the configured rules, not only validation: a corrected
    order can never slip past a rule the original met."""
    p = pipeline(store, tmp_path, MD, [{"type": "catalogue"}, {"type": "price"}])
    ingest(p, interchange([po("PO-P", [("2", "7.00", "SKU-2")])]).encode(), "p.edi")
    with store.engine.connect() as c:
        [held] = [r for r in c.execute(select(t.orders)).mappings() if r["po_number"] == "PO-P"]
    assert (held["state"], held["reason"]) == ("held", "PRICE_OFF_LIST")
    # A "correction" to an item the catalogue does not know is refused by the rules.
    bad = p.exceptions.edit(held["id"], [("lines[1].sku", "NOPE")], by="ana")
    assert (bad.state, bad.reason) == ("quarantined", "UNKNOWN_SKU")
    # The price put right: accepted and queued once.
    good = p.exceptions.edit(bad.order_id, [("lines[1].sku", "SKU-2"), ("lines[1].unit_price", "5.00")], by="ana")
    assert (good.state, good.reason) == ("validated", None) and good.version == 3
    with store.engine.connect() as c:
        queued = c.execute(select(t.outbox.c.order_id).where(t.outbox.c.kind == "order")).scalars().all()
    assert queued == [good.order_id]

"""The 855/ORDRSP a person's decision implies: an edit or release that accepts an order answers
AT with the partner's own separators, a rejection answers RJ / ORDRSP 27, and a partner that
wants no order responses gets none."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from gateway.acks.outbound import plan_answer
from gateway.config import PartnerConfig
from gateway.connector import RawMessage
from gateway.model import Order
from gateway.partners import PartnerDirectory
from gateway.pipeline import Pipeline
from gateway.store import Store
from gateway.store import tables as t
from tests.support.x12gen import interchange, po


def pipeline(store: Store, tmp_path: Path, *, order_response: bool = True) -> Pipeline:
    partners = [PartnerConfig(name="acme", x12_ids=["ZZ:ACMERETAIL"], acks={"outbound": tmp_path / "out", "functional": False, "order_response": order_response})]
    return Pipeline(store, connectors=["erp"], partners=PartnerDirectory(partners, mappings_root=tmp_path / "maps"))


def ingest(p: Pipeline, body: str) -> None:
    r = p.receive(RawMessage(body=body.encode(), source="t", source_ref="po.edi", display_name="po.edi"))
    p.process(r.message_id)


def answers(store: Store) -> list[tuple[str | None, str]]:
    """(order id, BAK02) of every queued 855, in order."""
    with store.engine.connect() as c:
        rows = c.execute(select(t.outbox.c.order_id, t.outbox.c.body).where(t.outbox.c.kind == "855").order_by(t.outbox.c.id)).all()
    out = []
    for oid, body in rows:
        bak = next(s.strip() for s in bytes(body).decode().split("|") if s.strip().startswith("BAK^"))
        out.append((oid, bak.split("^")[2]))
    return out


def order_ids(store: Store) -> list[tuple[str, str]]:
    with store.engine.connect() as c:
        return [(r.id, r.state) for r in c.execute(select(t.orders.c.id, t.orders.c.state).order_by(t.orders.c.version))]


def with_separators(text: str) -> str:
    """The partner writes ^ between elements and | after segments: the answer must too."""
    return text.replace("*", "^").replace("~\n", "|\n")


def test_an_edit_that_accepts_a_refused_order_answers_at_in_the_partners_separators(store: Store, tmp_path: Path) -> None:
    p = pipeline(store, tmp_path)
    ingest(p, with_separators(interchange([po("PO-7", [("0", "1.00", "A"), ("2", "1.00", "B")])])))
    [(old, state)] = order_ids(store)
    assert state == "quarantined"
    [(first, bak)] = answers(store)
    assert first == old and bak.startswith("R")  # refused on arrival: the negative answer
    done = p.exceptions.edit(old[:8], [("lines[1].quantity", "4")], by="ana")
    assert done.state == "validated"
    assert answers(store)[1:] == [(done.order_id, "AT")]


def test_a_release_that_accepts_answers_at_after_the_refusal(store: Store, tmp_path: Path) -> None:
    p = pipeline(store, tmp_path)
    ingest(p, with_separators(interchange([po("PO-8", [("0", "1.00", "A")])])))
    [(oid, _)] = order_ids(store)
    row = p.exceptions.release(oid[:8], by="ana", override=True)
    assert row["state"] == "validated"
    refused, accepted = answers(store)
    assert refused[0] == accepted[0] == oid and refused[1].startswith("R") and accepted[1] == "AT"


def test_no_answer_when_the_partner_wants_no_order_responses(store: Store, tmp_path: Path) -> None:
    p = pipeline(store, tmp_path, order_response=False)
    ingest(p, interchange([po("PO-9", [("0", "1.00", "A")])]))
    [(oid, _)] = order_ids(store)
    p.exceptions.release(oid[:8], by="ana", override=True)
    assert answers(store) == []


def test_a_rejected_edifact_order_gets_ordrsp_27(store: Store) -> None:
    order = Order.model_validate(
        {
            "po_number": "E-1", "channel": "edifact", "partner": "acme", "lines": [{"line_number": "1", "quantity": "2", "sku": "A"}],
            "source": {"sender_id": "ACME", "receiver_id": "WIDGETCO", "interchange_control_number": "17", "version": "D:96A:UN"},
        }
    )
    cfg = PartnerConfig(name="acme", edifact_ids=["ACME"], acks={"order_response": True, "outbound": "/tmp/x"})
    with store.begin() as conn:
        rejected = plan_answer(order, False, cfg, conn, head=b"UNA:+.? 'UNB+UNOC:3+ACME+WIDGETCO+261127:0930+17'")
        accepted = plan_answer(order, True, cfg, conn)
        x12 = plan_answer(order.model_copy(update={"channel": "email"}), True, cfg, conn)
    assert rejected is not None and accepted is not None and x12 is None
    assert rejected.kind == "ORDRSP" and "BGM+231+E-1+27'" in rejected.body
    assert "BGM+231+E-1+29'" in accepted.body
    assert rejected.control_number != accepted.control_number

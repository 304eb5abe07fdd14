"""gateway.processing.exception_queue: corrections as new versions, releases, and their limits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.connector import RawMessage
from gateway.errors import GatewayError
from gateway.pipeline import Pipeline
from gateway.processing.exception_queue import parse_assignments
from gateway.store import Store
from gateway.store import tables as t
from tests.support.x12gen import interchange, po


@pytest.fixture
def pipeline(store: Store) -> Pipeline:
    return Pipeline(store, connectors=["erp"])


def ingest(pipeline: Pipeline, body: str, name: str = "po.edi") -> None:
    r = pipeline.receive(RawMessage(body=body.encode(), source="test", source_ref=f"/in/{name}", display_name=name))
    pipeline.process(r.message_id)


def orders(store: Store) -> list[dict]:
    with store.engine.connect() as c:
        return [dict(r) for r in c.execute(select(t.orders).order_by(t.orders.c.version)).mappings()]


def outbox(store: Store) -> list[dict]:
    with store.engine.connect() as c:
        return [dict(r) for r in c.execute(select(t.outbox)).mappings()]


def test_assignments_are_read_or_refused_with_an_example() -> None:
    assert parse_assignments(["lines[2].quantity=10", "ship_to.postal_code= 30301"]) == [
        ("lines[2].quantity", "10"),
        ("ship_to.postal_code", " 30301"),
    ]
    for bad in (["quantity"], ["lines[2].quantity"], ["x;drop=1"], []):
        with pytest.raises(GatewayError, match="PATH=VALUE"):
            parse_assignments(bad)


def test_an_edit_is_a_new_version_checked_again_and_queued_once(store: Store, pipeline: Pipeline) -> None:
    ingest(pipeline, interchange([po("PO-1", [("0", "1.00", "A"), ("2", "1.00", "B")])]))
    [old] = orders(store)
    assert old["state"] == "quarantined" and outbox(store) == []
    done = pipeline.exceptions.edit(old["id"][:8], parse_assignments(["lines[1].quantity=4", "ship_to.postal_code=30301"]), by="ana")
    assert done.state == "validated" and done.version == 2
    assert done.changes == ["lines[1].quantity: 0 -> 4", "ship_to.postal_code: (empty) -> 30301"]
    first, second = orders(store)
    assert first["state"] == "superseded" and second["supersedes"] == first["id"]
    assert second["data"]["lines"][0]["quantity"] == "4" and second["data"]["ship_to"]["postal_code"] == "30301"
    assert [o["order_id"] for o in outbox(store)] == [second["id"]]
    with pytest.raises(GatewayError, match="is superseded"):
        pipeline.exceptions.edit(old["id"][:8], [("lines[1].quantity", "5")], by="ana")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("partner", "other", "where the order came from"),
        ("source.sender_id", "X", "where the order came from"),
        ("lines[7].quantity", "1", "no line numbered 7"),
        ("lines[1].quantity", "many", "not valid"),
        ("po_number.x", "1", "is not a group of fields"),
    ],
)
def test_an_edit_that_cannot_apply_changes_nothing(store: Store, pipeline: Pipeline, path: str, value: str, message: str) -> None:
    ingest(pipeline, interchange([po("PO-1", [("0", "1.00", "A")])]))
    [old] = orders(store)
    with pytest.raises(GatewayError, match=message):
        pipeline.exceptions.edit(old["id"], [(path, value)], by="ana")
    assert [o["state"] for o in orders(store)] == ["quarantined"]


def test_a_corrected_po_number_is_linked_under_the_new_number(store: Store, pipeline: Pipeline) -> None:
    ingest(pipeline, interchange([po("PO-1")], icn="000000001"), "a.edi")
    ingest(pipeline, interchange([po("PO-1", [("9", "1.00", "Z")])], icn="000000002"), "b.edi")
    dup = next(o for o in orders(store) if o["state"] == "quarantined")
    assert dup["reason"] == "DUPLICATE_PO"
    done = pipeline.exceptions.edit(dup["id"], [("po_number", "PO-2")], by="ana")
    assert done.state == "validated"
    new = next(o for o in orders(store) if o["id"] == done.order_id)
    assert new["order_key"].endswith("|PO-2") and new["po_number"] == "PO-2"
    # Edited back to the number that is taken, it is a duplicate PO again: linked as on arrival.
    ingest(pipeline, interchange([po("PO-3", [("0", "1.00", "A")])], icn="000000003"), "c.edi")
    bad = next(o for o in orders(store) if o["state"] == "quarantined")
    again = pipeline.exceptions.edit(bad["id"], [("po_number", "PO-1"), ("lines[1].quantity", "1")], by="ana")
    assert again.state == "quarantined" and again.reason == "DUPLICATE_PO"


def test_release_checks_again_and_refuses_what_cannot_be_released(store: Store, pipeline: Pipeline) -> None:
    ingest(pipeline, interchange([po("PO-1", [("0", "1.00", "A")])]))
    [row] = orders(store)
    with pytest.raises(GatewayError, match="still refused: VALIDATION:quantity_not_positive"):
        pipeline.exceptions.release(row["id"], by="bo")
    with pytest.raises(GatewayError, match="--by"):
        pipeline.exceptions.release(row["id"], by=" ")
    released = pipeline.exceptions.release(row["id"], by="bo", override=True)
    assert released["state"] == "validated" and len(outbox(store)) == 1
    with pytest.raises(GatewayError, match="only a quarantined order"):
        pipeline.exceptions.release(row["id"], by="bo")


def test_an_edit_of_a_held_order_is_not_taken_for_a_second_order_of_its_po(store: Store) -> None:
    """A held order is a live version of its PO; its corrected version replaces it and must not
    be refused as DUPLICATE_PO against it (found by the console's browser test)."""
    from gateway.processing.decide import StoreHistory
    from gateway.rules import InMemoryMasterData, RulesEngine, build_rules, validate_rule_configs

    configs = build_rules(validate_rule_configs([{"type": "risk", "hold_above": 100}]))
    p = Pipeline(store, connectors=["erp"], rules=lambda conn: RulesEngine(configs, InMemoryMasterData(), StoreHistory(conn)))
    ingest(p, interchange([po("PO-9", [("500", "1.00", "A")])]))
    [held] = orders(store)
    assert held["state"] == "held" and held["reason"] == "HIGH_VALUE"
    done = p.exceptions.edit(held["id"][:8], parse_assignments(["lines[1].quantity=50"]), by="ana")
    assert (done.state, done.reason) == ("validated", None)
    first, second = orders(store)
    assert first["state"] == "superseded" and second["state"] == "validated"
    assert [o["order_id"] for o in outbox(store)] == [second["id"]]

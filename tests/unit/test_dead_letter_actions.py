"""gateway.store.dead_letters and gateway.processing.dead_letters on both backends: filters,
context, discard, replay with who, and an edit sent only where the order died."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from gateway.connector import Receipt
from gateway.errors import GatewayError
from gateway.pipeline import Pipeline
from gateway.processing.dead_letters import DeadLetters
from gateway.retry import RetryPolicy
from gateway.store import tables as t
from gateway.store.dead_letters import DeadFilter, attempts_of, discard, list_dead, replay
from gateway.store.outbox import mark_dead, mark_failed, mark_sent
from tests.support.x12gen import interchange, po
from tests.unit.test_exception_queue import ingest
from tests.unit.test_outbox import T0, claim, events, order_state, rows, seed


def test_filters_context_discard_and_replay_with_who(store: Any) -> None:
    a = seed(store, po="PO-A")
    b = seed(store, po="PO-B", connectors=("erp", "crm"))
    c = seed(store, po="PO-C")
    claims = {(x.order_id, x.connector): x for x in claim(store)}
    mark_dead(store, claims[(b, "erp")], error="HTTP 422: unknown SKU", status=422, now=T0)
    mark_sent(store, claims[(b, "crm")], Receipt(status=201), now=T0)
    mark_dead(store, claims[(c, "erp")], error="HTTP 400: bad", status=400, now=T0)
    mark_failed(store, claims[(a, "erp")], error="timeout", policy=RetryPolicy(), now=T0, rand=lambda: 0.0)
    [again] = claim(store, T0 + dt.timedelta(hours=1))
    mark_dead(store, again, error="HTTP 422: 100% wrong_sku", status=422, now=T0 + dt.timedelta(hours=1))

    assert len(list_dead(store)) == 3
    assert [d.po_number for d in list_dead(store, DeadFilter(error="100%"))] == ["PO-A"]
    assert list_dead(store, DeadFilter(error="1_0")) == []  # no wildcards
    assert [d.po_number for d in list_dead(store, DeadFilter(since=T0 + dt.timedelta(minutes=30)))] == ["PO-A"]
    assert len(list_dead(store, DeadFilter(until=T0 + dt.timedelta(minutes=30), partner="acme"))) == 2
    assert [d.order_id for d in list_dead(store, DeadFilter(order=b[:8]))] == [b]
    with pytest.raises(GatewayError, match="6 characters"):
        list_dead(store, DeadFilter(order="ab"))
    dead_a = list_dead(store, DeadFilter(po="PO-A"))[0]
    log = attempts_of(store, [dead_a.outbox_id])[dead_a.outbox_id]
    assert [x.kind for x in log] == ["attempt", "retry_scheduled", "attempt", "dead"] and "timeout" in (log[1].detail or "")

    dead_b = list_dead(store, DeadFilter(po="PO-B"))[0]
    with pytest.raises(GatewayError, match="--reason"):
        discard(store, [dead_b.outbox_id], reason=" ", by="bo")
    assert discard(store, [dead_b.outbox_id, 999_999], reason="cancelled by phone", by="bo") == 1
    assert order_state(store, b) == "discarded"
    assert [r.state for r in rows(store, b)] == ["discarded", "sent"]
    assert ("order_discarded", "discarded by bo: cancelled by phone") in events(store, b)
    assert replay(store, [dead_b.outbox_id], by="cy") == 0  # a discarded delivery never goes

    assert replay(store, [d.outbox_id for d in list_dead(store, DeadFilter(error="HTTP 400"))], by="cy") == 1
    assert order_state(store, c) == "validated"
    assert "queued again by cy" in events(store, c)[-1][1]
    assert [d.po_number for d in list_dead(store)] == ["PO-A"]


@pytest.fixture
def pipeline(store: Any) -> Pipeline:
    return Pipeline(store, connectors=["erp", "crm"])


def test_an_edit_goes_only_where_the_order_died(store: Any, pipeline: Pipeline) -> None:
    ingest(pipeline, interchange([po("PO-9", [("2", "1.00", "BAD")])]))
    claims = {x.connector: x for x in claim(store, dt.datetime.now(dt.UTC))}
    mark_sent(store, claims["crm"], Receipt(status=201))
    mark_dead(store, claims["erp"], error="HTTP 422: unknown SKU BAD", status=422)
    [dead] = list_dead(store)
    letters = DeadLetters(store, pipeline.exceptions)
    with pytest.raises(GatewayError, match="not valid"):
        letters.edit(dead.outbox_id, [("lines[1].quantity", "many")], by="ana")
    assert len(list_dead(store)) == 1  # nothing changed
    done = letters.edit(dead.outbox_id, [("lines[1].sku", "GOOD")], by="ana")
    assert done.state == "validated" and done.version == 2 and done.changes == ["lines[1].sku: BAD -> GOOD"]
    assert list_dead(store) == [] and order_state(store, dead.order_id) == "superseded"
    new_rows = rows(store, done.order_id)
    assert [(r.connector, r.state, r.action) for r in new_rows] == [("erp", "pending", "create")]
    with store.engine.connect() as conn:
        data = conn.execute(select(t.orders.c.data).where(t.orders.c.id == done.order_id)).scalar_one()
    assert data["lines"][0]["sku"] == "GOOD"
    assert any(k == "discarded" and "replaced by edited version 2" in d and "ana" in d for k, d in events(store, dead.order_id))
    with pytest.raises(GatewayError, match="no dead letter"):
        letters.edit(dead.outbox_id, [("lines[1].sku", "X")], by="ana")

"""Changes and cancellations: linked to the original by partner and PO, never a second order."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.connector import Capabilities, RawMessage
from gateway.diff import order_diff
from gateway.pipeline import Pipeline
from gateway.store import tables as t
from tests.support.x12gen import interchange, po

CAN_ALL = Capabilities(updates=True, cancels=True)


def send(pipeline: Pipeline, txs: list[list[str]], icn: str) -> str:
    body = interchange(txs, icn=icn).encode()
    r = pipeline.receive(RawMessage(body=body, source="t", source_ref=icn, display_name=f"{icn}.edi"))
    pipeline.process(r.message_id)
    return r.message_id


def orders(store):
    with store.engine.connect() as c:
        return {(o["po_number"], o["version"]): o for o in c.execute(select(t.orders).order_by(t.orders.c.created_at)).mappings()}


def outbox(store):
    with store.engine.connect() as c:
        return list(c.execute(select(t.outbox).order_by(t.outbox.c.id)).mappings())


def history(store, order_id):
    with store.engine.connect() as c:
        return [(e.kind, e.detail) for e in c.execute(select(t.events).where(t.events.c.order_id == order_id).order_by(t.events.c.id))]


def test_cancel_after_the_original_is_a_second_version_sent_as_a_cancel(store):
    p = Pipeline(store, connectors=["erp"], capabilities={"erp": CAN_ALL})
    send(p, [po("PO-1", [("2", "9.99", "SKU-1")])], "000000001")
    send(p, [po("PO-1", [("2", "9.99", "SKU-1")], purpose="01")], "000000002")
    o = orders(store)
    v1, v2 = o[("PO-1", 1)], o[("PO-1", 2)]
    assert v2["state"] == "validated" and v2["supersedes"] == v1["id"] and v2["purpose"] == "cancel"
    rows = outbox(store)
    assert [(r["action"], r["order_id"]) for r in rows] == [("create", v1["id"]), ("cancel", v2["id"])]
    assert rows[1]["after_id"] == rows[0]["id"]  # waits for the create to be sent
    kinds = [k for k, _ in history(store, v2["id"])]
    assert "changed" in kinds and "validated" in kinds
    assert any(k == "superseded" and "cancel received as version 2" in d for k, d in history(store, v1["id"]))


def test_change_shows_the_difference_and_goes_as_an_update(store):
    p = Pipeline(store, connectors=["erp"], capabilities={"erp": CAN_ALL})
    send(p, [po("PO-1", [("2", "9.99", "SKU-1")])], "000000001")
    send(p, [po("PO-1", [("5", "9.99", "SKU-1")], purpose="05")], "000000002")
    v2 = orders(store)[("PO-1", 2)]
    [(_, detail)] = [(k, d) for k, d in history(store, v2["id"]) if k == "changed"]
    assert "line 1: quantity 2 -> 5" in detail and "purpose: original -> replace" in detail
    assert outbox(store)[-1]["action"] == "update"


def test_connector_that_cannot_take_updates_holds_the_change(store):
    p = Pipeline(store, connectors=["erp"], capabilities={"erp": Capabilities(updates=False, cancels=False)})
    send(p, [po("PO-1")], "000000001")
    send(p, [po("PO-1", [("9", "1.00", "SKU-1")], purpose="04")], "000000002")
    v2 = orders(store)[("PO-1", 2)]
    assert v2["state"] == "held" and v2["reason"] == "CHANGE_NEEDS_REVIEW" and "erp cannot take an order update" in v2["error"]
    assert len(outbox(store)) == 1


def test_cancel_before_its_original_waits_and_is_applied_when_it_comes(store):
    p = Pipeline(store, connectors=["erp"], capabilities={"erp": CAN_ALL})
    send(p, [po("PO-7", purpose="01")], "000000001")
    [waiting] = orders(store).values()
    assert waiting["state"] == "waiting" and waiting["reason"] == "WAITING_FOR_ORIGINAL"
    assert outbox(store) == []
    send(p, [po("PO-7")], "000000002")
    o = orders(store)
    assert o[("PO-7", 1)]["purpose"] == "original" and o[("PO-7", 1)]["state"] == "validated"
    cancel = o[("PO-7", 2)]
    assert cancel["id"] == waiting["id"] and cancel["state"] == "validated" and cancel["supersedes"] == o[("PO-7", 1)]["id"]
    assert [r["action"] for r in outbox(store)] == ["create", "cancel"]


def test_original_and_change_in_one_file_are_applied_in_order(store):
    p = Pipeline(store, connectors=["erp"], capabilities={"erp": CAN_ALL})
    send(p, [po("PO-3", st="0001"), po("PO-3", [("4", "9.99", "SKU-1")], st="0002", purpose="04")], "000000001")
    o = orders(store)
    assert o[("PO-3", 1)]["state"] == "validated" and o[("PO-3", 2)]["state"] == "validated"
    rows = outbox(store)
    assert [r["action"] for r in rows] == ["create", "update"] and rows[1]["after_id"] == rows[0]["id"]


def test_repeated_change_is_a_duplicate(store):
    p = Pipeline(store, connectors=["erp"], capabilities={"erp": CAN_ALL})
    send(p, [po("PO-1")], "000000001")
    send(p, [po("PO-1", [("3", "9.99", "SKU-1")], purpose="04")], "000000002")
    send(p, [po("PO-1", [("3", "9.99", "SKU-1")], purpose="04")], "000000003")
    states = sorted(o["state"] for o in orders(store).values())
    assert states.count("duplicate") == 1 and len(outbox(store)) == 2


def test_change_of_a_shipped_order_is_held(store):
    p = Pipeline(store, connectors=["erp"], capabilities={"erp": CAN_ALL})
    send(p, [po("PO-1")], "000000001")
    with store.begin() as c:
        c.execute(t.orders.update().values(state="shipped"))
    send(p, [po("PO-1", purpose="01")], "000000002")
    v2 = orders(store)[("PO-1", 2)]
    assert v2["state"] == "held" and v2["reason"] == "ALREADY_SHIPPED"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"lines": [{"line_number": "1", "quantity": "2"}]}, {"lines": [{"line_number": "1", "quantity": "3"}]}, ["line 1: quantity 2 -> 3"]),
        ({"lines": []}, {"lines": [{"line_number": "2", "quantity": "1", "sku": "X"}]}, ["line 2 added: 1 X"]),
        ({"ship_to": {"city": "A"}}, {"ship_to": {"city": "B"}}, ["ship_to.city: A -> B"]),
        ({"requested_delivery_date": None}, {"requested_delivery_date": "2026-12-01"}, ["requested_delivery_date: (none) -> 2026-12-01"]),
    ],
)
def test_order_diff(old, new, expected):
    assert order_diff(old, new) == expected


def test_dispatcher_refuses_a_change_for_a_connector_without_the_capability(tmp_path):
    from gateway.config import DispatchConfig
    from gateway.connector import Delivery, Receipt
    from gateway.dispatch.worker import Dispatcher
    from gateway.store import Store

    class CreateOnly:
        name = "erp"
        capabilities = Capabilities()
        sent: list[Delivery] = []

        def send(self, delivery: Delivery) -> Receipt:
            self.sent.append(delivery)
            return Receipt(status=201, reference="R1")

        def close(self) -> None:
            pass

    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    # The pipeline believed the connector could take cancels (capabilities changed since).
    p = Pipeline(store, connectors=["erp"], capabilities={"erp": CAN_ALL})
    send(p, [po("PO-1")], "000000001")
    send(p, [po("PO-1", purpose="01")], "000000002")
    target = CreateOnly()
    d = Dispatcher(store, {"erp": target}, {}, DispatchConfig())
    d.run_once()
    d.run_once()
    assert [x.action for x in target.sent] == ["create"]
    rows = outbox(store)
    assert rows[1]["state"] == "dead" and "cannot" not in rows[1]["last_error"] and "does not declare" in rows[1]["last_error"]
    store.dispose()


def test_partial_change_document_is_merged_onto_the_current_version(store):
    import json as _json

    from gateway.versions import merge_changes

    current = {
        "po_number": "PO-1", "currency": "USD", "purpose": "original", "source": {"interchange_control_number": "1"},
        "lines": [
            {"line_number": "1", "quantity": "2", "sku": "A", "unit_price": "1.00"},
            {"line_number": "2", "quantity": "5", "sku": "B", "unit_price": "2.00"},
        ],
    }
    change = {
        "po_number": "PO-1", "purpose": "change", "currency": None, "lines_are_changes": True,
        "source": {"interchange_control_number": "2"},
        "lines": [
            {"line_number": "1", "quantity": "3", "sku": None, "change_code": "QI", "change": "change"},
            {"line_number": "2", "quantity": "5", "change_code": "DI", "change": "delete"},
            {"line_number": "3", "quantity": "1", "sku": "C", "change_code": "AI", "change": "add"},
        ],
    }
    merged = merge_changes(current, change)
    assert merged["currency"] == "USD" and merged["purpose"] == "change" and not merged["lines_are_changes"]
    assert [(ln["line_number"], ln["quantity"], ln["sku"]) for ln in merged["lines"]] == [("1", "3", "A"), ("3", "1", "C")]
    assert merged["source"]["interchange_control_number"] == "2"
    assert _json.loads(_json.dumps(current))["lines"][0]["quantity"] == "2"  # the current version is untouched


def test_merge_keeps_party_fields_and_list_entries_the_change_does_not_repeat():
    from gateway.versions import merge_changes

    current = {"buyer": {"name": "Acme", "code": "A1", "city": "Columbus"}, "references": [{"qualifier": "DP", "value": "042"}], "lines": []}
    change = {"buyer": {"name": None, "code": "A1", "city": "Dayton"}, "references": [{"qualifier": "CO", "value": "X9"}], "lines": [], "lines_are_changes": True}
    merged = merge_changes(current, change)
    assert merged["buyer"] == {"name": "Acme", "code": "A1", "city": "Dayton"}
    assert merged["references"] == [{"qualifier": "DP", "value": "042"}, {"qualifier": "CO", "value": "X9"}]


def test_cart_order_received_again_with_other_content_is_a_new_version(store, tmp_path):
    import json as _json
    from pathlib import Path

    from gateway.connector import RawMessage as Raw

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "carts" / "shopify_orders_create.json"
    body = _json.loads(fixture.read_text())
    p = Pipeline(store, connectors=["erp"], capabilities={"erp": CAN_ALL})

    def deliver(data: dict) -> None:
        r = p.receive(Raw(body=_json.dumps(data).encode(), source="shopify:shop", source_ref="x", display_name="webhook"), format="shopify", partner="shop")
        p.process(r.message_id, format="shopify", partner="shop")

    deliver(body)
    updated = _json.loads(fixture.read_text())
    updated["line_items"][0]["quantity"] = updated["line_items"][0]["quantity"] + 1
    deliver(updated)  # orders/updated: the whole order again, with a change
    deliver(updated)  # the same delivery again
    with store.engine.connect() as c:
        rows = c.execute(select(t.orders.c.version, t.orders.c.purpose, t.orders.c.state).order_by(t.orders.c.created_at)).all()
    assert [tuple(r) for r in rows] == [(1, "original", "validated"), (2, "replace", "validated")]  # the repeat: same bytes, nothing new
    assert [r["action"] for r in outbox(store)] == ["create", "update"]


def test_an_older_cart_copy_arriving_late_is_not_a_new_version(store):
    # Shopify does not promise order: orders/updated at 14:30 can reach us before the one at
    # 14:25. The late, older copy must not undo the newer one at the ERP.
    import json as _json
    from pathlib import Path

    from gateway.connector import RawMessage as Raw

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "carts" / "shopify_orders_create.json"
    p = Pipeline(store, connectors=["erp"], capabilities={"erp": CAN_ALL})

    def deliver(quantity: int, updated_at: str) -> None:
        data = _json.loads(fixture.read_text())
        data["line_items"][0]["quantity"] = quantity
        data["updated_at"] = updated_at
        r = p.receive(Raw(body=_json.dumps(data).encode(), source="shopify:shop", source_ref="x", display_name="webhook"), format="shopify", partner="shop")
        p.process(r.message_id, format="shopify", partner="shop")

    deliver(1, "2024-03-05T14:20:00-05:00")  # orders/create
    deliver(3, "2024-03-05T14:30:00-05:00")  # the second update, delivered first
    deliver(2, "2024-03-05T19:25:00+00:00")  # the first update (14:25 EST, in UTC), late
    deliver(4, "2024-03-05T14:35:00-05:00")  # a real later change still goes through
    with store.engine.connect() as c:
        rows = c.execute(select(t.orders.c.version, t.orders.c.state, t.orders.c.reason).order_by(t.orders.c.created_at)).all()
        stored = c.execute(select(t.orders.c.data).where(t.orders.c.state == "validated").order_by(t.orders.c.version)).scalars().all()
    assert [tuple(r) for r in rows] == [(1, "validated", None), (2, "validated", None), (1, "stale", "OLDER_COPY"), (3, "validated", None)]
    assert [r["action"] for r in outbox(store)] == ["create", "update", "update"]
    assert [d["lines"][0]["quantity"] for d in stored] == ["1", "3", "4"]
    assert stored[0]["source"]["updated_at"] == "2024-03-05T14:20:00-05:00"


def test_copies_without_a_time_still_become_versions(store):
    import json as _json
    from pathlib import Path

    from gateway.connector import RawMessage as Raw

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "carts" / "shopify_orders_create.json"
    p = Pipeline(store, connectors=["erp"], capabilities={"erp": CAN_ALL})
    for q in (1, 2):
        data = _json.loads(fixture.read_text())
        data["line_items"][0]["quantity"] = q
        data.pop("updated_at")
        r = p.receive(Raw(body=_json.dumps(data).encode(), source="shopify:shop", source_ref="x", display_name="webhook"), format="shopify", partner="shop")
        p.process(r.message_id, format="shopify", partner="shop")
    assert [r["action"] for r in outbox(store)] == ["create", "update"]

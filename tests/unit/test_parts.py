"""A split order's parts (gateway.parts): what one part's delivery holds, its idempotency key,
the outbox rows a per-part connector gets, and how the order settles over its parts."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from gateway.connector import Capabilities, Receipt
from gateway.parts import describe, label, part_count, part_key, part_route, restrict
from gateway.plugins import TargetConfigBase
from gateway.store import tables as t
from gateway.store.dead_letters import DeadFilter, list_dead, replay
from gateway.store.outbox import (
    claim_due,
    idempotency_key,
    mark_dead,
    mark_sent,
    new_deliveries,
    step_progress,
)
from gateway.store.queries import order_detail

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)

ORDER: dict[str, Any] = {
    "po_number": "PO-SPLIT",
    "lines": [
        {"line_number": "1", "sku": "W-1", "quantity": "6", "uom": "EA"},
        {"line_number": "2", "sku": "W-2", "quantity": "10", "uom": "EA"},  # 4 from EAST, 6 from WEST
        {"line_number": "3", "sku": "FEE", "quantity": "1", "uom": "EA"},  # no stock needs: no part names it
        {"line_number": "4", "sku": "W-4", "quantity": "2", "uom": "CS"},  # 24 EA, all from WEST
    ],
}
ROUTE: dict[str, Any] = {
    "warehouse": "EAST", "carrier": "UPSN", "service": "GND", "weight_kg": "30", "split": True,
    "parts": [
        {"part": 1, "warehouse": "EAST", "carrier": "UPSN", "service": "GND", "weight_kg": "10",
         "lines": [{"line": "1", "sku": "W-1", "quantity": "6"}, {"line": "2", "sku": "W-2", "quantity": "4"}]},
        {"part": 2, "warehouse": "WEST", "carrier": "FXFE", "service": "LTL", "weight_kg": "20",
         "lines": [{"line": "2", "sku": "W-2", "quantity": "6"}, {"line": "4", "sku": "W-4", "quantity": "24"}]},
    ],
}


# -- the payload of a part -------------------------------------------------------------------


def test_each_part_gets_its_lines_its_share_and_its_route() -> None:
    one, two = restrict(ORDER, ROUTE, 1, 2), restrict(ORDER, ROUTE, 2, 2)
    assert [(ln["line_number"], ln["quantity"]) for ln in one["lines"]] == [("1", "6"), ("2", "4"), ("3", "1")]
    assert [(ln["line_number"], ln["quantity"]) for ln in two["lines"]] == [("2", "6"), ("4", "2")]  # CS stays CS
    assert one["route"]["warehouse"] == "EAST" and two["route"]["warehouse"] == "WEST"
    assert (two["route"]["carrier"], two["route"]["service"], two["route"]["weight_kg"]) == ("FXFE", "LTL", "20")
    assert two["route"]["part"] == 2 and two["route"]["of"] == 2 and "parts" not in two["route"]
    assert two["part"] == {"number": 2, "of": 2, "warehouse": "WEST"}
    assert one["po_number"] == two["po_number"] == "PO-SPLIT"  # linked to the original
    assert [ln["quantity"] for ln in ORDER["lines"]] == ["6", "10", "1", "2"]  # the order itself is untouched


def test_the_whole_order_keeps_every_line_and_the_whole_route() -> None:
    whole = restrict(ORDER, ROUTE, 0, 0)
    assert whole["lines"] == ORDER["lines"] and whole["route"] == ROUTE and "part" not in whole
    assert restrict(ORDER, None, 0, 0) == ORDER


def test_a_part_the_route_lacks_gets_no_other_parts_lines() -> None:
    three = restrict(ORDER, ROUTE, 3, 3)
    assert three["lines"] == [] and three["part"] == {"number": 3, "of": 3, "warehouse": None}
    assert part_route(ROUTE, 3) is None and part_route(ROUTE, 2)["warehouse"] == "WEST"  # type: ignore[index]


def test_part_count_and_labels() -> None:
    assert part_count(ROUTE) == 2
    assert part_count({**ROUTE, "parts": ROUTE["parts"][:1]}) == 0  # one warehouse: not split
    assert part_count(None) == 0
    assert label(2, 3, "WEST") == "part 2 of 3, warehouse WEST" and label(0, 0) == ""
    assert describe("shipstation", 2, 3) == "shipstation part 2 of 3" and describe("erp", 0, 0) == "erp"


def test_part_keys_are_distinct_stable_and_safe_for_every_connector() -> None:
    key = idempotency_key("o-1", "shipstation")
    keys = [part_key(key, n) for n in range(0, 4)]
    assert keys[0] == key and len(set(keys)) == 4
    assert keys[2] == f"{key}-part-2" == part_key(idempotency_key("o-1", "shipstation"), 2)  # every retry the same
    # EasyPost takes it as a shipment reference, the file connector in a file name.
    assert all(re.fullmatch(r"[A-Za-z0-9-]{1,100}", k) for k in keys)


def test_per_part_defaults_to_whether_the_connector_ships() -> None:
    ships, erp = Capabilities(ships=True), Capabilities(updates=True)
    plain = TargetConfigBase(type="x", name="x")
    assert plain.sends_parts(ships) and not plain.sends_parts(erp)
    assert not TargetConfigBase(type="x", name="x", per_part=False).sends_parts(ships)
    assert TargetConfigBase(type="x", name="x", per_part=True).sends_parts(erp)


def test_shipping_connectors_declare_that_they_ship() -> None:
    from connectors.targets.easypost.connector import EasyPostConnector
    from connectors.targets.file.connector import FileConnector
    from connectors.targets.http_json.connector import HttpJsonConnector
    from connectors.targets.shipstation.connector import ShipStationConnector

    assert ShipStationConnector.capabilities.ships and EasyPostConnector.capabilities.ships
    assert not FileConnector.capabilities.ships and not HttpJsonConnector.capabilities.ships


# -- outbox rows -----------------------------------------------------------------------------


def test_a_per_part_connector_gets_one_row_per_part_the_others_one() -> None:
    got = new_deliveries("o-1", ["erp", "shipstation"], T0, parts={"shipstation": 3})
    assert [(r["connector"], r["part"], r["part_of"]) for r in got] == [("erp", 0, 0), ("shipstation", 1, 3), ("shipstation", 2, 3), ("shipstation", 3, 3)]
    assert len({r["idempotency_key"] for r in got}) == 4
    later = new_deliveries(
        "o-2", ["shipstation"], T0, action="cancel", parts={"shipstation": 3}, part_numbers={"shipstation": [2]},
        part_after={("shipstation", 2): 41}, part_references={("shipstation", 2): "100002"},
    )
    assert [(r["part"], r["after_id"], r["target_reference"], r["action"]) for r in later] == [(2, 41, "100002", "cancel")]


def seed(store: Any, *, route: dict[str, Any] | None = ROUTE, parts: int = 2, supersedes: str | None = None, version: int = 1) -> str:
    mid, oid = str(uuid.uuid4()), str(uuid.uuid4())
    with store.begin() as conn:
        conn.execute(
            insert(t.messages).values(
                id=mid, received_at=T0, updated_at=T0, source="test", sha256=uuid.uuid4().hex * 2,
                size=10, state="parsed", warnings=[], attempts=1, order_count=1, rejected_count=0,
            )
        )
        conn.execute(
            insert(t.orders).values(
                id=oid, message_id=mid, doc_index=0, created_at=T0, updated_at=T0, channel="x12", partner="acme",
                po_number="PO-SPLIT", state="validated", line_count=4, data=ORDER, version=version, supersedes=supersedes,
            )
        )
        if route is not None:
            conn.execute(insert(t.order_routes), [{"order_id": oid, "route": route, "created_at": T0}])
        conn.execute(insert(t.outbox), new_deliveries(oid, ["erp", "ship"], T0, parts={"ship": parts}))
    return oid


def order_state(store: Any, oid: str) -> str:
    with store.engine.connect() as conn:
        return str(conn.execute(select(t.orders.c.state).where(t.orders.c.id == oid)).scalar_one())


def test_claims_hand_each_part_its_payload_and_key(store: Any) -> None:
    oid = seed(store)
    claims = sorted(claim_due(store, now=T0, lease_seconds=60, limit=10), key=lambda c: (c.connector, c.part))
    assert [(c.connector, c.part, c.part_of) for c in claims] == [("erp", 0, 0), ("ship", 1, 2), ("ship", 2, 2)]
    erp, one, two = claims
    assert len(erp.order["lines"]) == 4 and erp.order["route"]["split"] is True  # the ERP: the whole order
    assert [ln["sku"] for ln in one.order["lines"]] == ["W-1", "W-2", "FEE"]
    assert [ln["sku"] for ln in two.order["lines"]] == ["W-2", "W-4"] and two.order["route"]["warehouse"] == "WEST"
    assert two.idempotency_key == part_key(idempotency_key(oid, "ship"), 2) == two.delivery().idempotency_key
    assert two.what.endswith("part 2 of 2") and two.target == "ship part 2 of 2"


def test_one_order_connector_and_part_is_one_row(store: Any) -> None:
    oid = seed(store)
    with pytest.raises(IntegrityError), store.begin() as conn:
        row = new_deliveries(oid, ["ship"], T0, parts={"ship": 2})[1]
        conn.execute(insert(t.outbox), [{**row, "idempotency_key": "another-key"}])


def test_the_order_settles_over_every_part(store: Any) -> None:
    oid = seed(store)
    claims = {(c.connector, c.part): c for c in claim_due(store, now=T0, lease_seconds=60, limit=10)}
    mark_sent(store, claims[("erp", 0)], Receipt(200, "E-1"), now=T0)
    mark_sent(store, claims[("ship", 1)], Receipt(200, "100001"), now=T0)
    assert order_state(store, oid) == "validated"  # part 2 is not sent yet
    progress = step_progress(store, [oid])[oid].describe()
    assert "ship part 1 of 2" in progress and "ship part 2 of 2 being sent" in progress
    mark_dead(store, claims[("ship", 2)], error="HTTP 400: bad address", now=T0)
    assert order_state(store, oid) == "dead"
    with store.engine.connect() as conn:
        said = conn.execute(select(t.events.c.detail).where(t.events.c.order_id == oid, t.events.c.kind == "order_dead")).scalar_one()
    assert "ship part 2 of 2 failed for good" in said and "partly sent: erp, ship part 1 of 2" in said
    [dead] = list_dead(store, DeadFilter(order=oid[:8], connector="ship", part=2))
    assert dead.target == "ship part 2 of 2" and list_dead(store, DeadFilter(order=oid[:8], part=1)) == []
    shown = {d["part"]: d["part_label"] for d in order_detail(store, oid).deliveries}
    assert shown == {0: "", 1: "part 1 of 2, warehouse EAST", 2: "part 2 of 2, warehouse WEST"}
    assert replay(store, [dead.outbox_id], by="ana", now=T0) == 1
    [again] = claim_due(store, now=T0, lease_seconds=60, limit=10)
    assert (again.part, again.idempotency_key) == (2, claims[("ship", 2)].idempotency_key)  # the same key: never doubled
    mark_sent(store, again, Receipt(200, "100002"), now=T0)
    assert order_state(store, oid) == "dispatched"


def test_a_later_version_without_its_own_split_keeps_the_one_delivered(store: Any) -> None:
    first = seed(store)
    later = seed(store, route=None, supersedes=first, version=2)  # a cancellation: its stock was given back, no route
    two = next(c for c in claim_due(store, now=T0, lease_seconds=60, limit=10) if c.order_id == later and c.part == 2)
    assert two.order["route"]["warehouse"] == "WEST" and [ln["sku"] for ln in two.order["lines"]] == ["W-2", "W-4"]


def test_a_rendered_split_delivery_is_its_first_part_as_sent(store: Any) -> None:
    from gateway.store.rendering import delivery_for

    oid = seed(store)
    shown = delivery_for(store, oid, "ship")
    assert shown.idempotency_key == part_key(idempotency_key(oid, "ship"), 1)
    assert [ln["sku"] for ln in shown.order["lines"]] == ["W-1", "W-2", "FEE"] and shown.order["part"]["number"] == 1
    whole = delivery_for(store, oid, "erp")
    assert len(whole.order["lines"]) == 4 and whole.order["route"]["split"] is True


def test_a_change_reaches_every_part_after_that_parts_delivery() -> None:
    from gateway.versions import Linker, _Marker, _Version

    caps = {"erp": Capabilities(updates=True, cancels=True), "ship": Capabilities(updates=True, cancels=True, ships=True)}
    linker = Linker(caps, lambda partner: ["erp", "ship"])
    cur = _Version("v1", 1, "dispatched", "h", ORDER, deliveries={"erp": (10, "E-1")}, parts={"ship": {1: (11, "100001", 2), 2: (12, "100002", 2)}})
    row = {"id": "v2", "po_number": "PO-SPLIT", "purpose": "cancel", "partner": "acme"}
    plan = linker._change_plan(row, cur, _Marker(row, []))
    assert plan is not None and plan.action == "cancel" and plan.after == {"erp": 10}
    rows = new_deliveries("v2", plan.connectors, T0, action=plan.action, after=plan.after, references=plan.references,
                          parts=plan.parts, part_after=plan.part_after, part_references=plan.part_references)
    assert [(r["connector"], r["part"], r["after_id"], r["target_reference"]) for r in rows] == [
        ("erp", 0, 10, "E-1"), ("ship", 1, 11, "100001"), ("ship", 2, 12, "100002"),
    ]

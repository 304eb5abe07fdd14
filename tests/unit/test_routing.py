"""Routing (issue 10): warehouses by ship-to region, split when one cannot fill, carrier and
service by weight, destination and requested date; the configuration is checked with file:line;
the reservation honours the route's preference (SQLite and PostgreSQL: the `store` fixture)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import insert

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.routing import PartLine, Router, RoutingConfig
from gateway.store import Store
from gateway.store import tables as t
from gateway.store.masterdata import ReserveLine, StockKeeper

TODAY = dt.date(2026, 12, 1)
ROUTER = Router(
    RoutingConfig.model_validate(
        {
            "regions": {"us-ak": ["WEST"], "US": ["EAST", "WEST"], "DE": ["BER"], "*": ["EAST"]},
            "carriers": [
                {"countries": ["us"], "within_days": 2, "carrier": "UPSN", "service": "2DA"},
                {"countries": ["US"], "max_weight_kg": 20, "carrier": "UPSN", "service": "GND"},
                {"countries": ["DE"], "carrier": "DHL", "service": "PAKET"},
                {"min_weight_kg": 20, "carrier": "FXFE", "service": "LTL"},
            ],
        }
    )
)


def test_warehouses_by_region_then_country_then_anywhere():
    assert ROUTER.warehouses("US", "AK") == ("WEST",)
    assert ROUTER.warehouses("us", "OH") == ("EAST", "WEST")
    assert ROUTER.warehouses("DE", None) == ("BER",)
    assert ROUTER.warehouses("FR", "IDF") == ("EAST",)
    assert Router(RoutingConfig(regions={"US": ["EAST"]})).warehouses("FR", None) == ()


@pytest.mark.parametrize(
    ("country", "weight", "days", "expected"),
    [
        ("US", "5", 1, ("UPSN", "2DA")),  # wanted within two days
        ("US", "5", None, ("UPSN", "GND")),
        ("US", "20", 10, ("UPSN", "GND")),
        ("US", "20.5", 10, ("FXFE", "LTL")),  # too heavy for ground
        ("DE", "500", None, ("DHL", "PAKET")),
        ("FR", "3", None, None),  # nothing matches
    ],
)
def test_carrier_by_destination_weight_and_date(country: str, weight: str, days: int | None, expected: tuple[str, str] | None):
    assert ROUTER.carrier(country, Decimal(weight), days) == expected


def test_a_route_has_a_part_per_warehouse_with_its_weight_and_carrier():
    taken = [
        PartLine("1", "W-1", "EAST", Decimal(6), Decimal("2.5")),
        PartLine("1", "W-1", "WEST", Decimal(4), Decimal("2.5")),
        PartLine("2", "W-2", "EAST", Decimal(1), None),  # no weight known: counts 0
    ]
    route = ROUTER.route(taken, country="US", requested=None, today=TODAY)
    assert route is not None
    assert (route["warehouse"], route["carrier"], route["service"], route["weight_kg"], route["split"]) == ("EAST", "UPSN", "GND", "25", True)
    assert [(p["part"], p["warehouse"], p["weight_kg"], [x["line"] for x in p["lines"]]) for p in route["parts"]] == [(1, "EAST", "15", ["1", "2"]), (2, "WEST", "10", ["1"])]
    soon = ROUTER.route(taken[:1], country="US", requested=TODAY + dt.timedelta(days=2), today=TODAY)
    assert soon is not None and (soon["service"], soon["split"]) == ("2DA", False)
    assert "part 2 from WEST by UPSN GND, 10 kg, lines 1" in Router.describe(route)
    assert ROUTER.route([], country="US", requested=None, today=TODAY) is None


def test_bad_routing_is_a_configuration_error_with_file_and_line(tmp_path: Path):
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("routing:\n  regions:\n    US: []\n  carriers:\n    - {carrier: UPSN}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    text = str(exc.value)
    assert f"{cfg}:3: routing.regions.US" in text and "at least 1 item" in text
    assert f"{cfg}:5" in text and "service" in text
    with pytest.raises(ValidationError, match="listed twice"):
        RoutingConfig(regions={"US": ["EAST", "EAST"]})


def _seed(store: Store, rows: list[tuple[str, str, int]]) -> None:
    now = dt.datetime.now(dt.UTC)
    with store.begin() as conn:
        conn.execute(insert(t.stock), [{"sku": s, "warehouse": w, "on_hand": Decimal(q), "reserved": Decimal(0), "source": "test", "updated_at": now} for s, w, q in rows])


def test_reservation_follows_the_preference_and_splits_in_its_order(store: Store):
    # WEST has the most, but the route prefers EAST: the whole line comes from EAST
    _seed(store, [("W-1", "EAST", 10), ("W-1", "WEST", 50), ("W-1", "FAR", 100)])
    keeper = StockKeeper(store)
    got = keeper.reserve("o-1", [ReserveLine("1", "W-1", Decimal(8), prefer=("EAST", "WEST"))], partial=True)
    assert [(r.warehouse, r.quantity) for r in got.reservations] == [("EAST", Decimal(8))]
    # 2 left in EAST: a line of 12 comes whole from the next preferred warehouse, not split
    got = keeper.reserve("o-2", [ReserveLine("1", "W-1", Decimal(12), prefer=("EAST", "WEST"))], partial=True)
    assert [(r.warehouse, r.quantity) for r in got.reservations] == [("WEST", Decimal(12))]
    # no preferred warehouse has 45: split in the order of preference, FAR is never used
    got = keeper.reserve("o-3", [ReserveLine("1", "W-1", Decimal(45), prefer=("EAST", "WEST"))], partial=True)
    assert sorted((r.warehouse, r.quantity) for r in got.reservations) == [("EAST", Decimal(2)), ("WEST", Decimal(38))]
    assert got.lines[0].reserved == Decimal(40)


def test_a_batch_reserves_as_one_order_after_another_would(store: Store):
    _seed(store, [("W-1", "EAST", 10), ("W-1", "WEST", 5), ("W-2", "EAST", 3)])
    keeper = StockKeeper(store)
    orders = [
        ("a", [ReserveLine("1", "W-1", Decimal(8), prefer=("EAST", "WEST")), ReserveLine("2", "W-2", Decimal(2))]),
        ("b", [ReserveLine("1", "W-1", Decimal(6), prefer=("EAST", "WEST"))]),  # 2 EAST + 4 WEST
        ("c", [ReserveLine("1", "W-1", Decimal(3)), ReserveLine("2", "W-2", Decimal(3))]),  # 1 WEST; 1 W-2
    ]
    with store.begin() as conn:
        got = keeper.reserve_many(conn, orders)
    assert [(r.warehouse, r.quantity) for r in got["a"].reservations] == [("EAST", Decimal(8)), ("EAST", Decimal(2))]
    assert sorted((r.warehouse, r.quantity) for r in got["b"].reservations) == [("EAST", Decimal(2)), ("WEST", Decimal(4))]
    assert [(x.reserved, x.outcome.value) for x in got["c"].lines] == [(Decimal(1), "partial"), (Decimal(1), "partial")]
    for oid in "abc":  # what the store holds is what each was told
        assert sorted((r.sku, r.warehouse, r.quantity) for r in keeper.held(oid)) == sorted((r.sku, r.warehouse, r.quantity) for r in got[oid].reservations)
    with store.begin() as conn:  # again: each already holds its stock
        again = keeper.reserve_many(conn, orders[:1])
    assert again["a"].repeated


def test_a_batch_whose_picture_is_stale_falls_back_to_one_order_at_a_time(store: Store, monkeypatch: pytest.MonkeyPatch):
    from gateway.store import masterdata

    _seed(store, [("W-1", "EAST", 4)])
    # as if another process took stock between the read and the take: the plan asks for more
    monkeypatch.setattr(masterdata, "_plan_take", lambda snap, line, want: [("EAST", want)])
    keeper = StockKeeper(store)
    with store.begin() as conn:
        got = keeper.reserve_many(conn, [("a", [ReserveLine("1", "W-1", Decimal(3))]), ("b", [ReserveLine("1", "W-1", Decimal(3))])])
    assert got["a"].lines[0].reserved == 3 and got["b"].lines[0].reserved == 1
    with store.engine.connect() as conn:
        (reserved,) = conn.execute(t.stock.select().with_only_columns(t.stock.c.reserved)).one()
    assert reserved == 4


def test_a_batch_of_many_random_orders_gets_what_one_order_after_another_gets(store: Store):
    """The batch path (its own SQL straight to the driver) against `reserve`, order by order,
    on the same stock: 300 orders of 1-6 lines over 40 SKUs in three warehouses, scarce
    enough that lines split and fall short, fractional quantities, routed and unrouted lines."""
    import random

    from sqlalchemy import delete, select, update

    rng = random.Random(10)
    skus = [f"S-{n}" for n in range(40)]
    _seed(store, [(s, wh, rng.randint(0, 60)) for s in skus for wh in ("EAST", "WEST", "FAR") if rng.random() < 0.8])
    routes = [("EAST", "WEST"), ("WEST",), ("FAR", "EAST", "WEST"), ()]
    orders = [
        (
            f"o-{n}",
            [
                ReserveLine(str(i), rng.choice(skus), Decimal(rng.choice(["1", "2.5", "7", "0.3333", "12"])), rng.choice([None, None, "EAST"]), rng.choice(routes))
                for i in range(1, rng.randint(1, 6) + 1)
            ],
        )
        for n in range(300)
    ]
    keeper = StockKeeper(store)

    def stored() -> tuple[list[tuple[str, str, Decimal]], list[tuple[str, str, str, str, Decimal]]]:
        with store.engine.connect() as conn:
            stock = sorted((r.sku, r.warehouse, Decimal(r.reserved)) for r in conn.execute(select(t.stock)))
            held = sorted((r.order_id, r.line, r.sku, r.warehouse, Decimal(r.quantity)) for r in conn.execute(select(t.stock_reservations)))
            stamps = {type(r.created_at) for r in conn.execute(select(t.stock_reservations))}
        assert stamps <= {dt.datetime}  # read back as datetimes, as rows written by SQLAlchemy are
        return stock, held

    one_by_one = {oid: keeper.reserve(oid, lines, partial=True) for oid, lines in orders}
    expected = stored()
    assert any(not x.complete for x in one_by_one.values()) and any(len(x.reservations) > len(x.lines) for x in one_by_one.values())
    with store.begin() as conn:  # the same stock again, untouched
        conn.execute(delete(t.stock_reservations))
        conn.execute(update(t.stock).values(reserved=Decimal(0)))
    with store.begin() as conn:
        batch = keeper.reserve_many(conn, orders)
    assert stored() == expected
    for oid, _ in orders:
        assert [(x.line, x.requested, x.outcome, x.reserved) for x in batch[oid].lines] == [(x.line, x.requested, x.outcome, x.reserved) for x in one_by_one[oid].lines]
        assert sorted((r.sku, r.warehouse, r.quantity) for r in batch[oid].reservations) == sorted((r.sku, r.warehouse, r.quantity) for r in one_by_one[oid].reservations)

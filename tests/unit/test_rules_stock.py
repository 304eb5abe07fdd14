"""The stock rule per policy (block, backorder, partial), the reorder-point alert, and the
reservation that follows an accepting decision (the decision and the 855 follow what was
really reserved). The reservation runs on SQLite and PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import insert

from gateway.acks.model import LineResult, LineStatus
from gateway.masterdata.model import Item, StockLevel
from gateway.model import Order
from gateway.processing.decide import StockStep, line_results, reserve_stock
from gateway.rules import (
    InMemoryMasterData,
    Outcome,
    RulesEngine,
    build_rules,
    validate_rule_configs,
)
from gateway.store import Store
from gateway.store import tables as t
from gateway.store.masterdata import StockKeeper

DAY = dt.date(2026, 12, 1)

ITEMS = [Item("W-1", "widget", uoms={"CA": Decimal(12)}), Item("W-2", "gadget")]
STOCK = [
    StockLevel("W-1", "EAST", Decimal(30), Decimal(10), reorder_point=Decimal(5)),  # 20 available
    StockLevel("W-1", "WEST", Decimal(8), Decimal(0)),  # 8 available: 28 in all
    StockLevel("W-2", "EAST", Decimal(3), Decimal(3)),  # none available
]
MD = InMemoryMasterData(items=ITEMS, stock=STOCK)


def order(*lines: tuple[str, str, str], partner: str | None = "acme", channel: str = "x12") -> Order:
    return Order.model_validate(
        {
            "po_number": "PO-1", "channel": channel, "partner": partner, "currency": "USD",
            "lines": [{"line_number": str(n), "quantity": q, "uom": u, "unit_price": "1", "sku": s} for n, (q, u, s) in enumerate(lines, 1)],
        }
    )


def decide(rule: dict[str, Any], o: Order, md: Any = MD) -> Any:
    engine = RulesEngine(build_rules(validate_rule_configs([{"type": "stock", **rule}])), md)
    return engine.decide([o], DAY)[0]


def found(decision: Any) -> list[tuple[str, str | None, Outcome]]:
    return [(f.code, f.line, f.outcome) for f in decision.findings]


def test_enough_stock_is_accepted_without_a_word_and_asks_for_its_reservation():
    d = decide({}, order(("10", "EA", "W-1")))
    assert d.outcome is Outcome.ACCEPT and d.findings == ()
    assert [(n.line, n.sku, n.quantity, n.policy) for n in d.stock] == [("1", "W-1", Decimal(10), "block")]


def test_available_is_summed_over_warehouses_in_base_units():
    assert decide({}, order(("28", "EA", "W-1"))).outcome is Outcome.ACCEPT
    d = decide({}, order(("3", "CA", "W-1")))  # 36 EA > 28
    assert found(d) == [("STOCK_SHORT", "1", Outcome.HOLD)]
    assert "36 EA of W-1 ordered, 28 available" in d.findings[0].message
    assert d.stock[0].quantity == Decimal(36) and d.stock[0].ordered == Decimal(3)


def test_block_holds_or_rejects_by_outcome():
    assert decide({"policy": "block"}, order(("1", "EA", "W-2"))).outcome is Outcome.HOLD
    d = decide({"outcomes": {"STOCK_SHORT": "reject"}}, order(("1", "EA", "W-1"), ("1", "EA", "W-2")))
    assert found(d) == [("STOCK_SHORT", "2", Outcome.REJECT)]


def test_two_lines_of_one_sku_draw_on_the_same_stock():
    d = decide({}, order(("20", "EA", "W-1"), ("9", "EA", "W-1")))
    # 20 from EAST leaves it at 0, under its reorder point of 5
    assert found(d) == [("REORDER_POINT", "1", Outcome.ACCEPT), ("STOCK_SHORT", "2", Outcome.HOLD)]
    assert "9 EA of W-1 ordered, 8 available" in d.findings[1].message


def test_backorder_accepts_with_a_date():
    d = decide({"policy": "backorder", "backorder_days": 7}, order(("2", "EA", "W-2")))
    assert d.outcome is Outcome.ACCEPT and found(d) == [("BACKORDERED", "1", Outcome.ACCEPT)]
    assert "2 backordered (expected 2026-12-08)" in d.findings[0].message
    assert d.stock[0].backorder_date == dt.date(2026, 12, 8)


def test_partial_fill_says_what_ships_and_what_happens_to_the_rest():
    d = decide({"policy": "partial", "partial_rest": "cancel"}, order(("30", "EA", "W-1")))
    assert found(d) == [("PARTIAL_FILL", "1", Outcome.ACCEPT)]
    assert "28 shipped, 2 cancelled" in d.findings[0].message
    assert d.stock[0].rest == "cancel"


def test_policy_per_partner_then_channel():
    rule = {"policy": "block", "by_channel": {"shopify": "backorder"}, "by_partner": {"acme": "partial"}}
    assert found(decide(rule, order(("1", "EA", "W-2"))))[0][0] == "PARTIAL_FILL"
    assert found(decide(rule, order(("1", "EA", "W-2"), partner=None, channel="shopify")))[0][0] == "BACKORDERED"
    assert found(decide(rule, order(("1", "EA", "W-2"), partner="other")))[0][0] == "STOCK_SHORT"


def test_reorder_point_is_an_alert():
    # 20 available in EAST (the most), reorder at 5: taking 15 leaves 5
    d = decide({}, order(("15", "EA", "W-1")))
    assert d.outcome is Outcome.ACCEPT and found(d) == [("REORDER_POINT", "1", Outcome.ACCEPT)]
    assert "warehouse EAST" in d.findings[0].message
    assert found(decide({}, order(("14", "EA", "W-1")))) == []


def test_unknown_items_are_left_to_the_catalogue_rule():
    d = decide({}, order(("1", "EA", "NOPE")))
    assert d.outcome is Outcome.ACCEPT and d.stock == ()


def test_bad_configuration_is_refused():
    with pytest.raises(ValidationError, match="policy"):
        validate_rule_configs([{"type": "stock", "policy": "maybe"}])
    with pytest.raises(ValidationError, match="backorder_days"):
        validate_rule_configs([{"type": "stock", "backorder_days": -1}])


# -- the reservation that follows the decision ---------------------------------------------------


def _seed(store: Store, rows: list[tuple[str, str, int]]) -> None:
    now = dt.datetime.now(dt.UTC)
    with store.begin() as conn:
        conn.execute(
            insert(t.stock),
            [{"sku": s, "warehouse": w, "on_hand": Decimal(q), "reserved": Decimal(0), "reorder_point": None, "source": "test", "updated_at": now} for s, w, q in rows],
        )


# What the rules read when they decided: plenty; the store's stock is what is really left.
PLENTY = InMemoryMasterData(items=ITEMS, stock=[StockLevel("W-1", "EAST", Decimal(1000)), StockLevel("W-2", "EAST", Decimal(1000))])


def _reserve(store: Store, oid: str, rule: dict[str, Any], o: Order) -> tuple[Any, list[LineResult]]:
    d = decide(rule, o, PLENTY)
    with store.begin() as conn:
        return reserve_stock(StockStep(StockKeeper(store), conn), oid, d, line_results(o, d))


def test_a_line_short_at_reservation_is_backordered_in_its_unit(store: Store):
    _seed(store, [("W-1", "EAST", 24), ("W-2", "EAST", 5)])
    d, lines = _reserve(store, "o-1", {"policy": "backorder", "backorder_days": 3}, order(("3", "CA", "W-1"), ("2", "EA", "W-2")))
    assert d.outcome is Outcome.ACCEPT
    assert lines == [LineResult(status=LineStatus.BACKORDERED, quantity=Decimal(1), date=DAY + dt.timedelta(days=3)), LineResult()]
    held = {(r.sku, r.quantity) for r in StockKeeper(store).held("o-1")}
    assert held == {("W-1", Decimal(24)), ("W-2", Decimal(2))}
    # the next order gets nothing of W-1: backordered whole
    _, lines = _reserve(store, "o-2", {"policy": "backorder"}, order(("5", "EA", "W-1")))
    assert lines == [LineResult(status=LineStatus.BACKORDERED, quantity=Decimal(5))]


def test_partial_cancel_answers_what_ships(store: Store):
    _seed(store, [("W-1", "EAST", 4), ("W-1", "WEST", 3)])
    _, lines = _reserve(store, "o-1", {"policy": "partial", "partial_rest": "cancel"}, order(("10", "EA", "W-1"), ("1", "EA", "W-2")))
    assert lines == [LineResult(status=LineStatus.QUANTITY_CHANGED, quantity=Decimal(7)), LineResult(status=LineStatus.REJECTED)]
    assert sum(r.quantity for r in StockKeeper(store).held("o-1")) == Decimal(7)


def test_block_holds_and_gives_back_what_it_got(store: Store):
    _seed(store, [("W-1", "EAST", 40), ("W-2", "EAST", 1)])
    d, lines = _reserve(store, "o-1", {}, order(("10", "EA", "W-1"), ("1", "EA", "W-2")))
    assert d.outcome is Outcome.ACCEPT and lines == [LineResult(), LineResult()]  # W-2 had 1
    d, lines = _reserve(store, "o-2", {}, order(("10", "EA", "W-1"), ("1", "EA", "W-2")))
    assert d.outcome is Outcome.HOLD and d.reason == "STOCK_SHORT" and lines == []
    assert StockKeeper(store).held("o-2") == []
    assert sum(r.quantity for r in StockKeeper(store).held("o-1")) == Decimal(11)

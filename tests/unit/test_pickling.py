"""What crosses to and from the decide worker pickles as its constructor call (gateway.pickling)
and comes back equal, shared answers included."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from decimal import Decimal

import pytest

from gateway.acks.model import LineResult, LineStatus
from gateway.pickling import by_fields
from gateway.processing.decide import Ship
from gateway.rules.base import Decision, Finding, Outcome, StockNeed


def test_a_decision_with_findings_stock_and_answers_comes_back_equal_and_smaller():
    needs = [StockNeed(i, str(i + 1), f"SKU-{i}", Decimal("2.5") * i + 1, Decimal(i + 1), "partial", "cancel", dt.date(2027, 1, i + 1), Decimal("0.25")) for i in range(12)]
    decision = Decision.of(
        [Finding("price", Outcome.HOLD, "PRICE_OFF_LIST", "line 3: 9.00 against 10.00", "3", {"price": "10.00"}), Finding("risk", Outcome.ACCEPT, "FIRST_ORDER", "first order")],
        account="C-1", fingerprint="ab" * 32, stock=needs,
    )
    as_ordered = LineResult()
    lines = [as_ordered] * 11 + [LineResult(LineStatus.BACKORDERED, Decimal(3), "EA", Decimal("9.5"), dt.date(2027, 2, 1))]
    decided = [(decision, lines, Ship("US", "OH", dt.date(2027, 1, 5)))] * 3
    data = pickle.dumps(decided, protocol=pickle.HIGHEST_PROTOCOL)
    back = pickle.loads(data)
    assert back == decided
    assert back[0][0].findings[0].data == {"price": "10.00"} and back[0][0].outcome is Outcome.HOLD
    assert back[0][1][0] is back[0][1][10]  # one shared answer stays one object
    assert b"__setstate__" not in data and b"copyreg" not in data


def test_only_dataclasses_whose_fields_are_all_constructor_arguments():
    @dataclasses.dataclass(frozen=True)
    class Derived:
        a: int
        b: int = dataclasses.field(init=False, default=0)

    with pytest.raises(TypeError, match="__init__ arguments"):
        by_fields(Derived)
    assert pickle.loads(pickle.dumps(One((1, 2)))) == One((1, 2))  # a single field is still a tuple of arguments


@by_fields
@dataclasses.dataclass(frozen=True, slots=True)
class One:
    a: tuple[int, ...]
